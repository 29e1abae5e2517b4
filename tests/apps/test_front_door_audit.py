"""The front door as a newcomer meets it (README, docs, examples and the commands they
show): figures the guides print agree with the code, and the mistakes a first user makes
are one line naming the flag (front-door audit, 2026-12-05)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.dp import accounting

ROOT = Path(__file__).resolve().parents[2]

_NUMBERS = {"six": 6, "eight": 8, "ten": 10, "twelve": 12, "sixteen": 16, "twenty": 20}


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line(result: Result, status: int) -> str:
    """The single line a mistake prints, after checking the exit status."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def _epsilon(z: float, rounds: int, delta: float = 1e-5) -> float:
    """The accountant's epsilon for ``z`` over ``rounds`` rounds at q = 1 (what
    ``secagg privacy epsilon`` prints, before its rounding up)."""
    return accounting.epsilon(z, 1.0, rounds, delta, "pld")


# --- figures in the guides ------------------------------------------------------------


def test_the_walkthroughs_count_the_public_worlds_the_prior_is_fitted_on() -> None:
    """examples/bank_fraud/README.md said the prior is fitted on six other synthetic
    worlds; the simulator fits it on twelve (``PUBLIC_WORLDS``), as README.md says."""
    from secagg.apps.simulation.runner import PUBLIC_WORLDS

    pages = {
        "README.md": r"fitted without privacy on (\w+) other",
        "examples/bank_fraud/README.md": r"fitted on (\w+) other synthetic worlds",
    }
    for page, pattern in pages.items():
        text = " ".join((ROOT / page).read_text().split())
        found = re.findall(pattern, text)
        assert found, page
        assert {_NUMBERS[word] for word in found} == {PUBLIC_WORLDS}, (page, found)


def test_the_audit_guides_accountant_bounds_never_read_below_the_accountant() -> None:
    """docs/audit.md's empirical table gave the accountant's bound for z = 5 as 2.59, and
    held the run without noise to "2.59": the accountant's epsilon is 2.5944, so the
    figure was rounded toward less privacy spent. Each one shown is at least the
    accountant's (the command prints it rounded up: 2.595)."""
    text = (ROOT / "docs" / "audit.md").read_text()
    section = text.split("## `secagg audit empirical`")[1]
    assert "10 rounds" in section and "delta = 1e-5" in section
    rows = {
        float(cells[0]): float(cells[3])
        for line in section.splitlines()
        if re.match(r"\| \d+ \|", line)
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert set(rows) == {5.0, 10.0}, rows
    for z, shown in rows.items():
        assert shown >= _epsilon(z, 10), (z, shown)
    (claim,) = re.findall(r"--seed 0 --claimed-epsilon ([\d.]+)\s+# FAIL", section)
    (said,) = re.findall(r"the epsilon of z = 5 \(([\d.]+)\)", " ".join(section.split()))
    assert claim == said and float(claim) >= _epsilon(5, 10), (claim, said)


def test_the_deployment_guides_epsilons_never_read_below_the_accountant() -> None:
    """docs/deployment.md's config comment said z = 1.1 "would give 47" over 50 rounds at
    q = 1; the accountant gives 47.31, so the figure flattered the plan."""
    text = " ".join((ROOT / "docs" / "deployment.md").read_text().replace("#", " ").split())
    (at_five,) = re.findall(r"ε ≈ ([\d.]+) after 50 rounds at q = 1", text)
    (at_one_one,) = re.findall(r"z = 1\.1 would give ([\d.]+):", text)
    assert "-z 5 -q 1 -T 50 --delta 1e-5" in text
    assert float(at_five) >= _epsilon(5.0, 50), at_five
    assert float(at_one_one) >= _epsilon(1.1, 50), at_one_one
