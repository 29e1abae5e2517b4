"""The CKKS key holder's clamp of the exact sum: why the planned DP charge still holds.

The key holder releases ``noise(clamp(sum))`` where it refused an implausible sum until
2026-12-06 (tests/aggregation/test_ckks_implausible_refusal_bit.py). The accountant
charges a Gaussian of the planned std on a sum of L2 sensitivity ``C``, so the clamp must
never move two neighbouring sums apart in L2: it is the projection onto the box
``[-reach, reach]^d``, hence 1-Lipschitz. Checked here on vectors inside, across and far
beyond the box (hypothesis), with the count the key holder logs and the non-finite
coordinates a crafted decryption could hold.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from secagg.aggregation.keyholder_policy import clamp_to_plausible

REACH = 3.0
#: coordinates from well inside the box to 10^6 times beyond it, either sign
COORDINATE = st.floats(-3e6, 3e6, allow_nan=False, allow_infinity=False)
PROPERTY = settings(max_examples=50, deadline=None)


def _pair(size: int) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    vector = arrays(np.float64, size, elements=COORDINATE)
    return st.tuples(vector, vector)


@PROPERTY
@given(st.integers(1, 12).flatmap(_pair))
def test_the_clamp_never_moves_two_sums_apart_in_l2(pair: tuple[np.ndarray, np.ndarray]) -> None:
    """||clamp(s) - clamp(s')||_2 <= ||s - s'||_2: the planned sensitivity covers the
    clamped sum (a malicious branch's fixed upload in both sums is part of s and s')."""
    first, second = pair
    before = float(np.linalg.norm(first - second))
    clamp_to_plausible(first, REACH)
    clamp_to_plausible(second, REACH)
    assert float(np.linalg.norm(first - second)) <= before * (1 + 1e-12)


@PROPERTY
@given(arrays(np.float64, st.integers(1, 40), elements=COORDINATE))
def test_the_clamp_counts_what_it_moved_and_keeps_the_rest(values: np.ndarray) -> None:
    original = values.copy()
    outside = np.abs(original) > REACH
    assert clamp_to_plausible(values, REACH) == int(outside.sum())
    assert np.array_equal(values[~outside], original[~outside])  # an honest sum: untouched
    assert np.array_equal(values[outside], np.sign(original[outside]) * REACH)


def test_a_non_finite_coordinate_is_counted_and_bounded() -> None:
    """No honest decryption is NaN or infinite; a crafted one that were leaves bounded
    (an infinity at the edge of its sign, NaN at 0), never as NaN for the noise to keep."""
    whole = np.array([7.0, np.inf, -np.inf, np.nan, 1.0])
    values = whole[1:]  # a slice, as the key holder clamps its sum slice by slice
    assert clamp_to_plausible(values, REACH) == 3
    assert whole.tolist() == [7.0, REACH, -REACH, 0.0, 1.0]  # in place, the slice only
