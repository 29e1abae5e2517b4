"""A failed dial says how long it waited in a sensible precision, never more than it
waited (front-door review, 2026-12-05: "cannot reach X within 14.2572 s")."""

from __future__ import annotations

import pytest

from secagg.transport.grpc_transport import _dial_failure


@pytest.mark.parametrize(
    ("budget", "said"),
    [(14.2572, "14.2"), (14.2999, "14.2"), (2.0, "2"), (30, "30"), (2.3, "2.3"), (0.05, "0")],
)
def test_the_dial_budget_is_said_to_a_tenth_rounded_down(budget: float, said: str) -> None:
    failure = _dial_failure("fl.bank.internal:50051", budget, "last error: Deadline Exceeded")
    assert str(failure) == f"cannot reach fl.bank.internal:50051 within {said} s: Deadline Exceeded"
    without = _dial_failure("fl.bank.internal:50051", budget, "")
    assert str(without) == f"cannot reach fl.bank.internal:50051 within {said} s"


def test_an_endless_budget_is_said_as_such() -> None:
    assert "within inf s" in str(_dial_failure("h:1", float("inf"), ""))
