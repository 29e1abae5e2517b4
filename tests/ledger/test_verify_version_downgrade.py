"""A row of an older layout than a row before it fails verification.

Why: a row's ``version`` is the layout of the secagg that wrote it (docs/audit.md: 3
since 2026-12-05, 2 since 2026-12-02, 1 before), and rows are written in order, so the
versions of a ledger never go down. Each older layout is held to fewer checks (a
version-2 central row without ``dp.sampling`` skips the sampling kind, rate, population
and ``delta < 1/N`` checks; a version-1 row need not say ``noise_seeded``). ``verify``
read each row's version on its own: a key holder could rewrite rows after version-3
rows in the version-2 layout without their sampling record (round 2 at a delta of 0.3
among 4 clients, the guarantee void), and they verified.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_dp, ledger_row, verify_rows

from secagg.dp.accountants import GaussianAccountant

Z, DELTA = 1.5, 1e-5
SAMPLING = {"kind": "poisson", "rate": 1.0, "population": 4, "seeded": False}


def _rows(count: int = 3, *, delta: float = DELTA) -> list[dict[str, Any]]:
    """Central rows charged to every client at rate 1, each recording ``dp.sampling``
    whole (version 3, what today's server writes)."""
    accountant = GaussianAccountant(delta, "rdp")
    rows = []
    for number in range(1, count + 1):
        accountant.step(Z, 1.0)
        dp = central_dp(Z, delta, sampling=copy.deepcopy(SAMPLING))
        rows.append(ledger_row(number, dp, accountant.epsilon(), delta=delta))
    return rows


def _downgraded(row: dict[str, Any], version: int) -> dict[str, Any]:
    """``row`` rewritten in the layout of ``version``: no sampling record (before 3),
    no noise_seeded (before 2)."""
    row = copy.deepcopy(row)
    row["version"] = version
    del row["dp"]["sampling"]
    if version < 2:
        del row["noise_seeded"]
    return row


def test_a_row_rewritten_in_the_version_2_layout_after_version_3_fails(tmp_path: Path) -> None:
    """Rounds 2-3 at delta 0.3 among 4 clients: a version-3 row fails it (delta at or
    above 1/population), the same rows rewritten as version 2 without their sampling
    record verified."""
    honest = _rows(1)
    loose = _rows(3, delta=0.3)
    as_written = verify_rows(tmp_path / "v3.ledger", [honest[0], *loose[1:]])
    assert "a delta of at least 1/4" in str(as_written.first_failure)
    rows = [honest[0], *(_downgraded(row, 2) for row in loose[1:])]
    result = verify_rows(tmp_path / "l.ledger", rows)
    assert not result.ok
    failure = str(result.first_failure)
    assert failure.startswith("row 2 (round 2): is row version 2 after version 3 (row 1)"), failure
    assert "versions never go down" in failure


@pytest.mark.parametrize(("before", "after"), [(3, 2), (3, 1), (2, 1)])
def test_any_lower_version_after_a_higher_one_fails(
    tmp_path: Path, before: int, after: int
) -> None:
    rows = _rows()
    if before < 3:
        rows[0], rows[1] = (_downgraded(row, before) for row in rows[:2])
    rows[2] = _downgraded(rows[2], after)
    result = verify_rows(tmp_path / "l.ledger", rows)
    assert str(result.first_failure).startswith(
        f"row 3 (round 3): is row version {after} after version {before} (row 1): "
    ), result.first_failure


def test_versions_that_go_up_verify(tmp_path: Path) -> None:
    """A federation whose server was upgraded: 1, then 2, then 3."""
    rows = _rows()
    rows[0] = _downgraded(rows[0], 1)
    rows[1] = _downgraded(rows[1], 2)
    result = verify_rows(tmp_path / "l.ledger", rows)
    assert result.ok, result.first_failure


def test_the_prior_ledgers_rows_count_as_rows_before(tmp_path: Path) -> None:
    """Rounds 1-2 archived at version 3, round 3 in the live ledger at version 2: the
    rounds go on in time across the two files, so the version does too."""
    from secagg.ledger import Ledger, LedgerKey
    from secagg.ledger.verify import verify_ledger

    rows = _rows()
    key = LedgerKey.generate()
    for name, part in (("prior.ledger", rows[:2]), ("live.ledger", [_downgraded(rows[2], 2)])):
        ledger = Ledger(tmp_path / name, key)
        for row in part:
            ledger.append(row)
        ledger.close()
    result = verify_ledger(
        tmp_path / "live.ledger", key.public_key, prior_ledger=tmp_path / "prior.ledger"
    )
    assert str(result.first_failure).startswith(
        "row 1 (round 3): is row version 2 after version 3 (row 1 of the prior ledger "
    ), result.first_failure
