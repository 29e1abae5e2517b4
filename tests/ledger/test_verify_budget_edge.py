"""``audit verify --config`` and ``audit report --config`` hold a ledger to its
``[dp] epsilon_budget`` with no tolerance on the unsafe side.

Before: verify passed a ledger whose epsilon lay above the budget by up to 1e-9
(relative), and the report wrote "epsilon = 4.090 ... of a budget of 4.08923: within
it"; verify compared the *replayed* epsilon only, so a row claiming more than the
budget (its replay a hair below it) verified while the report, which shows the larger
of the two, said ABOVE THE BUDGET; and a ledger whose last completed round released
without noise (epsilon infinite) read "epsilon = - ... within it".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_client_rows, ledger_row, write_ledger

from secagg.ledger.report import build_report
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c")]


def _rows() -> tuple[list[dict], float]:
    """Two rows as the server writes them, and the epsilon the last one claims."""
    return central_client_rows(COHORTS, Z, DELTA)


def _expected(budget: float) -> ExpectedPrivacy:
    return ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=0.5,
        population=4,
        epsilon_budget=budget,
    )


def _budget_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("- budget spent"))


@pytest.mark.parametrize("over", [5e-10, 1e-12, 1e-15])
def test_a_ledger_a_hair_over_its_budget_fails(tmp_path: Path, over: float) -> None:
    rows, epsilon = _rows()
    budget = epsilon * (1 - over)
    assert budget < epsilon
    path, key = write_ledger(tmp_path / "l.sqlite", rows)
    result = verify_ledger(path, key.public_key, expected=_expected(budget))
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 2 (round 2): epsilon ")
    assert "ABOVE the config's epsilon_budget" in result.first_failure
    text, _ = build_report(path, key.public_key, _expected(budget))
    assert "ABOVE THE BUDGET" in _budget_line(text)


def test_a_ledger_exactly_at_its_budget_verifies(tmp_path: Path) -> None:
    """The cap is inclusive: the server runs a round whose epsilon equals the budget."""
    rows, epsilon = _rows()
    path, key = write_ledger(tmp_path / "l.sqlite", rows)
    result = verify_ledger(path, key.public_key, expected=_expected(epsilon))
    assert result.ok, result.first_failure
    text, _ = build_report(path, key.public_key, _expected(epsilon))
    assert "within it" in _budget_line(text)


def test_a_claim_above_the_budget_fails_even_where_its_replay_fits(tmp_path: Path) -> None:
    """A claim within the 1e-6 tolerance *above* its replay is accepted as a claim, but
    the ledger then says it spent more than the budget: verify holds the larger figure
    to the cap, as the report shows it."""
    rows, epsilon = _rows()
    rows[-1] = rows[-1] | {"privacy": {"epsilon": epsilon * (1 + 5e-7), "delta": DELTA}}
    budget = epsilon * (1 + 2e-7)  # above the replay, below the claim
    path, key = write_ledger(tmp_path / "l.sqlite", rows)
    result = verify_ledger(path, key.public_key, expected=_expected(budget))
    assert not result.ok
    assert "ABOVE the config's epsilon_budget" in str(result.first_failure)
    text, _ = build_report(path, key.public_key, _expected(budget))
    assert "ABOVE THE BUDGET" in _budget_line(text)


def test_a_round_released_without_noise_is_above_any_budget(tmp_path: Path) -> None:
    """Its epsilon is infinite: verify fails the budget at that row (it used to skip the
    check: NOT PRIVATE only) and the report says ABOVE THE BUDGET, not "- ... within
    it"; without a budget the report shows the row's epsilon as ∞, not "-"."""
    rows, epsilon = _rows()
    rows.append(ledger_row(3, None, None, participants=("a", "b"), publish_participants=True))
    path, key = write_ledger(tmp_path / "l.sqlite", rows)
    result = verify_ledger(path, key.public_key, expected=_expected(2 * epsilon))
    assert not result.ok
    assert str(result.first_failure).startswith("row 3 (round 3): epsilon ∞")
    assert "ABOVE the config's epsilon_budget" in str(result.first_failure)
    text, _ = build_report(path, key.public_key, _expected(2 * epsilon))
    assert "ABOVE THE BUDGET" in _budget_line(text)  # the status says FAILED, and why
    # without a budget the ledger is intact, and not private (as before)
    plain = verify_ledger(path, key.public_key)
    assert plain.ok and not plain.private
    text, _ = build_report(path, key.public_key)
    assert "epsilon = ∞" in _budget_line(text)
