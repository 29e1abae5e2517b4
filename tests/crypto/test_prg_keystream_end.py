"""A PRG range past the end of a seed's keystream is refused, not wrapped to its start.

The counter block was taken modulo 2^128 and OpenSSL lets the CTR counter wrap, so
``expand_into(seed, out, offset=2**129)`` (uint64 words) returned the stream's first
words, and a range across the end returned its last words followed by its first: two
coordinate ranges masked with the same words, whose difference then leaks. Each call
below returned those repeated words before; now it raises ConfigurationError.

And the keyed stream's own limit: :class:`KeyedStream` stops at 2^60 words, far before
the 2^128 blocks at which its counter would wrap (the position limit is enforced).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from secagg.crypto import prg
from secagg.crypto.stream import _WORDS_PER_KEY, KeyedStream
from secagg.errors import ConfigurationError

SEED = bytes(range(16))
#: the first uint64 word past a seed's keystream (2^128 blocks of two words)
END_WORDS = 1 << 129
FIRST_WORDS = prg.expand_into(SEED, np.empty(4, dtype=np.uint64))

READS: dict[str, Callable[[int], np.ndarray]] = {
    "expand_into": lambda offset: prg.expand_into(SEED, np.empty(4, np.uint64), offset),
    "accumulate_masks": lambda offset: prg.accumulate_masks(
        np.zeros(4, np.uint64), [SEED], offset=offset
    ),
    "mask_slice": lambda offset: prg.mask_slice(4, np.uint64, [SEED], offset=offset),
}


@pytest.mark.parametrize("offset", [END_WORDS, END_WORDS - 2, END_WORDS + 5, 1 << 200])
@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_range_past_the_keystream_is_refused(
    read: Callable[[int], np.ndarray], offset: int
) -> None:
    with pytest.raises(ConfigurationError, match=r"past the end of a seed's keystream"):
        read(offset)


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_the_last_words_of_the_keystream_are_still_read(
    read: Callable[[int], np.ndarray],
) -> None:
    """Exactly up to the end is allowed, and is not the start of the stream again."""
    last = read(END_WORDS - 4)
    assert last.shape == (4,)
    assert not np.array_equal(last, FIRST_WORDS)
    tail = prg.expand_into(SEED, np.empty(2, np.uint64), END_WORDS - 2)
    assert np.array_equal(last[2:], tail)
    uint32_last = prg.expand_into(SEED, np.empty(8, np.uint32), 2 * END_WORDS - 8)
    assert np.array_equal(uint32_last.view(np.uint64), last)


def test_the_keyed_stream_stops_far_before_its_counter_could_wrap() -> None:
    """2^60 words of 8 bytes is 2^59 blocks, 2^69 times fewer than the counter holds."""
    assert _WORDS_PER_KEY * 8 * 2**69 == prg.KEYSTREAM_BYTES
    stream = KeyedStream(SEED)
    stream._position = _WORDS_PER_KEY - 2  # a stream that has handed out all but two
    assert stream.words(2).shape == (2,)
    with pytest.raises(ConfigurationError, match="stream exhausted"):
        stream.words(1)
    with pytest.raises(ConfigurationError, match="stream exhausted"):
        stream.word_blocks(1, 1)
    assert stream.position == _WORDS_PER_KEY
