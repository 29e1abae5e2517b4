"""The report of a ledger that FAILED does not judge its claims against the budget.

Why (hostile review, 2026-12-06): a ledger whose rows claim a tenth of what their
mechanism spent (re-signed with the key) fails ``verify``, and its report said so at
its top, but its fact line still read ``budget spent: epsilon = 0.0651 at delta =
1e-05 of a budget of B: within it``: the forged claim, judged against the budget as
if it were verified, while the rounds spent more than B. The line now says the
figure is the last row's claim as recorded, not verified, and compares nothing; the
plot's title says the same.
"""

from __future__ import annotations

import copy
from pathlib import Path

from _ledgers import central_client_rows, write_ledger

from secagg.ledger.report import _figure, build_report
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

DELTA, Z = 1e-5, 1.0
COHORTS = [("a", "b"), ("a", "c"), ("b", "d")]


def _expected(budget: float) -> ExpectedPrivacy:
    """The config of :func:`~_ledgers.central_client_dp`'s federation, with a budget."""
    return ExpectedPrivacy(
        delta=DELTA, unit="client", mechanism="central", sampling_kind="poisson",
        sample_rate=0.5, population=4, noise_multiplier=Z, clip=1.0, epsilon_budget=budget,
    )  # fmt: skip


def _understated(tmp_path: Path) -> tuple[Path, bytes, float]:
    """A ledger whose claims are a tenth of the mechanism's, re-signed; the true spend."""
    rows, spent = central_client_rows(COHORTS, Z, DELTA)
    forged = copy.deepcopy(rows)
    for row in forged:
        row["privacy"]["epsilon"] /= 10
    path, key = write_ledger(tmp_path / "understated.ledger", forged)
    return path, key.public_key, spent


def _budget_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("- budget spent"))


def test_a_failed_ledgers_claim_is_not_judged_against_the_budget(tmp_path: Path) -> None:
    path, public_key, spent = _understated(tmp_path)
    budget = round(spent / 2, 3)  # the rounds overspent it; the forged claims did not
    expected = _expected(budget)
    assert not verify_ledger(path, public_key, expected=expected).ok
    text, _ = build_report(path, public_key, expected)
    assert text.split("\n")[2].startswith("**FAILED**")
    line = _budget_line(text)
    assert "within it" not in line and "ABOVE" not in line, line
    assert line.startswith(
        "- budget spent: not verified (the ledger FAILED): the last row claims epsilon = "
    ), line
    assert line.endswith(f"as recorded; not compared with the budget of {budget:g}"), line
    figure = _figure(verify_ledger(path, public_key, expected=expected), budget)
    try:
        assert "not verified" in figure.axes[0].get_title()
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)


def test_a_failed_ledgers_overspend_is_still_said(tmp_path: Path) -> None:
    """Guard: a ledger that fails for its overspend keeps its ABOVE THE BUDGET line (the
    safe side: the claims as recorded already overspend it)."""
    rows, spent = central_client_rows(COHORTS, Z, DELTA)
    path, key = write_ledger(tmp_path / "over.ledger", rows)
    text, _ = build_report(path, key.public_key, _expected(round(spent / 2, 3)))
    assert text.split("\n")[2].startswith("**FAILED**")
    assert "**ABOVE THE BUDGET**" in _budget_line(text)


def test_a_verified_ledgers_line_is_unchanged(tmp_path: Path) -> None:
    """Guard: the honest rows' line still judges the spend."""
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    path, key = write_ledger(tmp_path / "honest.ledger", rows)
    text, _ = build_report(path, key.public_key, _expected(100.0))
    assert _budget_line(text).endswith("of a budget of 100: within it"), _budget_line(text)
