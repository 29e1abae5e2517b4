"""Record-level DP-SGD: a branch may not account at a delta above its row's, by any amount.

A branch's report was held to its row's delta with the symmetric float tolerance (1e-9
relative): a branch accounting at a hair *larger* delta (so a hair smaller epsilon)
than the row prints verified. The writer records both from the same float, so the
unsafe side now fails at any distance; a hair below is still float noise and passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows

from secagg.dp.accountants import RecordLevelAccountant

DELTA = 1e-5
HISTORY = [(1.0, 0.02, 100)]


def _row(branch_delta: float) -> dict[str, Any]:
    with np.errstate(divide="ignore"):
        epsilon = RecordLevelAccountant("rdp", branch_delta, HISTORY).epsilon()
    report = branch_report(HISTORY, epsilon, delta=branch_delta)
    return record_dpsgd_row(1, ["h-a"], {"h-a": report}, delta=DELTA)


@pytest.mark.parametrize(
    ("branch_delta", "verifies"),
    [(DELTA, True), (DELTA * (1 - 5e-10), True), (DELTA * (1 + 5e-10), False)],
    ids=["same", "a-hair-below", "a-hair-above"],
)
def test_a_branch_delta_above_the_rows_fails(
    tmp_path: Path, branch_delta: float, verifies: bool
) -> None:
    result = verify_rows(tmp_path / "r.sqlite", [_row(branch_delta)])
    assert result.ok is verifies, result.first_failure
    if not verifies:
        assert f"accounts at delta {branch_delta} but the row accounts at delta {DELTA}" in str(
            result.failure
        )
