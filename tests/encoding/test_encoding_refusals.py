"""The encoding layer's public functions refuse what they cannot take with the house's
typed error, in one line, instead of failing deep inside numpy or the cipher stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint, walsh_hadamard
from secagg.errors import ConfigurationError


@pytest.mark.parametrize(
    "stream",
    [b"k" * 16, bytearray(16), "key", 7, np.random.default_rng(0), object()],
    ids=["key-bytes", "bytearray", "str", "int", "numpy-generator", "object"],
)
@pytest.mark.parametrize("bits", [32, 64])
def test_encode_refuses_a_rounding_stream_that_is_not_a_keyed_stream(
    stream: object, bits: int
) -> None:
    """A key passed where its stream belongs failed as "'bytes' object has no attribute
    'word_blocks'"; numpy's generator (never a source of rounding decisions) likewise."""
    with pytest.raises(ConfigurationError, match="draws from a KeyedStream, not") as info:
        FixedPoint(scale=2.0**10, bits=bits).encode(np.ones(3), stream)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_encode_takes_a_keyed_stream_or_none() -> None:
    fp = FixedPoint(scale=2.0**10)
    key = bytes(range(16))
    assert np.array_equal(
        fp.encode(np.full(5, 0.3), KeyedStream(key)), fp.encode(np.full(5, 0.3), KeyedStream(key))
    )
    assert fp.decode(fp.encode(np.array([0.5, -0.25]), None)).tolist() == [0.5, -0.25]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_the_transform_refuses_unsigned_integers(dtype: type) -> None:
    """[1, 2] as uint8 transformed to [3, 255]: the difference -1 wrapped."""
    with pytest.raises(ConfigurationError, match="unsigned integers"):
        walsh_hadamard(np.array([1, 2], dtype=dtype))


@pytest.mark.parametrize(
    "values",
    [[2**62, 2**62], [-(2**63), 0], [2**61, 2**61, 2**61, 1], [2**60 + 1] * 8],
    ids=["sum-2^63", "min-int64", "four-2^61", "eight-2^60"],
)
def test_the_transform_refuses_int64_vectors_it_could_overflow(values: list[int]) -> None:
    """[2^62, 2^62] gave [-2^63, 0]: n * max|x| past 2^63 is refused, not wrapped."""
    with pytest.raises(ConfigurationError, match="can pass 2\\^63"):
        walsh_hadamard(np.array(values, dtype=np.int64))


@settings(max_examples=150, deadline=None)
@given(
    m=st.integers(0, 9),
    magnitude=st.integers(0, 62),
    seed=st.binary(min_size=16, max_size=16),
)
def test_the_int64_transform_is_the_exact_one_or_refused(
    m: int, magnitude: int, seed: bytes
) -> None:
    """Against Python's unbounded integers: exact whenever it answers."""
    n = 1 << m
    stream = KeyedStream(seed)
    raw = stream.words(n) >> np.uint64(63 - magnitude)  # up to 2^magnitude
    signs = np.where(stream.bits(n), -1, 1)
    x = raw.astype(np.int64) * signs
    exact = [int(v) for v in x.tolist()]
    h = 1
    while h < n:
        exact = [
            exact[i] + exact[i + h] if not i & h else exact[i - h] - exact[i] for i in range(n)
        ]
        h *= 2
    try:
        out = walsh_hadamard(x)
    except ConfigurationError:
        assert max(abs(v) for v in x.tolist()) * n > 2**63 - 1
        return
    assert out.dtype == np.int64
    assert out.tolist() == exact
