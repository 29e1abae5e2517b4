"""The randomized Hadamard rotation at the dimensions the property tests of
test_encoding.py do not reach (they stop at d = 3000): d = 1, both sides of the
transform's cache block (2^15), and a million-coordinate vector padded to 2^21.

What the distributed mechanism relies on: the inverse is exact to float error, the L2
norm is kept (the clip after rotation is the clip before it), the signs are the round's
seed's (another seed, another rotation), and a rotated coordinate is bounded by the
vector's norm and no less: the vector that rotates onto one axis reaches it, so a
per-coordinate bound after rotation is the L2 bound, not norm / sqrt(d').
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.encoding import RandomizedHadamard

DIMENSIONS = [1, 2, 3, (1 << 15) - 1, 1 << 15, (1 << 15) + 1, 10**6 + 1]


@pytest.mark.parametrize("d", DIMENSIONS)
def test_the_inverse_is_exact_and_the_norm_kept(d: int) -> None:
    seed = d.to_bytes(16, "big")
    x = (KeyedStream(seed).uniform(d) - 0.5) * 2e3
    rotation = RandomizedHadamard(d, seed)
    y = rotation.rotate(x)
    norm = float(np.linalg.norm(x))
    assert math.isclose(float(np.linalg.norm(y)), norm, rel_tol=1e-13)
    assert float(np.max(np.abs(rotation.unrotate(y) - x))) <= 1e-13 * norm
    if d > 1:  # one coordinate has one sign pattern per seed bit, so d = 1 is +-x
        other = RandomizedHadamard(d, bytes(16)).rotate(x)
        assert not np.allclose(other, y)


@pytest.mark.parametrize("d", [1, 5, 4096, (1 << 15) + 1])
def test_a_rotated_coordinate_reaches_the_vector_norm_and_no_more(d: int) -> None:
    rotation = RandomizedHadamard(d, b"r" * 16)
    axis = np.zeros(rotation.padded)
    axis[rotation.padded // 3] = 1.0
    x = rotation.unrotate(axis)  # the update the rotation puts on one axis (padding dropped)
    y = rotation.rotate(x)
    norm = float(np.linalg.norm(x))
    assert float(np.max(np.abs(y))) <= norm * (1 + 1e-12)
    if d == rotation.padded:  # no padding dropped: the axis itself comes back
        assert math.isclose(float(np.max(np.abs(y))), norm, rel_tol=1e-12)
