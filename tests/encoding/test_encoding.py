"""Encoding: stochastic rounding, fixed point in Z_{2^b}, headroom, rotation, keyed stream.

Statistical tests state their false-alarm rate: each z-test below uses a
two-sided threshold of 5.5 standard deviations (false alarm about 4e-8 per
test), so the whole file raises a false alarm less than once in 10^6 runs.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from secagg.crypto.stream import KeyedStream
from secagg.encoding import (
    FixedPoint,
    RandomizedHadamard,
    largest_clients,
    padded_dimension,
    smallest_bits,
    stochastic_round,
    walsh_hadamard,
)
from secagg.errors import ConfigurationError, HeadroomError

Z_THRESHOLD = 5.5
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(arrays(np.float64, st.integers(1, 200), elements=finite))
def test_stochastic_rounding_goes_to_an_adjacent_integer(values: np.ndarray) -> None:
    rounded = stochastic_round(values, KeyedStream())
    assert rounded.dtype == np.int64
    assert np.all((rounded == np.floor(values)) | (rounded == np.ceil(values)))


@given(
    arrays(np.float64, st.integers(1, 300), elements=finite),
    st.binary(min_size=16, max_size=16),
    st.floats(1e-3, 1e6),
)
def test_stochastic_rounding_is_its_definition_bit_for_bit(
    values: np.ndarray, key: bytes, scale: float
) -> None:
    """Up when the stream's 53-bit uniform is below the fraction, as recorded runs assume."""
    scaled = values * scale
    floor = np.floor(scaled)
    uniform = KeyedStream(key).uniform(values.size)
    expected = floor.astype(np.int64) + (uniform < scaled - floor)
    assert np.array_equal(stochastic_round(values, KeyedStream(key), scale=scale), expected)
    assert np.array_equal(stochastic_round(scaled, KeyedStream(key)), expected)


@pytest.mark.parametrize("size", [1, 8191, 8192, 8193, 20_000, 40_961])
def test_rounding_and_encoding_across_blocks_match_the_whole_vector_definition(size: int) -> None:
    """The blockwise loop draws the stream's words in order: same integers, same words."""
    key = os.urandom(16)
    values = KeyedStream(os.urandom(16)).uniform(size) * 2e3 - 1e3
    scale = 2.0**18
    scaled = values * scale
    floor = np.floor(scaled)
    uniform = KeyedStream(key).uniform(size)
    expected = floor.astype(np.int64) + (uniform < scaled - floor)
    assert np.array_equal(stochastic_round(values, KeyedStream(key), scale=scale), expected)
    for bits in (32, 64):
        fp = FixedPoint(scale=scale, bits=bits)
        assert np.array_equal(fp.encode(values, KeyedStream(key)), fp.to_ring(expected))
        as_float32 = values.astype(np.float32)
        assert np.array_equal(
            fp.encode(as_float32, KeyedStream(key)),
            fp.to_ring(stochastic_round(as_float32.astype(np.float64) * scale, KeyedStream(key))),
        )


@pytest.mark.parametrize(
    "values",
    [
        np.array([], dtype=np.float64),
        np.array(2.5),
        np.arange(-40, 40, dtype=np.int64),
        np.arange(0, 200, dtype=np.uint8),
        np.array([True, False, True]),
        np.linspace(-3, 3, 600).reshape(20, 30)[:, ::3],  # not contiguous
        np.linspace(-3, 3, 64, dtype=np.float16),
    ],
    ids=["empty", "0-d", "int64", "uint8", "bool", "strided-2d", "float16"],
)
def test_rounding_odd_inputs_matches_the_definition(values: np.ndarray) -> None:
    key = os.urandom(16)
    scaled = np.asarray(values, dtype=np.float64) * 8.0
    floor = np.floor(scaled)
    uniform = KeyedStream(key).uniform(scaled.size).reshape(scaled.shape)
    expected = floor.astype(np.int64) + (uniform < scaled - floor)
    got = stochastic_round(values, KeyedStream(key), scale=8.0)
    assert got.shape == np.shape(values) and got.dtype == np.int64
    assert np.array_equal(got, expected)
    fp = FixedPoint(scale=8.0, bits=32)
    assert np.array_equal(fp.encode(values, KeyedStream(key)), fp.to_ring(expected))


@pytest.mark.parametrize(
    "values",
    [np.array([1.5, 2.0], dtype=object), np.array([1 + 2j]), np.array(["1.0"])],
    ids=["object", "complex", "str"],
)
def test_rounding_refuses_values_that_are_not_real_numbers(values: np.ndarray) -> None:
    with pytest.raises(ConfigurationError, match="real numbers only"):
        stochastic_round(values, KeyedStream())
    with pytest.raises(ConfigurationError, match="real numbers only"):
        FixedPoint(scale=2.0, bits=32).encode(values)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (math.nan, "NaN or infinite"),
        (math.inf, "NaN or infinite"),
        (-math.inf, "NaN or infinite"),
        (2.0**62, "too large"),
        (-(2.0**62), "too large"),
    ],
)
def test_stochastic_rounding_refuses_values_it_cannot_round(bad: float, message: str) -> None:
    values = np.array([0.5, bad, -1.0])
    with pytest.raises(ConfigurationError, match=message):
        stochastic_round(values, KeyedStream())


@pytest.mark.parametrize("value", [0.5, 0.3, -2.7, 1e-3, 123.999, -0.0001])
def test_stochastic_rounding_is_unbiased(value: float) -> None:
    count = 400_000
    rounded = stochastic_round(np.full(count, value), KeyedStream())
    frac = value - math.floor(value)
    ups = int((rounded - math.floor(value)).sum())
    z = (ups - count * frac) / math.sqrt(count * frac * (1 - frac))
    assert abs(z) < Z_THRESHOLD, (value, ups, z)


def test_stochastic_rounding_is_reproducible_only_with_the_key() -> None:
    key = os.urandom(16)
    x = np.linspace(-3, 3, 1001)
    same = stochastic_round(x, KeyedStream(key)), stochastic_round(x, KeyedStream(key))
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], stochastic_round(x, KeyedStream()))


def test_rounding_refuses_nan_and_huge_values() -> None:
    with pytest.raises(ConfigurationError):
        stochastic_round(np.array([1.0, np.nan]), KeyedStream())
    with pytest.raises(ConfigurationError):
        stochastic_round(np.array([2.0**63]), KeyedStream())


@settings(max_examples=60, deadline=None)
@given(
    bits=st.sampled_from([32, 64]),
    n=st.integers(1, 30),
    d=st.integers(1, 50),
    seed=st.binary(min_size=16, max_size=16),
)
def test_signed_sums_survive_the_ring(bits: int, n: int, d: int, seed: bytes) -> None:
    stream = KeyedStream(seed)
    fp = FixedPoint(scale=2.0**16, bits=bits)
    values = (stream.uniform(n * d).reshape(n, d) - 0.5) * 200  # in [-100, 100)
    fp.check_headroom(n, 100.0)
    total = np.zeros(d, dtype=fp.dtype)
    for row in values:
        total += fp.encode(row, stream)  # wraps modulo 2^bits
    decoded = fp.decode(total)
    # each client's rounding moves its value by less than one unit
    assert np.all(np.abs(decoded - values.sum(axis=0)) < n / fp.scale)


def test_decoding_reads_words_as_twos_complement() -> None:
    fp = FixedPoint(scale=1.0, bits=32)
    words = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1], dtype=np.uint32)
    assert fp.decode(words).tolist() == [0, 1, 2**31 - 1, -(2**31), -1]
    with pytest.raises(ConfigurationError):
        fp.decode(words.astype(np.uint64))


@given(bound=st.integers(1, 2**40), n=st.integers(1, 2**20))
def test_headroom_arithmetic(bound: int, n: int) -> None:
    b = smallest_bits(n, bound)
    assert n * bound <= 2 ** (b - 1) - 1 < 2 * n * bound + 1
    assert n * bound > 2 ** (b - 2) - 1  # one bit fewer does not fit
    most = largest_clients(bound, 32)
    assert most * bound <= 2**31 - 1 < (most + 1) * bound


@given(scale=st.floats(1.0, 2.0**30), bound=st.floats(1e-3, 1e3), bits=st.sampled_from([32, 64]))
def test_overflowing_configurations_are_refused(scale: float, bound: float, bits: int) -> None:
    fp = FixedPoint(scale=scale, bits=bits)
    most = largest_clients(fp.integer_bound(bound), bits)
    if most >= 1:  # a scale so large that no single client fits: most == 0
        fp.check_headroom(most, bound)  # fits exactly
    with pytest.raises(HeadroomError) as info:
        fp.check_headroom(most + 1, bound)
    err = info.value
    assert err.largest_clients == most
    assert err.smallest_bits > bits
    if most >= 2:
        assert f"at most {most} clients fit in {bits} bits" in str(err)
    # only a width the engine has is suggested (tests/encoding/test_headroom_error_message.py)
    if err.suggested_bits is not None:
        assert f"{most + 1} clients fit in {err.suggested_bits} bits" in str(err)
    else:
        assert "no supported width (32 or 64 bits)" in str(err)
    fp.check_headroom(most + 1, bound, modular_clipping=True)  # explicit request: allowed


def test_fixed_point_rejects_bad_parameters() -> None:
    for bad in (dict(scale=0.0), dict(scale=math.inf), dict(scale=1.0, bits=16)):
        with pytest.raises(ConfigurationError):
            FixedPoint(**bad)  # type: ignore[arg-type]


# --- rotation --------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 3000), seed=st.binary(min_size=16, max_size=16))
def test_rotation_round_trips_and_keeps_norms(d: int, seed: bytes) -> None:
    stream = KeyedStream(seed)
    x = (stream.uniform(d) - 0.5) * 10
    rotation = RandomizedHadamard(d, seed)
    y = rotation.rotate(x)
    assert y.shape == (padded_dimension(d),)
    assert math.isclose(np.linalg.norm(y), np.linalg.norm(x), rel_tol=1e-12, abs_tol=1e-12)
    back = rotation.unrotate(y)
    assert back.shape == (d,)
    assert np.max(np.abs(back - x)) <= 1e-12 * max(1.0, float(np.max(np.abs(x))))


@given(m=st.integers(0, 12), seed=st.binary(min_size=16, max_size=16))
def test_walsh_hadamard_is_exact_and_self_inverse_on_integers(m: int, seed: bytes) -> None:
    n = 1 << m
    x = KeyedStream(seed).integers(2001, n).astype(np.int64) - 1000
    hx = walsh_hadamard(x)
    assert hx.dtype == np.int64
    assert np.array_equal(walsh_hadamard(hx), n * x)


def test_walsh_hadamard_matches_the_sylvester_matrix() -> None:
    h = np.array([[1]])
    for _ in range(4):
        h = np.block([[h, h], [h, -h]])
    x = np.arange(16) ** 2
    assert np.array_equal(walsh_hadamard(x), h @ x)


def test_rotation_spreads_a_spike_and_depends_on_the_seed() -> None:
    d = 1 << 12
    spike = np.zeros(d)
    spike[7] = 1.0
    a = RandomizedHadamard(d, b"a" * 16).rotate(spike)
    assert np.allclose(np.abs(a), 1 / math.sqrt(d))  # all energy spread evenly
    b = RandomizedHadamard(d, b"b" * 16).rotate(spike)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, RandomizedHadamard(d, b"a" * 16).rotate(spike))


def test_rotation_rejects_wrong_shapes() -> None:
    rotation = RandomizedHadamard(10, os.urandom(16))
    with pytest.raises(ConfigurationError):
        rotation.rotate(np.zeros(11))
    with pytest.raises(ConfigurationError):
        rotation.unrotate(np.zeros(10))
    with pytest.raises(ConfigurationError):
        walsh_hadamard(np.zeros(12))


# --- keyed stream ----------------------------------------------------------


def test_keyed_stream_never_shows_its_key_and_moves_forward() -> None:
    key = os.urandom(16)
    stream = KeyedStream(key)
    assert key.hex() not in repr(stream) and str(list(key)) not in repr(stream)
    first, second = stream.words(4), stream.words(4)
    assert not np.array_equal(first, second)
    assert stream.position == 8
    assert np.array_equal(KeyedStream(key).words(8), np.concatenate([first, second]))
    with pytest.raises(ConfigurationError):
        KeyedStream(b"short")


@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.integers(0, 20),
    st.integers(0, 30_000),
    st.integers(1, 9_000),
    st.integers(0, 9_000),
)
def test_keyed_stream_word_blocks_are_the_words_in_order(
    key: bytes, before: int, count: int, block: int, after: int
) -> None:
    """Blocks from one AES context are the very words ``words`` gives, wherever the stream
    stands (a small draw first leaves an expanded block behind), and the stream goes on
    from after them."""
    reference = KeyedStream(key).words(before + count + after)
    stream = KeyedStream(key)
    assert np.array_equal(stream.words(before), reference[:before])
    seen = [b.copy() for b in stream.word_blocks(count, block)]
    assert all(b.size == block for b in seen[:-1]) and all(0 < b.size <= block for b in seen)
    got = np.concatenate(seen) if seen else np.empty(0, dtype=np.uint64)
    assert np.array_equal(got, reference[before : before + count])
    assert stream.position == before + count
    assert np.array_equal(stream.words(after), reference[before + count :])


def test_keyed_stream_word_blocks_refuse_bad_sizes_and_count_only_what_was_seen() -> None:
    stream = KeyedStream(os.urandom(16))
    for count, block in ((-1, 8), (8, 0), (8, True), (8, 2.0)):
        with pytest.raises(ConfigurationError):
            next(stream.word_blocks(count, block))  # type: ignore[arg-type]
    assert stream.position == 0
    blocks = stream.word_blocks(100, 30)
    next(blocks)
    assert stream.position == 30  # a caller that stops early consumed one block


def test_keyed_stream_integers_are_uniform() -> None:
    # chi-square over 7 cells, 700k draws; the 99.9999% point of chi2(6) is 37.0
    upper, count = 7, 700_000
    counts = np.bincount(KeyedStream().integers(upper, count).astype(np.int64), minlength=upper)
    expected = count / upper
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert counts.size == upper and chi2 < 37.0, counts
    # bounds near 2^63 are handled without overflow
    big = KeyedStream().integers(np.uint64(1 << 63), 1000)
    assert big.max() < (1 << 63)
    with pytest.raises(ConfigurationError):
        KeyedStream().integers(0, 3)


# --- argument types (hostile-user audit 2026-12-04) ---------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (dict(scale=True), "scale"),  # taken as scale 1
        (dict(scale="1"), "scale"),  # TypeError: must be real number, not str
        (dict(scale=None), "scale"),
        (dict(scale=1.0, bits=32.0), "bits"),  # taken: fails later as a float shift width
    ],
)
def test_fixed_point_refuses_parameters_of_the_wrong_type(
    args: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        FixedPoint(**args)  # type: ignore[arg-type]


def test_fixed_point_takes_numpy_numbers() -> None:
    fp = FixedPoint(np.float32(1024.0), np.int64(32))  # type: ignore[arg-type]
    assert fp.decode(fp.encode(np.array([0.5]))).tolist() == [0.5]


@pytest.mark.parametrize("dimension", [1.5, "4", None, True])
def test_the_rotation_refuses_a_dimension_that_is_not_an_integer(dimension: object) -> None:
    # before: AttributeError ('float' has no 'bit_length'), TypeError, or True taken as 1
    with pytest.raises(ConfigurationError, match="dimension"):
        padded_dimension(dimension)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="dimension"):
        RandomizedHadamard(dimension, b"s" * 16)  # type: ignore[arg-type]


def test_the_rotation_needs_its_public_seed() -> None:
    # before: None drew a random key, so a client and the server each rotated with
    # signs the other could not reproduce, and the sum came back as noise
    with pytest.raises(ConfigurationError, match="seed"):
        RandomizedHadamard(4, None)  # type: ignore[arg-type]


def test_the_rotation_refuses_complex_and_text_values() -> None:
    rotation = RandomizedHadamard(2, b"s" * 16)
    with pytest.raises(ConfigurationError, match="real"):
        rotation.rotate(np.array([1j, 1.0]))  # before: the imaginary part was dropped
    with pytest.raises(ConfigurationError, match="real"):
        rotation.unrotate(np.array([1j, 1.0]))
    with pytest.raises(ConfigurationError, match="real"):
        walsh_hadamard(np.array(["a", "b"]))  # before: numpy's UFuncTypeError


def test_stochastic_rounding_needs_a_keyed_stream() -> None:
    # before: AttributeError: 'NoneType' object has no attribute 'word_blocks'
    with pytest.raises(ConfigurationError, match="KeyedStream"):
        stochastic_round(np.array([0.5]), None)  # type: ignore[arg-type]


@pytest.mark.parametrize("clients", [2.5, "2", True])
def test_headroom_needs_an_integer_client_count(clients: object) -> None:
    # before: 2.5 and True were checked as counts, "2" raised TypeError
    with pytest.raises(ConfigurationError, match="num_clients"):
        FixedPoint(2.0**20).check_headroom(clients, 1.0)  # type: ignore[arg-type]
