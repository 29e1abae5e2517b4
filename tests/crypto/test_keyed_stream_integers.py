"""``KeyedStream.integers`` with an array of bounds: any shape, and no count ignored.

With an array of bounds (one draw per element) the ``count`` argument was ignored:
``integers(np.array([3, 4]), 5)`` returned 2 integers, not 5 and not an error. And a
2-D array of bounds failed as numpy's ``IndexError`` (the rejection loop indexed the
rows of a 2-D result with flat positions) though the method promises draws
"elementwise for an array".
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError


@pytest.mark.parametrize("count", [0, 1, 5])
def test_a_count_that_disagrees_with_the_bounds_is_refused_unchanged(count: int) -> None:
    stream = KeyedStream(os.urandom(16))
    with pytest.raises(ConfigurationError, match="count"):
        stream.integers(np.array([3, 4]), count)
    assert stream.position == 0


def test_a_count_equal_to_the_number_of_bounds_is_taken() -> None:
    key = os.urandom(16)
    bounds = np.array([3, 4, 1 << 40])
    assert np.array_equal(KeyedStream(key).integers(bounds, 3), KeyedStream(key).integers(bounds))


def test_bounds_of_any_shape_give_draws_of_that_shape_elementwise() -> None:
    """The same draws as the flat bounds, in the bounds' shape, each below its bound."""
    key = os.urandom(16)
    bounds = np.array([[3, 4, 5], [1 << 33, 2, 1 << 62]])
    drawn = KeyedStream(key).integers(bounds)
    assert drawn.shape == bounds.shape
    assert np.all(drawn < bounds.astype(np.uint64))
    assert np.array_equal(drawn.ravel(), KeyedStream(key).integers(bounds.ravel()))
