"""The CKKS chooser at the edge of a scale: a precision a few ulps from where one more
bit of scale is needed is met with that bit, never refused by the chooser's own check.

The chooser took the scale's bits as ``ceil(log2(noise(1) / budget))``. Both the
quotient and ``math.log2`` round, so a quotient one ulp above 2^s (524288.0000000001
for 7 clients at a bound of 0.3 and a precision of 0.027129285904590267) gave
``log2 = 19`` exactly and a scale one bit short; the parameters' constructor then
refused them with "error bound 0.0271 for 7 summands exceeds the requested precision
0.0271", a refusal of a design point that 2^20 meets. The precisions here are built at
those edges: the documented bound at scale 2^s, moved by up to three ulps either way.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.he.errors import HEParameterError
from secagg.he.params import (
    FLOAT_RELATIVE_ERROR,
    NOISE_STD_PER_DEGREE,
    TAIL_Z,
    choose_parameters,
)


def _bound_at(clients: int, value_bound: float, degree: int, scale_bits: int) -> float:
    """The documented error bound ``7 sqrt(n) 0.75 N / 2^s + n C 2^-44``, as params.py
    computes it (the same float operations in the same order)."""
    noise = TAIL_Z * math.sqrt(clients) * NOISE_STD_PER_DEGREE * degree / 2.0**scale_bits
    return noise + clients * value_bound * FLOAT_RELATIVE_ERROR


def _moved(value: float, ulps: int) -> float:
    for _ in range(abs(ulps)):
        value = math.nextafter(value, math.inf if ulps > 0 else -math.inf)
    return value


@settings(max_examples=400, deadline=None)
@given(
    clients=st.sampled_from([1, 2, 3, 7, 100, 12_345, 10**6, 2**32 - 1]),
    value_bound=st.sampled_from([1e-6, 0.3, 1.0, 7.77, 1e6, 1e12]),
    degree=st.sampled_from([1024, 2048, 4096, 8192]),
    scale_bits=st.integers(10, 59),
    ulps=st.integers(-3, 3),
)
@example(clients=7, value_bound=0.3, degree=4096, scale_bits=21, ulps=1)
@example(clients=3, value_bound=1.0, degree=1024, scale_bits=48, ulps=0)
@example(clients=2**32 - 1, value_bound=0.3, degree=4096, scale_bits=12, ulps=0)
def test_a_precision_at_a_scale_edge_is_met_or_refused_for_a_reason_of_the_rings(
    clients: int, value_bound: float, degree: int, scale_bits: int, ulps: int
) -> None:
    precision = _moved(_bound_at(clients, value_bound, degree, scale_bits), ulps)
    try:
        params = choose_parameters(clients, value_bound, precision)
    except HEParameterError as exc:
        # the chooser's own refusal, naming what no ring could give; never its
        # constructor's check failing on the scale it picked itself
        assert str(exc).startswith(("no CKKS ring", "precision")), str(exc)
        return
    assert params.error_bound(clients) <= precision
    # and no larger than needed: one bit fewer misses the precision, or the noise budget
    # the chooser sizes the scale by (the precision less the float error), whichever
    # is stricter at this edge (that estimate is kept where it meets the precision, so
    # design points accepted before keep their parameters)
    fewer = params.scale_bits - 1
    noise_fewer = _bound_at(clients, 0.0, params.poly_modulus_degree, fewer)
    assert (
        _bound_at(clients, value_bound, params.poly_modulus_degree, fewer) > precision
        or noise_fewer > precision - clients * value_bound * FLOAT_RELATIVE_ERROR
    )


@pytest.mark.parametrize(
    ("clients", "value_bound", "precision", "degree", "scale_bits"),
    [
        (7, 0.3, 0.027129285904590267, 2048, 21),
        (3, 1.0, 3.3251641942976145e-11, 4096, 51),
        (1, 1e-6, 5.249999999999999, 2048, 12),
    ],
)
def test_the_recorded_edges_get_one_more_bit_of_scale(
    clients: int, value_bound: float, precision: float, degree: int, scale_bits: int
) -> None:
    """Refused before with "error bound ... exceeds the requested precision"."""
    params = choose_parameters(clients, value_bound, precision)
    assert (params.poly_modulus_degree, params.scale_bits) == (degree, scale_bits)
    assert params.error_bound(clients) <= precision
