"""A masking round's reported error bound holds at any scale, not only a power of two.

The fixed-point sum is off from the true sum by the clients' stochastic rounding (under
one unit each) and by float64 roundings: the product ``x * scale``, the int64 sum read
as a float64 and its division by the scale. The report's bound was
``k * (1/scale + C * 2^-52)``, which counts one float rounding; at a power-of-two scale
(the planner's) the other two are exact, but a scale given by the caller or read off the
wire need not be one: 10 clients at C = 3.21 on 64 bits, scale 1.03e17, returned a sum
8.9e-15 off with a reported bound of 7.2e-15. The errors are checked here in exact
arithmetic (fractions), through the round's own encoding and decoding.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from secagg.aggregation.local import run_local_round
from secagg.aggregation.masking import MaskingBackend, fixed_point_error_bound
from secagg.crypto.stream import KeyedStream
from secagg.encoding.fixed_point import FixedPoint
from secagg.errors import ConfigurationError

#: (clients, scale, bound) where every client at the bound sums beyond the old formula
#: (found by search in exact arithmetic: 1.22, 1.16, 1.15, 1.14, 1.13, 1.11 times it)
BEYOND_THE_OLD_BOUND = (
    (3, 5.688663577395255e17, 2.7206368094852498),
    (12, 2.2052739363142637e17, 2.862650344473351),
    (30, 6.226808260541552e16, 2.5914828397039398),
    (10, 2.7600442316551088e17, 2.0941713937700337),
    (7, 2.0155079054628275e17, 3.2704586586549156),
    (9, 3.520003018379557e17, 1.9887174281810127),
)


def _exact_error(clients: int, scale: float, bits: int, values: np.ndarray) -> Fraction:
    """The largest exact error of the decoded sum of ``clients`` copies of ``values``,
    each encoded with its own rounding stream, summed in the ring as the masks leave it."""
    fixed = FixedPoint(scale, bits)
    total = np.zeros(values.shape, dtype=fixed.dtype)
    for _ in range(clients):
        total += fixed.encode(values, KeyedStream())  # wraps mod 2^bits, as the ring does
    decoded = fixed.decode(total)
    return max(
        abs(Fraction(float(got)) - clients * Fraction(float(value)))
        for got, value in zip(decoded, values, strict=True)
    )


@pytest.mark.parametrize(("clients", "scale", "bound"), BEYOND_THE_OLD_BOUND)
def test_sums_beyond_the_old_formula_lie_within_the_bound(
    clients: int, scale: float, bound: float
) -> None:
    error = _exact_error(clients, scale, 64, np.array([bound, -bound]))
    assert error > Fraction(clients * (1 / scale + bound * 2.0**-52))  # the old formula's miss
    assert error <= Fraction(fixed_point_error_bound(clients, scale, bound))


def test_the_case_found_the_rounds_report_holds_its_sum() -> None:
    clients, scale, bound = 10, 1.0299324131969266e17, 3.21308766060612
    backend = MaskingBackend(graph="complete", value_bound=bound, bits=64, scale=scale)
    result = run_local_round(backend, np.full((clients, 2), bound))
    error = max(abs(Fraction(float(v)) - clients * Fraction(bound)) for v in result.total)
    assert error > 0
    assert error <= Fraction(result.report.error_bound)


@settings(max_examples=300, deadline=None)
@given(
    clients=st.integers(2, 400),
    bits=st.sampled_from([32, 64]),
    scale=st.floats(1e-3, 2.0**62, allow_subnormal=False),
    bound=st.floats(1e-6, 1e6),
    fractions=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=4),
)
def test_a_fixed_point_sum_lies_within_its_bound_at_any_scale(
    clients: int, bits: int, scale: float, bound: float, fractions: list[float]
) -> None:
    try:
        FixedPoint(scale, bits).check_headroom(clients, bound)
    except ConfigurationError:
        assume(False)
    values = np.clip(np.array([1.0, *fractions]) * bound, -bound, bound)
    error = _exact_error(clients, scale, bits, values)
    assert error <= Fraction(fixed_point_error_bound(clients, scale, bound))
