"""``audit verify`` compares the figures a row records as they are, never coerced.

Review 2026-12-05, finding 4: where ``verify`` read a recorded figure with ``float()``
or compared it with ``==``, a row recording it as a string (``"1e-05"``), a boolean or
a float where a count belongs verified as if it held the number; and one check was
skipped when its field was missing. Each row here is signed with the ledger key (the
operator's forgery) and carries the claims its figures give, so only the reading of
the figures can object. Cases, each verified before:

* a record-level branch report stating its epsilon, or its delta, as a string;
* a distributed row recording the discrete Gaussian's scale as a string, or (on a row
  after the first) its dimension or ring bits as a float (4.0 equals 4, and only the
  first row's were held to whole numbers);
* an adaptive-clipping row recording its update noise multiplier or the count's noise
  as a string;
* a client-level row without ``noise_std``: the check that the noise added is z x
  clip was skipped, so the replayed z was taken on the row's word alone;
* ``dp.sum_revealed`` as a string: read as "not revealed", the round went uncharged.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
from _ledgers import (
    adaptive_client_rows,
    central_client_rows,
    distributed_rows,
    write_ledger,
)

from secagg.dp.config import DPSettings
from secagg.dp.release import DistributedRelease, mechanism_for
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5
N = 4
NAMES = [f"branch-{i}" for i in range(N)]


def _verify(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    result = verify_ledger(path, key.public_key)
    assert result.chain.ok  # the signatures hold: only the reading of the rows objects
    return result


# --- record level ---------------------------------------------------------------------


def _report(steps: int) -> dict[str, Any]:
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism="rdp")
    accountant.history = [(1.0, 0.02, steps)]
    return {
        "accountant": "rdp",
        "delta": DELTA,
        "history": [[1.0, 0.02, steps]],
        "epsilon": float(accountant.get_epsilon(delta=DELTA)),
    }


def _record_rows() -> list[dict[str, Any]]:
    rows = []
    for number in (1, 2):
        reports = {"a" * 64: _report(100 * number), "b" * 64: _report(100 * number)}
        rows.append(
            {
                "round": number,
                "status": "complete",
                "participants": {"count": 2, "identity_hashes": sorted(reports)},
                "contributed": 2,
                "dropouts": {},
                "backend": {"name": "secagg+"},
                "dp": {
                    "unit": "record",
                    "mechanism": "dpsgd",
                    "clip": 5.0,
                    "sample_rate": 1.0,
                    "accountant": "in-clients",
                    "delta": DELTA,
                    "client_reports": reports,
                },
                "privacy": {"epsilon": max(r["epsilon"] for r in reports.values()), "delta": DELTA},
                "model_sha256": f"{number:064x}",
                "noise_seeded": False,
                "version": 2,
            }
        )
    return rows


@pytest.mark.parametrize(
    ("field", "forge", "words"),
    [
        ("epsilon", str, "states epsilon"),
        ("delta", str, "accounts at delta"),
        ("epsilon", lambda eps: [eps], "states epsilon"),
    ],
    ids=["epsilon-string", "delta-string", "epsilon-list"],
)
def test_a_branch_report_figure_that_is_not_a_number_fails(
    tmp_path: Path, field: str, forge: Any, words: str
) -> None:
    rows = _record_rows()
    assert _verify(tmp_path / "honest", copy.deepcopy(rows)).ok
    report = rows[1]["dp"]["client_reports"]["a" * 64]
    report[field] = forge(report[field])
    failure = str(_verify(tmp_path / "forged", rows).first_failure)
    assert failure.startswith("row 2 (round 2): ") and words in failure, failure


# --- distributed ----------------------------------------------------------------------


def _distributed_rows(count: int = 2) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(N),
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=N,
        )
    assert isinstance(mechanism, DistributedRelease)
    return distributed_rows(mechanism, [N] * count, NAMES, DELTA)


@pytest.mark.parametrize(
    ("rows_forged", "field", "forge"),
    [
        ((0, 1), "scale", str),
        ((1,), "dimension", float),
        ((1,), "bits", float),
        ((1,), "expected_clients", float),
    ],
    ids=["scale-string", "dimension-float-later", "bits-float-later", "clients-float-later"],
)
def test_a_discrete_gaussian_figure_of_the_wrong_type_fails(
    tmp_path: Path, rows_forged: tuple[int, ...], field: str, forge: Any
) -> None:
    rows = _distributed_rows()
    assert _verify(tmp_path / "honest", copy.deepcopy(rows)).ok
    for index in rows_forged:
        rows[index]["dp"]["ddg"][field] = forge(rows[index]["dp"]["ddg"][field])
    failure = str(_verify(tmp_path / "forged", rows).first_failure)
    first = rows_forged[0] + 1
    assert failure.startswith(f"row {first} (round {first}): "), failure
    assert f"discrete Gaussian's {field}" in failure


def test_sum_revealed_that_is_not_a_boolean_fails(tmp_path: Path) -> None:
    """An aborted distributed row after its sum was revealed is charged; the same row
    saying ``"sum_revealed": "true"`` was read as unrevealed and charged nothing."""
    rows = _distributed_rows(3)
    rows[1]["status"] = "aborted"
    rows[1]["dp"]["sum_revealed"] = "true"
    rows[1]["model_sha256"] = rows[0]["model_sha256"]
    rows[1]["privacy"]["epsilon"] = rows[0]["privacy"]["epsilon"]  # charged nothing
    rows[2]["privacy"]["epsilon"] = _distributed_rows(2)[1]["privacy"]["epsilon"]
    failure = str(_verify(tmp_path, rows).first_failure)
    assert failure.startswith("row 2 (round 2): ") and "sum_revealed" in failure, failure


# --- central client level ---------------------------------------------------------------


def _adaptive_rows(z: float = 1.5, count_std: float = 8.0) -> list[dict[str, Any]]:
    # consistent: total z, the update at the z_delta the count leaves (once z_delta = z,
    # a row that now fails on its total, not on the string the tests below forge)
    return adaptive_client_rows([("a", "b"), ("a", "c")], z, count_std, DELTA)


@pytest.mark.parametrize("field", ["update_noise_multiplier", "count_noise_stddev"])
def test_an_adaptive_clipping_figure_that_is_a_string_fails(tmp_path: Path, field: str) -> None:
    rows = _adaptive_rows()
    assert _verify(tmp_path / "honest", copy.deepcopy(rows)).ok
    adaptive = rows[1]["dp"]["adaptive_clipping"]
    adaptive[field] = str(adaptive[field])
    failure = str(_verify(tmp_path / "forged", rows).first_failure)
    assert failure.startswith("row 2 (round 2): ") and field in failure, failure


def test_a_client_row_without_its_noise_std_fails(tmp_path: Path) -> None:
    rows, _ = central_client_rows([("a", "b"), ("a", "c")], 1.5, DELTA)
    del rows[1]["dp"]["noise_std"]
    failure = str(_verify(tmp_path, rows).first_failure)
    assert failure.startswith("row 2 (round 2): ") and "noise_std" in failure, failure


@pytest.mark.parametrize("field", ["dimension", "bits", "expected_clients"])
def test_an_uncharged_rows_discrete_gaussian_is_held_to_the_config_as_recorded(
    tmp_path: Path, field: str
) -> None:
    """An aborted round (its sum never revealed) is not replayed, so only ``--config``
    reads its discrete Gaussian: ``recorded != want`` passed 16.0 for 16 and True for 1."""
    from secagg.ledger.verify import ExpectedPrivacy

    expected = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="distributed",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=N,
        dimension=16,
        bits=32,
        expected_clients=float(N),
        corrupt_fraction=0.25,
    )
    rows = _distributed_rows(3)
    rows[1]["status"] = "aborted"
    rows[1]["model_sha256"] = rows[0]["model_sha256"]
    rows[1]["privacy"]["epsilon"] = rows[0]["privacy"]["epsilon"]
    rows[2]["privacy"]["epsilon"] = _distributed_rows(2)[1]["privacy"]["epsilon"]
    path, key = write_ledger(tmp_path / "honest.ledger", copy.deepcopy(rows))
    assert verify_ledger(path, key.public_key, expected=expected).ok
    rows[1]["dp"]["ddg"][field] = float(rows[1]["dp"]["ddg"][field])
    path, key = write_ledger(tmp_path / "forged.ledger", rows)
    failure = str(verify_ledger(path, key.public_key, expected=expected).first_failure)
    assert failure.startswith("row 2 (round 2): records a discrete Gaussian of"), failure
