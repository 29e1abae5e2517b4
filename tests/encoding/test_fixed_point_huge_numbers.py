"""Python integers past the float range given to the fixed-point encoding as a scale or
a bound: a typed refusal, never an OverflowError.

``FixedPoint(scale=10**400)``, ``integer_bound(10**400)`` and
``stochastic_round(..., scale=10**400)`` each converted the integer to a float (in
``math.isfinite`` or ``float``) and raised OverflowError ("int too large to convert to
float"), which no caller catches as a configuration fault: a CLI or a config loader
that maps ConfigurationError to one line showed a traceback instead. Such a number is
no float scale, and a bound past the float range bounds float64 values no tighter than
the largest float does, so both are refused as out of range.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint, stochastic_round
from secagg.errors import ConfigurationError

#: integers (and a Fraction) whose float conversion overflows
HUGE = [10**400, -(10**400), 2**1024, Fraction(10**400, 3)]


@pytest.mark.parametrize("scale", HUGE, ids=str)
@pytest.mark.parametrize("bits", [32, 64])
def test_a_scale_past_the_float_range_is_a_configuration_error(scale: object, bits: int) -> None:
    with pytest.raises(ConfigurationError, match="scale"):
        FixedPoint(scale=scale, bits=bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", HUGE, ids=str)
def test_stochastic_rounding_refuses_such_a_scale_by_type(scale: object) -> None:
    with pytest.raises(ConfigurationError, match="scale"):
        stochastic_round(np.ones(3), KeyedStream(bytes(16)), scale=scale)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    bound=st.sampled_from(HUGE),
    clients=st.integers(1, 10**6),
    bits=st.sampled_from([32, 64]),
    scale=st.floats(1e-300, 1e300),
)
def test_a_bound_past_the_float_range_is_refused_by_the_headroom_check(
    bound: object, clients: int, bits: int, scale: float
) -> None:
    fp = FixedPoint(scale=scale, bits=bits)
    with pytest.raises(ConfigurationError, match="bound"):
        fp.integer_bound(bound)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="bound"):
        fp.check_headroom(clients, bound)  # type: ignore[arg-type]


def test_the_largest_float_bound_is_still_checked_as_before() -> None:
    """The float range itself is unchanged: the largest float is a bound (refused only by
    the headroom it overflows, as a HeadroomError naming the ways out)."""
    fp = FixedPoint(scale=2.0**-1074, bits=64)
    assert fp.integer_bound(float(np.finfo(np.float64).max)) == 1
    fp.check_headroom(3, float(np.finfo(np.float64).max))
