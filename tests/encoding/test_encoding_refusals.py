"""The encoding layer's public functions refuse what they cannot take with the house's
typed error, in one line, instead of failing deep inside numpy or the cipher stream."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint
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
