"""``KeyedStream.word_blocks``: refused at the call, and never a word handed out twice.

It was a generator function, so its argument checks ran only at the first ``next()``:
``word_blocks(8, 0)`` returned an iterator, and the ``ConfigurationError`` came
wherever the caller first iterated, far from the bad call (or never, for a caller that
did not iterate). A block size that numpy computed (``np.int64``) was refused though a
count of the same type is taken. And a caller that read ``words()`` between two blocks
got, in the next block, the very words ``words()`` had just handed out: the blocks'
cipher ran on from where it stood, not from the stream's position (a draw reused, which
the stream promises never happens).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError


@pytest.mark.parametrize(
    ("count", "block"),
    [(-1, 8), (8, 0), (8, -3), (8, True), (8, 2.0), (8, "4"), (1 << 61, 8)],
)
def test_bad_arguments_are_refused_at_the_call(count: object, block: object) -> None:
    """The error comes from the call itself, before any iterator exists, and the
    stream is unchanged."""
    stream = KeyedStream(os.urandom(16))
    stream.words(3)
    with pytest.raises(ConfigurationError):
        stream.word_blocks(count, block)  # type: ignore[arg-type]
    assert stream.position == 3


def test_a_numpy_block_size_is_taken_like_a_numpy_count() -> None:
    key = os.urandom(16)
    reference = KeyedStream(key).words(10)
    blocks = list(KeyedStream(key).word_blocks(np.int64(10), np.int64(4)))
    assert [b.size for b in blocks] == [4, 4, 2]
    # each block is the one reused buffer: compare them one at a time
    stream = KeyedStream(key)
    got = np.concatenate([b.copy() for b in stream.word_blocks(np.int64(10), np.int64(4))])
    assert np.array_equal(got, reference)


def test_words_read_between_blocks_are_never_handed_out_again() -> None:
    """Reading the stream between two blocks is refused at the next block, which would
    otherwise repeat the words just read; nothing is consumed by the refusal."""
    stream = KeyedStream(os.urandom(16))
    blocks = stream.word_blocks(100, 30)
    first = next(blocks).copy()
    between = stream.words(10)
    assert stream.position == 40
    with pytest.raises(ConfigurationError, match="read between"):
        next(blocks)
    assert stream.position == 40
    later = stream.words(5)
    replay = KeyedStream(stream._key).words(45)  # the words at positions 0..44
    assert np.array_equal(first, replay[:30])
    assert np.array_equal(between, replay[30:40])
    assert np.array_equal(later, replay[40:45])
