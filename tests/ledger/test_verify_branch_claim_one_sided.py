"""Record-level DP-SGD: a branch's claim and its re-derived epsilon are compared on the
safe side only.

Before: a branch's stated epsilon could lie up to one part in a million *below* what
its DP-SGD history gives (the tolerance was symmetric), and a branch's re-derived
epsilon could go *down* by as much between two reports whose histories extend one
another (Opacus's PRV accountant: a near-free step appended to 100 steps drops it by
1.5e-7 relative); the row's worst-branch epsilon then went down with it and verified.
Now a claim may lie above its history's epsilon within 1e-6 (the safe side), below it
only within float noise (1e-8). A drop of a branch's re-derived epsilon is PRV's own
(its bound is only within its eps_error, 0.01): within it the branch keeps its larger
figure, as the server does, so a row claiming the lower one fails; beyond it (or
between other accountants, beyond float noise) it fails as a drop
(``test_verify_record_epsilon_drop.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from _ledgers import branch_report, record_dpsgd_row, verify_rows

from secagg.dp.accountants import RecordLevelAccountant

DELTA = 1e-5
BRANCH = "h-a"
BASE = [(1.0, 0.02, 100)]
#: a step of almost no cost: PRV's epsilon of BASE + it is below BASE's by ~1.5e-7
FREE = (1e4, 1e-4, 10)


def _epsilon(accountant: str, history: list[tuple[float, float, int]]) -> float:
    with np.errstate(divide="ignore"):
        return RecordLevelAccountant(accountant, DELTA, history).epsilon()


def _row(
    number: int, history: list[tuple[float, float, int]], claim: float, accountant: str = "rdp"
) -> dict[str, Any]:
    """A completed record-level round of one branch whose report states ``claim``."""
    report = branch_report(history, claim, delta=DELTA, accountant=accountant)
    return record_dpsgd_row(number, [BRANCH], {BRANCH: report}, delta=DELTA, population=1)


def _verify(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    return verify_rows(tmp_path / "r.sqlite", rows)


def test_a_branch_claim_below_its_history_by_one_part_in_a_million_fails(
    tmp_path: Path,
) -> None:
    true = _epsilon("rdp", BASE)
    claim = true * (1 - 5e-7)
    result = _verify(tmp_path, [_row(1, BASE, claim)])
    assert not result.ok
    assert f"claims record-level epsilon {claim} but its DP-SGD history gives {true}" in str(
        result.failure
    )


def test_a_branch_claim_above_its_history_within_the_tolerance_verifies(tmp_path: Path) -> None:
    true = _epsilon("rdp", BASE)
    result = _verify(tmp_path, [_row(1, BASE, true * (1 + 5e-7))])
    assert result.ok, result.first_failure
    assert result.record_level[BRANCH] == true


def test_a_branch_epsilon_that_goes_down_is_kept_at_the_larger_figure(tmp_path: Path) -> None:
    before, after = _epsilon("prv", BASE), _epsilon("prv", [*BASE, FREE])
    assert before * (1 - 1e-6) < after < before * (1 - 1e-8)  # the drop this test is about
    rows = [_row(1, BASE, before, "prv"), _row(2, [*BASE, FREE], after, "prv")]
    result = _verify(tmp_path, rows)
    # the row claims the lower figure: below the branch's kept epsilon, it flatters
    assert not result.ok
    assert str(result.failure).startswith("row 2 (round 2): claims epsilon")
    assert "below the mechanism's" in str(result.failure)
    # what was re-derived never reads less than the round before
    figures = [epsilon for _, epsilon in result.epsilons]
    assert figures == [before, before]
    rows[1]["privacy"]["epsilon"] = before  # the row claims the kept figure: it holds
    result = verify_rows(tmp_path / "kept.sqlite", rows)
    assert result.ok, result.first_failure
    assert result.record_level == {BRANCH: before}


def test_an_extending_history_whose_epsilon_grows_verifies(tmp_path: Path) -> None:
    longer = [(1.0, 0.02, 200)]
    rows = [
        _row(1, BASE, _epsilon("prv", BASE), "prv"),
        _row(2, longer, _epsilon("prv", longer), "prv"),
    ]
    result = _verify(tmp_path, rows)
    assert result.ok, result.first_failure
    assert result.epsilons[1][1] > result.epsilons[0][1]
