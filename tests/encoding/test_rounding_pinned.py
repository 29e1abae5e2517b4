"""Stochastic rounding into the ring, pinned bit for bit and checked against its definition.

The rounding decides, per coordinate, up or down from the keyed stream's words;
replayed runs (``secagg simulate``, recorded DP rounds) depend on every decision.
The digests below were taken from the implementation of 2026-12-04 (commit 4d645cf,
before the rounding loop was reworked for speed) on inputs drawn from fixed keys, so a
faster loop must give the very same words. The Hypothesis test compares the vectorised
code with a one-coordinate-at-a-time reference written from the definition in Python
integers and floats, where an int-to-float comparison is exact.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint, stochastic_round


def _values(label: int, size: int, spread: float) -> np.ndarray:
    """``size`` float64 values in [-spread, spread) from a fixed key, salted with edge cases."""
    x = KeyedStream(bytes([label]) * 16).uniform(size) * (2 * spread) - spread
    edges = [0.0, -0.0, 1e-300, -1e-300, 5e-324, -5e-324, 0.5, -0.5, 1.0, -1.0, 2.5, -2.5]
    edges += [spread * 0.999, -spread * 0.999, 1e-17, -1e-17, 3.0, -3.0]
    k = min(len(edges), size)
    x[:k] = edges[:k]
    return x


#: (label, size, spread, scale) of each pinned case
CASES = [
    (1, 1, 1.0, 2.0**16),
    (2, 8191, 1.0, 2.0**16),
    (3, 8192, 1.0, 2.0**20),
    (4, 8193, 3.0, 1000.0),
    (5, 20_000, 1.0, 3.7),
    (6, 40_961, 1.0, 1e-3),  # most scaled values below 1/2: fractions with bits below 2^-53
    (7, 100_003, 0.1, 2.0**24),
    (8, 3000, 2.0**40, 2.0**10),  # scaled values near 2^50 and 2^51
    (9, 3000, 2.0**45, 2.0**16),  # scaled values up to 2^61: the rounding's whole range
    (10, 5000, 2.0**20, 2.0**12),  # near 2^32: the 32-bit ring wraps
]

#: sha256 (first 16 bytes, hex) of every output of each case, recorded at commit 4d645cf
PINNED = {
    (1, 1, 1.0, 65536.0): "dde423f5076fe6edab55db56db8d5df1",
    (2, 8191, 1.0, 65536.0): "c37710214b90f471c63ec36a14363c27",
    (3, 8192, 1.0, 1048576.0): "dc7f2f9435d664ed8198bea4d1abdeb3",
    (4, 8193, 3.0, 1000.0): "b75d6de0ebd9cae0bccefcf93c35d23f",
    (5, 20000, 1.0, 3.7): "148d7356495131a10a0392144bc6d46c",
    (6, 40961, 1.0, 0.001): "77371b5c20c8fd8b9689f04a0169585c",
    (7, 100003, 0.1, 16777216.0): "59ec9a47d012491e34a36babbbe4e9a5",
    (8, 3000, 1099511627776.0, 1024.0): "08db777da3911d382ff0e9079f76210b",
    (9, 3000, 35184372088832.0, 65536.0): "09c3eeea96a4b5853b55e50347691e69",
    (10, 5000, 1048576.0, 4096.0): "6727f1254774872da03a6c2fea3dcd24",
}


def _digest(*arrays_: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays_:
        h.update(str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


def _outputs(label: int, size: int, spread: float, scale: float) -> list[np.ndarray]:
    """Everything the rounding produces for one case (int64, both rings, float32/int input)."""
    x = _values(label, size, spread)
    key = bytes([label + 100]) * 16
    out = [stochastic_round(x, KeyedStream(key), scale=scale)]
    for bits in (32, 64):
        out.append(FixedPoint(scale=scale, bits=bits).encode(x, KeyedStream(key)))
    if spread * scale < 2.0**62 / 2**7:  # float32 inputs round up by up to 2^-24 of their size
        x32 = x.astype(np.float32)
        out.append(FixedPoint(scale=scale, bits=32).encode(x32, KeyedStream(key)))
        out.append(stochastic_round(x32, KeyedStream(key), scale=scale))
    ints = np.trunc(x * 2**7).astype(np.int64)  # integer inputs go through float64 too
    out.append(FixedPoint(scale=scale / 2**7, bits=64).encode(ints, KeyedStream(key)))
    out.append(
        stochastic_round(
            x.reshape(1, -1) if size % 2 else x.reshape(2, -1), KeyedStream(key), scale=scale
        )
    )
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"case{c[0]}-d{c[1]}")
def test_rounding_gives_the_recorded_words(case: tuple[int, int, float, float]) -> None:
    assert _digest(*_outputs(*case)) == PINNED[case]


def test_rounding_consumes_one_stream_word_per_coordinate() -> None:
    """The next draw after an encode is the same whatever the loop: exactly d words used."""
    x = _values(11, 20_001, 1.0)
    key = bytes(16)
    stream = KeyedStream(key)
    FixedPoint(scale=2.0**16, bits=32).encode(x, stream)
    assert stream.position == x.size
    after = KeyedStream(key)
    after.words(x.size)
    assert np.array_equal(stream.words(3), after.words(3))


def _reference(values: np.ndarray, key: bytes, scale: float, bits: int | None) -> list[int]:
    """Stochastic rounding from its definition, one coordinate at a time.

    ``y = float(v) * scale`` (one IEEE product), ``f = floor(y)``, fraction ``y - f`` (one
    IEEE difference, as the vector code takes it), and the coordinate goes up when the
    stream word's top 53 bits, read as an integer ``k``, satisfy ``k < fraction * 2^53``
    (``k / 2^53`` is the uniform draw; Python compares an int with a float exactly).
    Then two's complement modulo ``2^bits`` (``bits=None``: the integer itself).
    """
    words = KeyedStream(key).words(values.size).tolist()
    out = []
    for v, w in zip(values.reshape(-1).tolist(), words, strict=True):
        y = float(v) * scale
        f = math.floor(y)
        fraction = y - float(f)
        integer = f + ((w >> 11) < fraction * 2.0**53)
        out.append(integer if bits is None else integer % (1 << bits))
    return out


def _check_against_reference(values: np.ndarray, key: bytes, scale: float) -> None:
    rounded = stochastic_round(values, KeyedStream(key), scale=scale)
    assert rounded.shape == values.shape
    assert rounded.reshape(-1).tolist() == _reference(values, key, scale, None)
    for bits in (32, 64):
        words = FixedPoint(scale=scale, bits=bits).encode(values, KeyedStream(key))
        assert words.reshape(-1).tolist() == _reference(values, key, scale, bits)


@settings(max_examples=150, deadline=None)
@given(
    arrays(
        st.sampled_from([np.float64, np.float32]),
        st.integers(1, 120),
        elements=st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False),
    ),
    st.binary(min_size=16, max_size=16),
    st.one_of(st.floats(1e-12, 1e6), st.sampled_from([1.0, 2.0**16, 2.0**-20, 0.1])),
)
def test_rounding_is_the_reference_definition(values: np.ndarray, key: bytes, scale: float) -> None:
    _check_against_reference(values, key, scale)


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 120),
        elements=st.floats(-(2.0**61), 2.0**61, allow_nan=False, allow_subnormal=True),
    ),
    st.binary(min_size=16, max_size=16),
    st.sampled_from([1.0, 1.5, 0.75, 2.0**-30]),
)
def test_rounding_is_the_reference_definition_over_the_whole_range(
    values: np.ndarray, key: bytes, scale: float
) -> None:
    """Magnitudes from subnormal to 2^61.5: past 2^51 and 2^53 every fast path must hand over."""
    _check_against_reference(values, key, scale)


@pytest.mark.parametrize("size", [16_383, 16_384, 16_389, 24_576, 32_769])
def test_rounding_across_blocks_is_the_reference_definition(size: int) -> None:
    _check_against_reference(_values(12, size, 1.0), bytes(range(16)), 2.0**16 + 0.5)
    _check_against_reference(_values(13, size, 2.0**40), bytes(range(16)), 2.0**20)


def test_integer_inputs_are_the_reference_definition() -> None:
    """int64 inputs above 2^53 are rounded to float64 first, as the definition reads them."""
    values = np.array([2**60 + 1, -(2**60) - 3, 2**53 + 1, 7, -7, 0], dtype=np.int64)
    _check_against_reference(values, b"k" * 16, 1.5)
    _check_against_reference(values.astype(np.int32), b"k" * 16, 0.3)


@pytest.mark.parametrize(
    "edge",
    [
        2.0**51 - 0.75,  # the largest floors the 32-bit shortcut takes
        -(2.0**51) + 0.25,
        -(2.0**51),  # the shortcut's bound itself: the int64 loop takes the vector
        2.0**51,
        2.0**51 + 1.5,
        -(2.0**51) - 1.5,
        2.0**53 - 1.0,
        2.0**61 + 2.0**10,
    ],
)
def test_rounding_at_the_32_bit_shortcut_bounds_is_the_reference_definition(edge: float) -> None:
    """Vectors whose floors reach 2^51 in magnitude, where a float's mantissa stops holding
    them in two's complement, still round to the definition's words (32- and 64-bit)."""
    values = _values(14, 9000, 4.0)
    values[[0, 4500, 8999]] = [edge, -edge / 3.0, edge]
    _check_against_reference(values, bytes(range(16, 32)), 1.0)
    _check_against_reference(values[4400:4600].copy(), bytes(range(16, 32)), 1.0)


def test_a_draw_equal_to_the_fraction_rounds_down_and_one_below_it_rounds_up() -> None:
    """Ties are measure-zero in random tests, so they are built: value k / 2^53 with the
    stream's own k makes the comparison ``k < fraction * 2^53`` an equality (down)."""
    key = bytes(range(32, 48))
    size = 20_000
    k = KeyedStream(key).words(size) >> np.uint64(11)
    tie = k.astype(np.float64) * 2.0**-53
    above = (k + np.uint64(1)).astype(np.float64) * 2.0**-53
    for values, floor, up in [(tie, 0, 0), (tie - 1.0, -1, 0), (above, 0, 1), (above - 1.0, -1, 1)]:
        expected = floor + up  # every coordinate: a tie stays down, one more unit goes up
        assert np.all(stochastic_round(values, KeyedStream(key)) == expected)
        words = FixedPoint(scale=1.0, bits=32).encode(values, KeyedStream(key))
        assert np.all(words == np.uint32(expected % 2**32))
        _check_against_reference(values[:300], key, 1.0)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([32, 64]),
    st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=60),
    st.one_of(st.floats(1e-6, 1e12), st.sampled_from([2.0**16, 3.0, 0.1, 2.0**62])),
)
def test_decoding_is_the_signed_reading_divided_by_the_scale(
    bits: int, raw: list[int], scale: float
) -> None:
    """decode reads the words signed and divides once: each float is the int64 reading
    converted to float64 (rounded above 2^53) and divided by the scale, bit for bit."""
    fp = FixedPoint(scale=scale, bits=bits)
    edges = [0, 1 << (bits - 1), (1 << (bits - 1)) - 1, (1 << bits) - 1]  # 0, min, max, -1
    words = np.array((edges + [r % (1 << bits) for r in raw])[: len(raw)], dtype=fp.dtype)
    decoded = fp.decode(words)
    signed = [int(w) - (1 << bits) if int(w) >> (bits - 1) else int(w) for w in words.tolist()]
    assert decoded.dtype == np.float64 and decoded.shape == words.shape
    assert decoded.tolist() == [float(v) / scale for v in signed]
    assert np.array_equal(decoded, fp.from_ring(words) / scale)
    assert fp.decode(words.reshape(1, -1)).shape == (1, words.size)


def test_threads_rounding_at_once_each_get_their_own_words() -> None:
    """The loop's block buffers are kept per thread: clients encoding in parallel threads
    must not write into one another's buffers."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(_values(20 + j, 50_000, 1.0), bytes([j]) * 16, 32 if j % 2 else 64) for j in range(8)]

    def encode(job: tuple[np.ndarray, bytes, int]) -> np.ndarray:
        values, key, bits = job
        return FixedPoint(scale=2.0**16, bits=bits).encode(values, KeyedStream(key))

    alone = [encode(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(25):  # interleavings vary: a shared buffer failed 1 run in 3 at 3 rounds
            together = list(pool.map(encode, jobs))
            assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
