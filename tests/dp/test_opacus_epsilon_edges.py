"""Opacus's epsilon of a DP-SGD history is never negative and never a bare traceback.

:func:`~secagg.dp.accountants.opacus_epsilon` (a trainer's epsilon, a branch's report,
``audit verify``'s replay) returned Opacus's figure as it came: below 0 where delta is
large beside the privacy loss (z = 5, q = 0.5, one step at delta 0.1: RDP -0.059, PRV
-0.087; a trainer over 9 customers may take delta 0.1), which then made the branch's
report malformed on the wire (epsilon must be >= 0). A noise multiplier whose square
underflows (1e-200) raised Opacus's ZeroDivisionError, and PRV's "Cannot compute
epsilon" (no noise at sample rate 0) a bare RuntimeError. Now: at least 0 (which meets
such a delta), inf by RDP and :class:`PrvCannotEvaluate` by PRV for no noise, and that
refusal for PRV's failure.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import RecordLevelAccountant, opacus_epsilon
from secagg.dp.accounting import PrvCannotEvaluate


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
@pytest.mark.parametrize("delta", [0.1, 0.45, 0.9])
def test_a_large_delta_gives_zero_not_a_negative_epsilon(accountant: str, delta: float) -> None:
    assert opacus_epsilon(accountant, [(5.0, 0.5, 1)], delta) == 0.0


# a few (z, q) pairs, whose RDP curves Opacus computes once (a fresh pair costs 0.3 s);
# delta and the steps are what moves the conversion across 0
@given(
    z=st.sampled_from([0.5, 1.0, 5.0, 20.0]),
    q=st.sampled_from([0.01, 0.5, 1.0]),
    steps=st.integers(min_value=1, max_value=50),
    delta=st.floats(min_value=1e-6, max_value=0.99),
)
@settings(max_examples=25, deadline=None)
def test_rdp_never_negative(z: float, q: float, steps: int, delta: float) -> None:
    assert opacus_epsilon("rdp", [(z, q, steps)], delta) >= 0.0


def test_an_underflowing_noise_multiplier_is_no_noise() -> None:
    assert opacus_epsilon("rdp", [(1e-200, 0.1, 10)], 1e-5) == math.inf
    with pytest.raises(PrvCannotEvaluate):
        opacus_epsilon("prv", [(1e-200, 1.0, 1)], 1e-5)
    # the record-level accountant reads PRV's refusal as no figure at all: inf
    assert RecordLevelAccountant("prv", 1e-5, [(1e-200, 1.0, 1)]).epsilon() == math.inf


def test_prvs_own_failure_is_a_named_refusal() -> None:
    with pytest.raises(PrvCannotEvaluate):
        opacus_epsilon("prv", [(0.0, 0.0, 10)], 1e-5)
