"""The randomized Hadamard rotation over the whole float64 range, and what it refuses.

The rotation is orthogonal, so a finite vector whose L2 norm is below the float range
rotates to a finite vector of the same norm. The unnormalised butterfly does not: its
last passes hold sums up to ``d' * max|x|`` before the ``1 / sqrt(d')`` comes in, so a
vector of large finite coordinates ([1e308] * 3) rotated to infinities and NaNs, which
the distributed mechanism's clip then refused as "the update contains NaN or infinite
values" although it contained none. NaN and infinite inputs went through silently.

The property pinned here is scale invariance: floating-point sums and products commute
with multiplication by a power of two while nothing overflows or underflows, so the
rotation of ``x`` must be, bit for bit, ``2^k`` times the rotation of ``x * 2^-k``
(which the butterfly computes far from the float range's ends). That compares the large
vector against the exact scaled arithmetic of a vector whose rotation is known correct
(tests/encoding/test_rotation_pinned.py pins it), without tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import KeyedStream
from secagg.encoding import RandomizedHadamard
from secagg.errors import ConfigurationError

#: float64's largest finite value, about 1.797e308
FLOAT_MAX = float(np.finfo(np.float64).max)


def _vector(dimension: int, seed: bytes, exponent: int) -> np.ndarray:
    """Coordinates in (-2^exponent, 2^exponent), with a norm below the float range."""
    x = KeyedStream(seed).uniform(dimension) * 2.0 - 1.0
    return np.ldexp(x, exponent)


@settings(max_examples=150, deadline=None)
@given(
    dimension=st.integers(1, 300),
    seed=st.binary(min_size=16, max_size=16),
    headroom=st.integers(0, 12),
)
@example(dimension=3, seed=bytes(16), headroom=0)
@example(dimension=257, seed=bytes(16), headroom=0)
def test_a_large_finite_vector_rotates_as_its_scaled_copy_does(
    dimension: int, seed: bytes, headroom: int
) -> None:
    """Coordinates up to 2^(1024 - h - log2(d)/2): the norm stays below the float range
    (max|x| * sqrt(d) < 2^1024), so the rotation and its inverse are finite, and equal
    bit for bit to the rotation of the vector scaled down by 2^600 and back up."""
    exponent = 1024 - headroom - math.ceil(math.log2(dimension) / 2) - 1
    x = _vector(dimension, seed, exponent)
    assert math.isfinite(float(np.linalg.norm(x / 2.0**600)) * 2.0**600)
    rotation = RandomizedHadamard(dimension, seed)
    shrink = 2.0**-600
    y = rotation.rotate(x)
    assert np.all(np.isfinite(y)), "a finite vector of finite norm rotated to inf or NaN"
    np.testing.assert_array_equal(y, rotation.rotate(x * shrink) / shrink)
    back = rotation.unrotate(y)
    assert np.all(np.isfinite(back))
    np.testing.assert_array_equal(back, rotation.unrotate(y * shrink) / shrink)


def test_the_vector_that_overflowed_the_butterfly_keeps_its_norm() -> None:
    """[1e308] * 3 (norm 1.73e308) rotated to [inf, -5e307, inf, 5e307]: its padded
    rotation's first coordinate is 1.5e308 at most, well inside the float range."""
    x = np.array([1e308, 1e308, 1e308])
    rotation = RandomizedHadamard(3, bytes(16))
    y = rotation.rotate(x)
    assert np.all(np.isfinite(y))
    norm = math.sqrt(3) * 1e308
    assert math.isclose(math.hypot(*y.tolist()), norm, rel_tol=1e-15)
    np.testing.assert_allclose(rotation.unrotate(y), x, rtol=1e-15)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", [0, 2])
def test_nan_and_infinite_coordinates_are_refused_by_both_directions(
    bad: float, where: int
) -> None:
    """They went through as NaN vectors (inf - inf in the butterfly): a typed refusal
    naming them, before any transform."""
    rotation = RandomizedHadamard(3, bytes(16))
    x = np.array([0.5, -0.25, 1.0])
    x[where] = bad
    with pytest.raises(ConfigurationError, match="NaN or infinite"):
        rotation.rotate(x)
    y = np.zeros(rotation.padded)
    y[where] = bad
    with pytest.raises(ConfigurationError, match="NaN or infinite"):
        rotation.unrotate(y)


@pytest.mark.parametrize("value", [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308])
def test_zeros_and_subnormals_rotate_as_ever(value: float) -> None:
    """The range check changes nothing at the small end: a vector of -0.0 or subnormals
    rotates exactly as the butterfly computes it (no scaling is applied there)."""
    rotation = RandomizedHadamard(5, bytes(range(16)))
    x = np.full(5, value)
    padded = np.zeros(rotation.padded)
    padded[:5] = x
    padded *= rotation._signs
    a = padded.copy()
    h = 1
    while h < a.size:  # the textbook butterfly, for reference
        for start in range(0, a.size, 2 * h):
            top = a[start : start + h].copy()
            bottom = a[start + h : start + 2 * h].copy()
            a[start : start + h] = top + bottom
            a[start + h : start + 2 * h] = top - bottom
        h *= 2
    np.testing.assert_array_equal(rotation.rotate(x), a * rotation._norm)


def test_a_rotation_past_the_float_range_is_infinite_not_nan() -> None:
    """A vector whose norm exceeds the float range (its rotation cannot be held) comes
    out with infinite coordinates of the right sign, never NaN from inf - inf."""
    x = np.full(4, FLOAT_MAX)
    y = RandomizedHadamard(4, bytes(16)).rotate(x)
    assert not np.any(np.isnan(y))
