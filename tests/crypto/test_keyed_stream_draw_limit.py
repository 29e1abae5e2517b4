"""A count of draws past what one call can return is our typed error, not numpy's.

``KeyedStream(key).words(10**12)`` failed as numpy's MemoryError ("Unable to allocate
7.28 TiB"), and so did ``uniform``, ``bits``, ``integers`` (whose result array was
allocated before any check) and ``word_blocks`` with a block that large: an error no
caller maps to a bad argument. Each now raises ConfigurationError naming the limit
(2^32 draws at once) before anything is allocated, with the stream unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError

# past the limit (2^32) by one, and by far; both past this machine's memory, so the
# code before the limit failed fast as MemoryError rather than filling memory
TOO_MANY = [2**32 + 1, 10**12]

DRAWS: dict[str, Callable[[KeyedStream, int], object]] = {
    "words": lambda stream, count: stream.words(count),
    "uniform": lambda stream, count: stream.uniform(count),
    "bits": lambda stream, count: stream.bits(count),
    "small integers": lambda stream, count: stream.integers(5, count),
    "large integers": lambda stream, count: stream.integers(1 << 40, count),
    "one block": lambda stream, count: stream.word_blocks(count, count),
}


@pytest.mark.parametrize("count", TOO_MANY)
@pytest.mark.parametrize("draw", DRAWS.values(), ids=DRAWS.keys())
def test_too_many_draws_at_once_are_refused_before_any_is_made(
    draw: Callable[[KeyedStream, int], object], count: int
) -> None:
    stream = KeyedStream(os.urandom(16))
    with pytest.raises(ConfigurationError, match=r"above 4294967296 \(2\^32\)"):
        draw(stream, count)
    assert stream.position == 0


def test_a_long_stream_is_still_read_block_by_block() -> None:
    """The limit is on what one call holds, not on the stream: a count past it in small
    blocks is taken (only the first block is read here), and a block larger than the
    count allocates only the count."""
    key = os.urandom(16)
    blocks = KeyedStream(key).word_blocks(10**12, 4)
    assert np.array_equal(next(blocks), KeyedStream(key).words(4))
    assert np.array_equal(next(KeyedStream(key).word_blocks(3, 10**12)), KeyedStream(key).words(3))


def test_the_limit_is_the_longest_vector_a_round_carries() -> None:
    from secagg.crypto.stream import MAX_DRAWS_PER_CALL
    from secagg.protocol.common import MAX_VECTOR_LENGTH

    assert MAX_DRAWS_PER_CALL == MAX_VECTOR_LENGTH == 2**32


@pytest.mark.parametrize("length", TOO_MANY)
def test_a_mask_slice_too_long_to_hold_is_refused_before_allocating(length: int) -> None:
    """``mask_slice(10**12, ...)`` failed as numpy's MemoryError (7.28 TiB)."""
    from secagg.crypto.prg import mask_slice

    with pytest.raises(ConfigurationError, match=r"above 4294967296 \(2\^32\) words"):
        mask_slice(length, np.uint64, [bytes(16)])
