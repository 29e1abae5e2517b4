"""The report's branch table shows each branch's delta as ``audit verify`` and the
budget line show a delta: 6 significant digits, rounded up (a smaller delta would
flatter). It printed the recorded float whole (``1.2345641e-06``) beside the budget
line's ``1.23457e-06`` for the same delta.
"""

from __future__ import annotations

from pathlib import Path

from _ledgers import branch_report, record_dpsgd_row, write_ledger

from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger.report import build_report

DELTA = 1.2345641e-06
HISTORY = [(1.0, 0.02, 100)]


def test_the_branch_table_rounds_its_delta_up_as_the_budget_line_does(tmp_path: Path) -> None:
    epsilon = RecordLevelAccountant("rdp", DELTA, HISTORY).epsilon()
    row = record_dpsgd_row(
        1, ["h-a"], {"h-a": branch_report(HISTORY, epsilon, delta=DELTA)},
        delta=DELTA, population=1,
    )  # fmt: skip
    path, key = write_ledger(tmp_path / "r.ledger", [row])
    text, _ = build_report(path, key.public_key)
    assert "**VERIFIED**" in text
    spent = next(x for x in text.splitlines() if x.startswith("- budget spent"))
    assert "at delta = 1.23457e-06" in spent
    branch = next(x for x in text.splitlines() if x.startswith("| `h-a"))
    cells = [cell.strip() for cell in branch.strip("|").split("|")]
    assert cells[3] == "1.23457e-06", branch
    assert "1.2345641e-06" not in text
