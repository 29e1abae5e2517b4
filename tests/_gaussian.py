"""The exact epsilon of the Gaussian mechanism: an oracle that is not the project's code.

Shared by the tests that check an accountant's figure against closed-form truth
(tests/_crash_points.py for central DP, tests/runtime/test_branch_budget.py for a
branch's own budget): Balle and Wang, ICML 2018, Theorem 8, solved by bisection."""

from __future__ import annotations

import math


def _phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def exact_gaussian_epsilon(precision: float, delta: float) -> float:
    """The exact epsilon of a Gaussian mechanism of ``precision`` (sensitivity over the
    noise's std, squared; k rounds compose to the sum of theirs) at ``delta``: the
    smallest e with Phi(mu/2 - e/mu) - exp(e) Phi(-mu/2 - e/mu) <= delta, mu the
    square root of the precision; returned from above (the bisection's upper end)."""
    mu = math.sqrt(precision)

    def delta_of(eps: float) -> float:
        return _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2)

    low, high = 0.0, 1.0
    while delta_of(high) > delta:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if delta_of(middle) > delta else (low, middle)
    return high
