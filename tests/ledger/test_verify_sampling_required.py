"""A DP row must record how its cohort was drawn (``dp.sampling``) whenever it can be
told from a row written before the record existed, and whenever ``--config`` samples.

The server writes ``dp.sampling`` (kind, rate, population) on every DP row since
2026-12-02 (``seeded`` beside them since 2026-12-03 15:00), and
rows charged per client (``dp.composition = "per_client"``, since 2026-12-03 21:23)
came later still: such a row without it was not written by any server. Without it
verify skipped the sampling kind/rate checks, the ``delta >= 1/N`` check (a row at
delta 0.3 among 4 clients verified) and the renamed-identity population check, and
under ``--config`` the kind/rate/population comparison (left alone in the review of
2026-12-05). Row version 2 (2026-12-02 00:46) predates the record and cannot tell
old rows from new; the per-client marker can. Rows of version 3 (2026-12-05) must
record it whatever else they hold (test_verify_row_version). Rows in the older format
still verify without ``--config`` (counted in ``rows_without_sampling``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from _ledgers import central_client_rows, central_dp, ledger_row, write_ledger

from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _expected(rate: float) -> ExpectedPrivacy:
    return ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=rate,
        population=4,
    )


@pytest.mark.parametrize("drop", [None, "kind", "rate", "population"])
def test_a_per_client_row_without_its_sampling_record_fails(
    tmp_path: Path, drop: str | None
) -> None:
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    path, key = write_ledger(tmp_path / "honest.ledger", copy.deepcopy(rows))
    assert verify_ledger(path, key.public_key).ok
    if drop is None:
        del rows[1]["dp"]["sampling"]
    else:
        del rows[1]["dp"]["sampling"][drop]
    # rewritten as a row of version 2 (which may lack the record): the per-client
    # marker still tells it was written after it (version 3: test_verify_row_version).
    # Every row rewritten so: a lower version after a higher one fails on its own
    # (test_verify_version_downgrade)
    for row in rows:
        row["version"] = 2
    path, key = write_ledger(tmp_path / "forged.ledger", rows)
    failure = str(verify_ledger(path, key.public_key).first_failure)
    assert failure.startswith("row 2 (round 2): is charged per client (dp.composition")
    assert "dp.sampling" in failure


def test_dropping_the_sampling_record_no_longer_hides_a_delta_of_one_in_n(
    tmp_path: Path,
) -> None:
    """At delta 0.3 among 4 clients no epsilon is a guarantee: with ``dp.sampling`` the
    row fails; without it the population was unknown and the ledger verified."""
    rows, _ = central_client_rows(COHORTS, Z, 0.3)
    for row in rows:
        row["privacy"]["delta"] = 0.3  # the figure it prints is the one it accounts at
    path, key = write_ledger(tmp_path / "honest.ledger", copy.deepcopy(rows))
    assert "allows releasing one client's data" in str(
        verify_ledger(path, key.public_key).first_failure
    )
    for row in rows:
        del row["dp"]["sampling"]
    path, key = write_ledger(tmp_path / "forged.ledger", rows)
    result = verify_ledger(path, key.public_key)
    assert not result.ok and "dp.sampling" in str(result.first_failure)


def _older_rows() -> list[dict]:
    """Rows from before per-client charging and the sampling record (RDP, every
    client charged each round at rate 1)."""
    from secagg.dp.accountants import GaussianAccountant

    accountant = GaussianAccountant(DELTA, "rdp")
    rows = []
    for number in range(1, 4):
        accountant.step(Z, 1.0)
        rows.append(ledger_row(number, central_dp(Z, DELTA), accountant.epsilon()))
    return rows


def test_an_older_row_without_the_record_still_verifies_alone(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "older.ledger", _older_rows())
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.without_sampling == 3
    # a config that does not sample has nothing to compare the record with
    assert verify_ledger(path, key.public_key, expected=_expected(1.0)).ok


def test_under_a_sampling_config_every_row_must_record_its_sampling(tmp_path: Path) -> None:
    """The config samples at 0.5: a row that does not say how its cohort was drawn
    cannot be checked against it (kind, rate, population), so it fails; it verified."""
    path, key = write_ledger(tmp_path / "older.ledger", _older_rows())
    result = verify_ledger(path, key.public_key, expected=_expected(0.5))
    assert not result.ok
    failure = str(result.first_failure)
    assert failure.startswith("row 1 (round 1): records no dp.sampling but the config samples")
