"""``audit verify`` holds an adaptive-clipping row's total noise multiplier to its releases.

An adaptive round releases two Gaussians, the update sum (``z_delta``,
``dp.adaptive_clipping.update_noise_multiplier``) and the clip count (std ``sigma_b``,
``count_noise_stddev``, sensitivity 1/2), which compose to the one Gaussian
``z = (z_delta^-2 + (2 sigma_b)^-2)^-1/2`` the row records as ``dp.noise_multiplier``
(:mod:`secagg.dp.adaptive`). A per-client row is replayed from the two releases, so
nothing read the total: each forged row here (signed with the ledger key, the operator's
forgery, its claims the replay's) verified, and with ``--config`` one recording the
config's ``z`` kept the noise-multiplier note quiet whatever its releases were.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgers import adaptive_client_rows, write_ledger

from secagg.dp.accounting import adaptive_noise_split
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

DELTA = 1e-5
Z, COUNT_STD = 1.5, 8.0
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _expected(noise_multiplier: float) -> ExpectedPrivacy:
    """The config an auditor holds: the fixture's federation at total ``noise_multiplier``."""
    return ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=0.5,
        population=4,
        noise_multiplier=noise_multiplier,
        clip=0.5,
    )


def _verify(path: Path, rows: list[dict[str, Any]], expected: ExpectedPrivacy | None = None) -> Any:
    path.mkdir(parents=True, exist_ok=True)
    ledger, key = write_ledger(path / "l.ledger", rows)
    result = verify_ledger(ledger, key.public_key, expected=expected)
    assert result.chain.ok  # the signatures hold: only the row's figures object
    return result


def test_the_servers_adaptive_rows_verify_with_their_config_and_no_note(tmp_path: Path) -> None:
    result = _verify(tmp_path, adaptive_client_rows(COHORTS, Z, COUNT_STD, DELTA), _expected(Z))
    assert result.ok, result.first_failure
    assert not any("noise multiplier" in note for note in result.notes), result.notes


#: forged totals, each with the replayed claims unchanged
_FORGERIES = {
    # the fixture test_verify_coerced_figures.py once wrote: the split part as the total
    "the update's multiplier": lambda z, z_delta: z_delta,
    "twice the total": lambda z, z_delta: 2 * z,
    "half the total": lambda z, z_delta: z / 2,
    "a hair above": lambda z, z_delta: z * (1 + 1e-7),
}


@pytest.mark.parametrize("forge", _FORGERIES.values(), ids=list(_FORGERIES))
def test_a_total_its_releases_do_not_compose_to_fails(tmp_path: Path, forge: Any) -> None:
    rows = adaptive_client_rows(COHORTS, Z, COUNT_STD, DELTA)
    assert _verify(tmp_path / "honest", copy.deepcopy(rows)).ok
    z_delta = rows[1]["dp"]["adaptive_clipping"]["update_noise_multiplier"]
    rows[1]["dp"]["noise_multiplier"] = forge(Z, z_delta)
    failure = str(_verify(tmp_path / "forged", rows).first_failure)
    assert failure.startswith("row 2 (round 2): records total noise multiplier "), failure
    assert "its two releases compose to 1.5 " in failure, failure


def test_a_total_forged_to_the_configs_fails_instead_of_keeping_the_note_quiet(
    tmp_path: Path,
) -> None:
    """Rows that ran at z 1.5 (their releases say so) all recording the config's z 3:
    the note compares the total alone, so it said nothing and the rows verified."""
    rows = adaptive_client_rows(COHORTS, Z, COUNT_STD, DELTA)
    for row in rows:
        row["dp"]["noise_multiplier"] = 3.0
    result = _verify(tmp_path, rows, _expected(3.0))
    assert not result.ok
    assert str(result.first_failure).startswith(
        "row 1 (round 1): records total noise multiplier 3.0, but its two releases compose to 1.5 "
    ), result.first_failure


@pytest.mark.parametrize("count_std", [0.0, -8.0, None])
def test_a_count_noise_that_is_no_positive_number_fails_by_name(
    tmp_path: Path, count_std: Any
) -> None:
    rows = adaptive_client_rows(COHORTS, Z, COUNT_STD, DELTA)
    rows[1]["dp"]["adaptive_clipping"]["count_noise_stddev"] = count_std
    failure = str(_verify(tmp_path, rows).first_failure)
    assert failure.startswith("row 2 (round 2): records dp.adaptive_clipping.count_noise_stddev")


@pytest.mark.parametrize("z", np.geomspace(1e-3, 1e4, 8).tolist())
@pytest.mark.parametrize("ratio", [1.0000001, 1.1, 10.0, 1e6])
def test_the_servers_split_recomposes_within_float_noise(
    tmp_path: Path, z: float, ratio: float
) -> None:
    """Any split the server can write (count noise from just above z / 2 to far above it)
    recomposes to its total: measured within 3e-16 relative, the check allows 1e-9."""
    count_std = z * ratio / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near the limit the split warns: expected here
        adaptive_noise_split(z, count_std)
        rows = adaptive_client_rows(COHORTS[:1], z, count_std, DELTA)
    assert _verify(tmp_path, rows).ok
