"""docs/audit.md's ``secagg audit empirical`` table says how each figure is rounded.

Why: only the accountant's column said "rounded up"; the Gaussian-model estimate was
rounded up too (1.95 for 1.9427) and the lower bound as well (7.64 for 7.6388, which
the command prints rounded down, 7.638), with no word of it (newcomer walk-through,
2026-12-07). The figures are checked against the runs the table records (seed 0,
``--json``: measured 2026-12-07 with the commands above the table, ~15 s each).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: z -> (epsilon_lower, epsilon_estimate) of ``secagg audit empirical -z Z --rounds 10
#: --seed 0 --json``
MEASURED = {
    0.0: (7.638828299369132, 11.90987278482973),
    5.0: (1.2771638957101135, 3.4786813542806616),
    10.0: (0.5151131499122236, 1.9426713372437638),
}


def _table() -> list[list[str]]:
    section = (ROOT / "docs" / "audit.md").read_text().split("## `secagg audit empirical`")[1]
    lines = [line for line in section.splitlines() if line.startswith("| z |")]
    assert len(lines) == 1, lines
    start = section.splitlines().index(lines[0])
    rows = []
    for line in section.splitlines()[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_each_rounded_columns_header_says_how() -> None:
    header = _table()[0]
    lower, estimate = header[1], header[4]
    assert lower.startswith("95 % lower bound") and "rounded up at 2 decimals" in lower, lower
    assert estimate.startswith("Gaussian-model estimate"), estimate
    assert "rounded up at 2 decimals" in estimate, estimate
    assert "rounded up" in header[3], header[3]


def test_the_figures_are_the_runs_rounded_up_at_two_decimals() -> None:
    rows = _table()[2:]
    assert len(rows) == len(MEASURED), rows
    for cells in rows:
        z = float(re.match(r"[\d.]+", cells[0]).group())  # type: ignore[union-attr]
        lower, estimate = MEASURED[z]
        assert cells[1] == f"{math.ceil(lower * 100) / 100:.2f}", (z, cells[1])
        assert cells[4] == f"{math.ceil(estimate * 100) / 100:.2f}", (z, cells[4])
