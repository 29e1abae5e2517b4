"""``slice_bounds`` (and ``accumulate_masks``'s worker count) take what they can split.

Review (2026-12-06), before this change: ``slice_bounds(-1, 4, 2)`` gave no slice, as
for an empty vector; ``slice_bounds(10.5, 4, 2)`` failed as a bare TypeError;
``slice_bounds(10, 0, 2)`` as a ZeroDivisionError; ``slice_bounds(10, 3, 2)`` cut
slices for a word of 3 bytes, which no ring has; and ``np.int64(2)`` workers were
refused by both functions as "not a positive integer". Now a malformed argument is a
ConfigurationError naming it, and numpy's integers split as Python's do.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from secagg.crypto import prg
from secagg.errors import ConfigurationError


@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ((-1, 4, 2), "length must be a non-negative integer"),
        ((10.5, 4, 2), "length must be a non-negative integer"),
        ((True, 4, 2), "length must be a non-negative integer"),
        ((10, 0, 2), "itemsize must be 4 or 8"),
        ((10, 3, 2), "itemsize must be 4 or 8"),
        ((10, 4.0, 2), "itemsize must be 4 or 8"),
        ((10, 4, 0), "workers must be a positive integer"),
    ],
)
def test_slice_bounds_refuses_what_it_cannot_split(arguments: tuple, names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        prg.slice_bounds(*arguments)


def test_numpy_integers_split_as_python_integers_do() -> None:
    length = 3 * prg._CHUNK_BYTES // 4 + 5  # four chunks of uint32 words
    expected = prg.slice_bounds(length, 4, 2)
    assert len(expected) == 2
    assert prg.slice_bounds(np.int64(length), np.int64(4), np.int64(2)) == expected
    seed = os.urandom(16)
    serial = prg.accumulate_masks(np.zeros(length, np.uint32), [seed])
    threaded = prg.accumulate_masks(np.zeros(length, np.uint32), [seed], workers=np.int64(2))
    assert np.array_equal(serial, threaded)
