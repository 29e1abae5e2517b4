"""``audit verify`` on record-level DP-SGD rows: every update in a completed round's sum
is covered by a branch report, and a completed DP round claims an epsilon (DP audit,
2026-12-04: dropping one participant's report, or all of them, verified; the latter as
private with no epsilon at all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows

from secagg.dp.accountants import RecordLevelAccountant

DELTA = 1e-5
BRANCHES = ["h-a", "h-b", "h-c"]


def _report(steps: int) -> dict[str, Any]:
    history = [(1.0, 0.02, steps)]
    epsilon = RecordLevelAccountant("rdp", DELTA, history).epsilon()
    return branch_report(history, epsilon, delta=DELTA)


def _row(number: int, reporting: list[str]) -> dict[str, Any]:
    """A completed round of all BRANCHES (listed by hash), with reports from ``reporting``."""
    reports = {h: _report(100 * number) for h in reporting}
    return record_dpsgd_row(number, BRANCHES, reports, delta=DELTA, population=3)


def _verify(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    return verify_rows(tmp_path / "r.sqlite", rows)


def test_every_contributor_reported_verifies(tmp_path: Path) -> None:
    result = _verify(tmp_path, [_row(1, BRANCHES), _row(2, BRANCHES)])
    assert result.ok, result.first_failure


@pytest.mark.parametrize("reporting", [BRANCHES[:2], []], ids=["one-missing", "none"])
def test_a_contributor_without_a_report_fails(tmp_path: Path, reporting: list[str]) -> None:
    result = _verify(tmp_path, [_row(1, reporting), _row(2, reporting)])
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 1 (round 1)")
    assert f"holds DP-SGD reports of only {len(reporting)}" in result.first_failure


def test_a_report_from_a_stranger_does_not_cover_a_contributor(tmp_path: Path) -> None:
    row = _row(1, BRANCHES[:2])
    row["dp"]["client_reports"]["h-x"] = _report(100)
    result = _verify(tmp_path, [row])
    assert result.first_failure is not None and "not among its participants" in result.first_failure


def test_a_completed_dp_row_without_a_claim_fails(tmp_path: Path) -> None:
    """A DP block on a completed round says something was released under DP; a row
    that claims no epsilon states no cost, and must not read as private (it did: a
    record-level row with no reports claimed None and verified)."""
    row = _row(1, [])
    row["contributed"] = 0  # even with no update to cover
    result = _verify(tmp_path, [row])
    assert result.first_failure is not None and "claims no epsilon" in result.first_failure
