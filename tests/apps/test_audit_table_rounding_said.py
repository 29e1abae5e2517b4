"""docs/audit.md's ``secagg audit empirical`` table says how each figure is rounded, and
its lower bounds are what the command prints.

Why: only the accountant's column said "rounded up"; the Gaussian-model estimate was
rounded up too (1.95 for 1.9427) and the lower bound as well (7.64 for 7.6388, which
the command prints rounded down, 7.638), with no word of it (newcomer walk-through,
2026-12-07). The header then said so, but a lower bound rounded up is a leak larger
than the run shows, against the page's own rule (figures rounded toward the side a
reader may rely on: a lower bound down), and a reader running the command saw 7.638
where the page said 7.64 (helper brief 321): the column is now the command's figure,
and the prose's "lower bound of 7.638" too. The figures are checked against the runs
the table records (seed 0, ``--json``: measured 2026-12-07 with the commands above the
table, ~15 s each, and again by helper 321 the same day, the same figures), printed by
the command's own text output.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.audit.empirical import EmpiricalAudit
from secagg.apps.cli import main

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


def _printed_lower_bound(monkeypatch: pytest.MonkeyPatch, z: float) -> str:
    """The lower bound ``secagg audit empirical`` prints for the run of ``z`` the table
    records (the run's figures given to the command's own printout)."""
    import secagg.apps.audit.empirical as empirical

    lower, estimate = MEASURED[z]
    audit = EmpiricalAudit(
        epsilon_lower=lower, confidence=0.95, method="Clopper-Pearson",
        claimed_epsilon=math.inf, accountant_epsilon=math.inf, consistent=True,
        threshold_fpr=1e-3, hits=6, tpr_lower=0.001, held_out_fpr=0.0, null_check_p=0.5,
        epsilon_estimate=estimate, mu_estimate=1.0, delta=1e-5, canaries=400,
        dimension=2081, rounds=10, noise_multiplier=z, backend="plain",
        inserted_cosine_mean=0.05, held_out_cosine_mean=0.0, held_out_cosine_std=0.02,
    )  # fmt: skip
    monkeypatch.setattr(empirical, "run_canary_audit", lambda **_: audit)
    result = CliRunner().invoke(main, ["audit", "empirical", "-z", f"{z:g}", "--seed", "0"])
    found = re.search(r"empirical lower bound\s+(\S+)", result.output)
    assert found is not None, result.output
    return found.group(1)


def test_each_rounded_columns_header_says_how() -> None:
    header = _table()[0]
    lower, estimate = header[1], header[4]
    assert lower.startswith("95 % lower bound") and "as the command prints it" in lower, lower
    assert "rounded down, at 3 decimals" in lower, lower
    assert estimate.startswith("Gaussian-model estimate"), estimate
    assert "rounded up at 2 decimals" in estimate, estimate
    assert "rounded up" in header[3], header[3]


def test_the_figures_are_the_runs_as_the_header_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lower bound: what the command prints for the run (before: 7.64, 1.28, 0.52,
    rounded up from 7.638, 1.277, 0.515); the estimate: the run's, rounded up at 2
    decimals, as its header says."""
    rows = _table()[2:]
    assert len(rows) == len(MEASURED), rows
    for cells in rows:
        z = float(re.match(r"[\d.]+", cells[0]).group())  # type: ignore[union-attr]
        _lower, estimate = MEASURED[z]
        assert cells[1] == _printed_lower_bound(monkeypatch, z), (z, cells[1])
        assert cells[4] == f"{math.ceil(estimate * 100) / 100:.2f}", (z, cells[4])


def test_the_prose_quotes_the_printed_lower_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "its lower bound of 7.64 exceeds that claim": the figure the command prints."""
    text = " ".join((ROOT / "docs" / "audit.md").read_text().split())
    quoted = re.findall(r"its lower bound of (\S+) exceeds that claim", text)
    assert quoted == [_printed_lower_bound(monkeypatch, 0.0)], quoted
