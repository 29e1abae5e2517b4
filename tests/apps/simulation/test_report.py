"""The run report's privacy figures are rounded toward the safe side."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from secagg.apps.simulation.report import fmt, fmt_epsilon


def test_an_epsilon_just_above_a_figure_is_not_shown_below_it() -> None:
    # to the nearest, 2.9991 read "2.999" and 3.0004 read "3.000" in report.md and
    # experiment.md: less than was spent, and within a budget of 3 it was not
    assert fmt(2.9991, 3) == "2.999"  # the nearest, kept for AUPRC and other scores
    assert fmt_epsilon(2.9991, 3) == "3.000"
    assert fmt_epsilon(3.0004, 3) == "3.001"
    assert fmt_epsilon(3.0, 3) == "3.000"
    assert fmt_epsilon(2.9937, 2) == "3.00"


def test_missing_and_infinite_epsilons_read_as_the_report_reads_them() -> None:
    assert fmt_epsilon(None) == "-"
    assert fmt_epsilon(math.inf) == "∞"
    assert fmt_epsilon(math.nan) == "n/a"


@given(st.floats(min_value=0.1, max_value=1e6, allow_nan=False), st.integers(1, 6))
def test_the_shown_epsilon_is_never_below_the_spent_one(epsilon: float, digits: int) -> None:
    text = fmt_epsilon(epsilon, digits)
    assert float(text) >= epsilon
    assert float(text) - epsilon < 10.0**-digits * (1 + 1e-9)
    assert len(text.split(".")[1]) == digits
