"""``audit verify`` on distributed-DP rows: the honest noise shares and the noise share's
size follow from what the row records, not from the operator's word (DP audit,
2026-12-04).

Each forged ledger carries the claims its forged parameters give (the operator holds
the key and recomputes them), so only the consistency checks can object.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
from _ledgers import distributed_rows, write_ledger
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import DiscreteGaussianAccountant
from secagg.dp.config import DPSettings
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.dp.release import DistributedRelease, mechanism_for
from secagg.ledger import LedgerKey
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

DELTA, N = 1e-5, 4
NAMES = [f"branch-{i}" for i in range(N)]


def _mechanism(corrupt_fraction: float = 0.25, population: int = N) -> DistributedRelease:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(population),
            corrupt_fraction=corrupt_fraction,
            seed=b"s" * 16,
            population=population,
        )
    assert isinstance(mechanism, DistributedRelease)
    return mechanism


def _rows(contributed: list[int], corrupt_fraction: float = 0.25) -> list[dict[str, Any]]:
    """Distributed rows as the server writes them: ``contributed[i]`` of N in round i+1."""
    return distributed_rows(_mechanism(corrupt_fraction), contributed, NAMES, DELTA)


def _reclaim(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The claims a forger computes for the rows' recorded (forged) parameters."""
    accountant = None
    for row in rows:
        dp = row["dp"]
        if accountant is None:
            ddg = dp["ddg"]
            mechanism = DistributedDiscreteGaussian(
                dimension=ddg["dimension"],
                clip=dp["clip"],
                noise_multiplier=dp["noise_multiplier"],
                expected_clients=ddg["expected_clients"],
                bits=ddg["bits"],
                scale=ddg["scale"],
            )
            accountant = DiscreteGaussianAccountant(mechanism, sample_rate=1.0, delta=DELTA)
        accountant.step(dp["noise_contributors"])
        row["privacy"]["epsilon"] = accountant.epsilon()
    return rows


def _verify(tmp_path: Path, rows: list[dict[str, Any]], **extra: Any) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    key = LedgerKey.generate()
    path = write_ledger(tmp_path / "d.sqlite", rows, key)[0]
    result = verify_ledger(path, key.public_key, **extra)
    assert result.chain.ok  # the signatures hold: only the replay may object
    return result


def test_release_records_the_colluders_behind_its_honest_count() -> None:
    row = _rows([3])[0]
    assert row["dp"]["corrupt_fraction"] == 0.25
    assert row["dp"]["assumed_colluders"] == 2  # at least 2 while a cohort of 4 has room
    assert row["dp"]["noise_contributors"] == 1


def test_genuine_distributed_rows_with_dropouts_verify(tmp_path: Path) -> None:
    result = _verify(tmp_path, _rows([4, 3, 4]))
    assert result.ok, result.first_failure


@pytest.mark.parametrize("legacy", [False, True], ids=["recorded", "fields-dropped"])
def test_more_honest_shares_than_contributions_less_colluders_fail(
    tmp_path: Path, legacy: bool
) -> None:
    """Audit t1: 2 of 4 contributed, the row counts 50 honest shares (epsilon 0.87
    where the server's rule gives 0 honest shares, epsilon infinite). Dropping the
    fields a newer row records (pretending to be an older row) does not help: an older
    row is held to the fewest colluders the rule ever assumes."""
    rows = _rows([2, 2])
    for row in rows:
        row["dp"]["noise_contributors"] = 50
        if legacy:
            del row["dp"]["corrupt_fraction"], row["dp"]["assumed_colluders"]
    failure = _verify(tmp_path, _reclaim(rows)).first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): counts 50 honest")
    assert "at most 0 shares are honest" in failure


def test_a_row_that_assumes_fewer_colluders_than_the_rule_fails(tmp_path: Path) -> None:
    rows = _rows([4])
    rows[0]["dp"]["assumed_colluders"] = 0
    rows[0]["dp"]["noise_contributors"] = 4
    failure = _verify(tmp_path, _reclaim(rows)).first_failure
    assert failure is not None and "records 0 assumed colluders" in failure


def test_a_recorded_local_sigma_the_parameters_do_not_give_fails(tmp_path: Path) -> None:
    """Audit t7: expected_clients forged to 1 beside the 4-client noise share: the replay
    sized the noise from expected_clients and the claim fell (5.21 -> 2.38)."""
    rows = _rows([4, 4])
    for row in rows:
        row["dp"]["ddg"]["expected_clients"] = 1
    failure = _verify(tmp_path, _reclaim(rows)).first_failure
    assert failure is not None and "local noise share of sigma" in failure


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dimension", 8, "dimension"),
        ("bits", 64, "ring bits"),
        ("expected_clients", 2.0, "expected clients"),
        ("corrupt_fraction", 0.5, "corrupt fraction"),
    ],
)
def test_distributed_rows_are_checked_against_the_configs_ddg(
    tmp_path: Path, field: str, value: float, message: str
) -> None:
    expected = {
        "delta": DELTA,
        "unit": "client",
        "mechanism": "distributed",
        "sampling_kind": "poisson",
        "sample_rate": 1.0,
        "population": N,
        "dimension": 16,
        "bits": 32,
        "expected_clients": float(N),
        "corrupt_fraction": 0.25,
    }
    assert _verify(tmp_path / "a", _rows([4]), expected=ExpectedPrivacy(**expected)).ok
    wrong = ExpectedPrivacy(**(expected | {field: value}))
    failure = _verify(tmp_path / "b", _rows([4]), expected=wrong).first_failure
    assert failure is not None and message in failure


@settings(max_examples=60, deadline=None)
@given(
    participants=st.integers(2, 40),
    dropped=st.integers(0, 40),
    corrupt_fraction=st.sampled_from([0.0, 0.1, 0.25, 1 / 3, 0.5]),
    population=st.integers(2, 80),
    sampled=st.booleans(),
)
def test_the_servers_own_count_passes_and_one_more_share_fails(
    participants: int, dropped: int, corrupt_fraction: float, population: int, sampled: bool
) -> None:
    """Whatever the cohort, dropouts and threat model, the count the release writes is
    exactly the most the check allows."""
    from secagg.ledger.verify import _check_noise_shares

    contributors = max(0, participants - dropped)
    population = max(population, participants) if sampled else participants
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=4,
            bits=32,
            sample_rate=0.5 if sampled else 1.0,
            expected_clients=float(participants),
            corrupt_fraction=corrupt_fraction,
            population=population,
        )
    store = mechanism.charge_at_reveal(contributors=contributors, participants=participants)
    dp = mechanism.ledger_block(store) | {
        "sampling": {"kind": "poisson", "rate": 0.5 if sampled else 1.0, "population": population}
    }
    entry = {
        "status": "complete",
        "participants": {"count": participants},
        "contributed": contributors,
    }
    assert _check_noise_shares(entry, dp) is None
    forged = copy.deepcopy(dp)
    forged["noise_contributors"] += 1
    assert _check_noise_shares(entry, forged) is not None


def _record_block() -> dict[str, Any]:
    """A record-level distributed row's DP block as the release writes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mechanism = mechanism_for(
            DPSettings(
                unit="record",
                mechanism="distributed",
                noise_multiplier=2.0,
                delta=DELTA,
                clip=5.0,
                record_clip=0.01,
            ),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(N),
            corrupt_fraction=0.25,
            seed=b"s" * 16,
        )
    store = mechanism.charge_at_reveal(contributors=N, participants=N)
    return mechanism.ledger_block(store) | {
        "sampling": {"kind": "poisson", "rate": 1.0, "population": N, "seeded": False}
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"sample_rate": 0.1}, "at sample rate 0.1"),  # audit t3: claims 2.01 -> 0.51
        ({"noise_std": 0.05}, "records noise std"),  # z x record_clip is 0.02
    ],
)
def test_record_level_distributed_rows_get_the_distributed_checks(
    edit: dict[str, Any], message: str
) -> None:
    """Record-level distributed rows skipped every consistency check (the function
    returned early for any unit but "client"), so amplification by sampling verified."""
    from secagg.ledger.verify import _check_consistency

    block = _record_block()
    privacy = {"delta": DELTA}
    assert _check_consistency(block, privacy, {"count": N}) is None
    problem = _check_consistency(block | edit, privacy, {"count": N})
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    "recorded",
    [
        lambda sigma: sigma + 0.9,  # 4.9 where 4 is required: int() truncated it to a pass
        lambda sigma: float(sigma) + 0.5,
        lambda sigma: str(sigma),  # "4": int() parsed it
        lambda sigma: float("inf"),  # the ledger holds it as "inf": int() raised
        lambda sigma: [sigma],  # int() raised TypeError
    ],
    ids=["plus-0.9", "plus-0.5", "string", "inf", "list"],
)
def test_a_recorded_local_sigma_is_compared_exactly(tmp_path: Path, recorded: Any) -> None:
    """Review 2026-12-05: ``int(recorded_sigma)`` truncated a fractional noise share
    before comparing it, so a row recording sigma 4.9 beside parameters that give 4
    verified. The recorded share is the integer the parameters give, or the row fails,
    named."""
    rows = _rows([4, 4])
    sigma = rows[0]["dp"]["ddg"]["local_sigma"]
    assert isinstance(sigma, int) and not isinstance(sigma, bool)
    assert _verify(tmp_path / "honest", copy.deepcopy(rows)).ok
    for row in rows:
        row["dp"]["ddg"]["local_sigma"] = recorded(sigma)
    failure = _verify(tmp_path / "forged", rows).first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): ")
    assert "local noise share of sigma" in failure and f"give {sigma}" in failure


@pytest.mark.parametrize("field", ["dimension", "expected_clients", "bits"])
@pytest.mark.parametrize(
    "forge",
    [
        lambda value: value + 0.9,  # int() truncated it back to the honest figure
        lambda value: float(value),  # 40.0: a float is not the count the row must hold
        lambda value: str(value),  # "40": int() parsed it
        lambda value: True,  # a bool is no count
    ],
    ids=["plus-0.9", "float", "string", "bool"],
)
def test_the_discrete_gaussians_counts_are_whole_numbers_or_the_row_fails(
    tmp_path: Path, field: str, forge: Any
) -> None:
    """Review 2026-12-05: the replay rebuilt the mechanism with ``int(dimension)``,
    ``int(expected_clients)`` and ``int(bits)``, so a row recording 4.9 expected clients
    (or "32" bits) replayed as the honest figure and verified."""
    rows = _rows([4, 4])
    value = rows[0]["dp"]["ddg"][field]
    assert isinstance(value, int) and not isinstance(value, bool)
    assert _verify(tmp_path / "honest", copy.deepcopy(rows)).ok
    for row in rows:
        row["dp"]["ddg"][field] = forge(value)
    failure = _verify(tmp_path / "forged", rows).first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): ")
