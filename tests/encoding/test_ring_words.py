"""``FixedPoint.to_ring`` takes signed integers, and refuses what is not one.

It converted its input with ``np.asarray(integers, dtype=np.int64)``: floats were
truncated toward zero without a word (``[1.7, -2.5]`` became the words of ``[1, -2]``,
not of any rounding of them), text such as ``["7"]`` was parsed as a number, and a
Python integer past int64 raised OverflowError. The ring words of a value are its
integer modulo 2^bits; a value that is no integer has none, so such input is a
ConfigurationError naming what came, and integers of any width (unsigned words
included, read modulo 2^64) keep their two's-complement words.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError


@pytest.mark.parametrize(
    "values",
    [
        np.array([1.7, -2.5]),
        np.array([1.0]),
        np.array(["7"]),
        np.array([1 + 2j]),
        [2**70],
        [-(2**63) - 1],
        [0.5],
    ],
    ids=repr,
)
@pytest.mark.parametrize("bits", [32, 64])
def test_what_is_no_int64_integer_is_refused(values: object, bits: int) -> None:
    with pytest.raises(ConfigurationError, match="integer"):
        FixedPoint(scale=1.0, bits=bits).to_ring(values)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=8),
    bits=st.sampled_from([32, 64]),
)
def test_integers_map_to_their_residues_and_back(values: list[int], bits: int) -> None:
    fp = FixedPoint(scale=1.0, bits=bits)
    words = fp.to_ring(np.array(values, dtype=np.int64))
    assert words.dtype == fp.dtype
    assert [int(w) for w in words] == [v % (1 << bits) for v in values]
    assert fp.to_ring(values).tolist() == words.tolist()  # a list of Python ints alike
    signed = fp.from_ring(words)
    half = 1 << (bits - 1)
    assert [int(s) for s in signed] == [(v + half) % (1 << bits) - half for v in values]


def test_narrower_integer_types_and_bools_keep_their_values() -> None:
    fp = FixedPoint(scale=1.0, bits=32)
    assert fp.to_ring(np.array([-1, 2], dtype=np.int8)).tolist() == [2**32 - 1, 2]
    assert fp.to_ring(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [2**32 - 1]
    assert fp.to_ring(np.array([True, False])).tolist() == [1, 0]
