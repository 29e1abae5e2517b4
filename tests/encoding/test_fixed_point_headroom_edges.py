"""Fixed point at the edge of its headroom: a sum either decodes within the documented
error or the configuration is refused with a typed error, never a silent wrap.

The sum of n clients' words wraps modulo 2^b; :meth:`FixedPoint.decode` reads it signed,
so a true integer sum outside [-2^(b-1), 2^(b-1)) decodes to a wrong but plausible
number. :meth:`FixedPoint.check_headroom` must refuse every configuration where that
can happen, counting the unit stochastic rounding may add to each client (the ``+ 1``
of :meth:`FixedPoint.integer_bound`). The configurations here are built at the
boundary: per-client units of ``largest - 1``, ``largest`` and ``largest + 1`` for the
client count, with every coordinate at the bound (or its negation) and a fraction
close to 1, so almost every client rounds up. Exact sums are rational (``Fraction``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint, largest_clients, smallest_bits
from secagg.errors import ConfigurationError, HeadroomError


def _documented_error(clients: int, scale: float, value_bound: float) -> Fraction:
    """docs/backends.md's fixed-point exactness: ``k * (1/scale + C * 2^-52)`` a coordinate
    (the masking backend's report.error_bound)."""
    return clients * (1 / Fraction(scale) + Fraction(value_bound) * Fraction(2) ** -52)


def _sum_or_refusal(
    fp: FixedPoint, rows: np.ndarray, value_bound: float, keys: list[bytes]
) -> np.ndarray | None:
    """The decoded ring sum of ``rows``, or None when the encoding refused them by type."""
    try:
        fp.check_headroom(len(rows), value_bound)
    except HeadroomError:
        return None
    total = np.zeros(rows.shape[1], dtype=fp.dtype)
    for row, key in zip(rows, keys, strict=True):
        try:
            total += fp.encode(row, KeyedStream(key))  # wraps modulo 2^bits
        except ConfigurationError:  # a value no 64-bit rounding takes (|x * scale| >= 2^62)
            return None
    return fp.decode(total)


def _assert_within(decoded: np.ndarray, rows: np.ndarray, fp: FixedPoint, bound: float) -> None:
    allowed = _documented_error(len(rows), fp.scale, bound)
    for column, value in enumerate(decoded.tolist()):
        exact = sum((Fraction(float(v)) for v in rows[:, column]), Fraction(0))
        assert abs(Fraction(value) - exact) <= allowed, (column, value, float(exact))


@settings(max_examples=300, deadline=None)
@given(
    bits=st.sampled_from([32, 64]),
    clients=st.integers(1, 60),
    scale_exponent=st.integers(-8, 24),
    offset=st.sampled_from([-1, 0, 1]),
    fraction=st.floats(0.5, 0.999),
    signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=1, max_size=6),
    seed=st.binary(min_size=16, max_size=16),
)
def test_a_sum_at_the_headroom_boundary_decodes_exactly_or_is_refused(
    bits: int,
    clients: int,
    scale_exponent: int,
    offset: int,
    fraction: float,
    signs: list[float],
    seed: bytes,
) -> None:
    """Units per client around the largest that fits: the sum is right or refused."""
    scale = 2.0**scale_exponent
    largest = ((1 << (bits - 1)) - 1) // clients - 1  # the most units a client may round to
    units = largest + offset  # the floor of bound * scale
    value_bound = (units + fraction) / scale
    fp = FixedPoint(scale=scale, bits=bits)
    rows = np.tile(np.array(signs) * value_bound, (clients, 1))
    stream = KeyedStream(seed)
    keys = [stream.words(2).tobytes() for _ in range(clients)]
    decoded = _sum_or_refusal(fp, rows, value_bound, keys)
    if decoded is None:
        return
    _assert_within(decoded, rows, fp, value_bound)


@settings(max_examples=200, deadline=None)
@given(
    bits=st.sampled_from([32, 64]),
    clients=st.integers(1, 40),
    value_bound=st.floats(1e-6, 1e6),
    scale=st.one_of(st.floats(1e-3, 2.0**40), st.integers(-10, 40).map(lambda e: 2.0**e)),
    columns=st.integers(1, 6),
    seed=st.binary(min_size=16, max_size=16),
)
def test_random_configurations_decode_within_the_documented_error_or_are_refused(
    bits: int, clients: int, value_bound: float, scale: float, columns: int, seed: bytes
) -> None:
    """Any scale (powers of two or not) and any bound: coordinates at +-bound, just
    inside it, zero, or uniform within it; within ``k (1/s + C 2^-52)`` or refused."""
    stream = KeyedStream(seed)
    edges = np.array([value_bound, -value_bound, np.nextafter(value_bound, 0.0), 0.0])
    pick = stream.integers(5, clients * columns).reshape(clients, columns)
    uniform = (stream.uniform(clients * columns).reshape(clients, columns) * 2 - 1) * value_bound
    rows = np.where(pick < 4, edges[np.minimum(pick, 3)], uniform)
    keys = [stream.words(2).tobytes() for _ in range(clients)]
    fp = FixedPoint(scale=scale, bits=bits)
    decoded = _sum_or_refusal(fp, rows, value_bound, keys)
    if decoded is None:
        return
    _assert_within(decoded, rows, fp, value_bound)


@pytest.mark.parametrize(
    ("scale", "value_bound", "bits"),
    [(1e200, 1e200, 32), (1e200, 1e200, 64), (2.0**1000, 2.0**100, 64), (1e308, 10.0, 32)],
)
def test_a_bound_past_the_float_range_is_a_headroom_error(
    scale: float, value_bound: float, bits: int
) -> None:
    """value_bound * scale overflowed to inf and math.floor raised OverflowError: the
    configuration is refused as any other that cannot fit, with its two ways out."""
    fp = FixedPoint(scale=scale, bits=bits)
    units = fp.integer_bound(value_bound)
    assert units == math.floor(Fraction(value_bound) * Fraction(scale)) + 1
    with pytest.raises(HeadroomError) as info:
        fp.check_headroom(2, value_bound)
    error = info.value
    assert error.largest_clients == 0
    assert error.smallest_bits == (2 * units).bit_length() + 1
    assert "\n" not in str(error) and len(str(error)) < 400
    assert f"about 2^{units.bit_length()} units" in str(error)
    fp.check_headroom(2, value_bound, modular_clipping=True)  # asked for: no check


@settings(max_examples=200, deadline=None)
@given(
    bits=st.sampled_from([32, 64]),
    clients=st.integers(2, 127),
    bound=st.floats(0.015625, 1024.0, width=32),
    dtype=st.sampled_from([np.float32, np.float16, np.float64]),
    fraction=st.floats(0.5, 0.99),
    seed=st.binary(min_size=16, max_size=16),
)
@example(  # the case found by hand: float32 passes, and the sum wraps to the negative
    bits=32,
    clients=12,
    bound=float(np.float32(753.51556)),
    dtype=np.float32,
    fraction=0.9,
    seed=bytes(16),
)
def test_a_numpy_bound_is_checked_at_the_precision_the_rounding_uses(
    bits: int, clients: int, bound: float, dtype: type, fraction: float, seed: bytes
) -> None:
    """np.float32 * a Python float is a float32 product (NEP 50): the bound was rounded
    to 24 bits, below the float64 products the clients' rounding takes, so the check
    passed sums that wrap (12 clients at np.float32(753.51556), scale 237496.05: -9042.19
    decoded for 9042.19). The scale here puts the float64 units just past the boundary."""
    value_bound = dtype(bound)
    if not np.isfinite(value_bound) or float(value_bound) <= 0:
        return
    scale = (((1 << (bits - 1)) - 1) // clients + fraction) / float(value_bound)
    fp = FixedPoint(scale=scale, bits=bits)
    rows = np.full((clients, 3), float(value_bound))
    stream = KeyedStream(seed)
    keys = [stream.words(2).tobytes() for _ in range(clients)]
    decoded = _sum_or_refusal(fp, rows, value_bound, keys)  # type: ignore[arg-type]
    if decoded is None:
        return
    _assert_within(decoded, rows, fp, float(value_bound))


@pytest.mark.parametrize("bound", ["1.0", None, True, 1 + 0j, b"1"])
def test_a_bound_that_is_no_real_number_is_refused_by_type(bound: object) -> None:
    """A text bound failed as math's TypeError; True passed as 1."""
    with pytest.raises(ConfigurationError, match="must be a real number"):
        FixedPoint(scale=2.0**10).check_headroom(2, bound)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bits", "scale", "value_bound", "clients"),
    [
        (32, 2.0**20, 1000.0, np.int32(5000)),  # 5000 * 1048576001 wrapped in int32
        (32, 2.0**20, 1000.0, np.int64(5000)),
        (64, 2.0**61, 2.0, np.int64(4)),  # 4 * (2^62 + 1) wrapped in int64
        (64, 2.0**61, 2.0, np.uint64(4)),
        (32, 2.0**20, 1000.0, np.int16(5000)),  # the product did not fit: OverflowError
        (32, 1.0, 1.0, np.int64(2**62)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, np.integer) else repr(v),
)
def test_a_numpy_client_count_is_checked_as_the_python_one(
    bits: int, scale: float, value_bound: float, clients: np.integer
) -> None:
    """numpy's integers multiplied in their own width: the product of the count and the
    units wrapped (np.int32(5000) at 1048576001 units passed a 32-bit ring) or raised
    numpy's OverflowError. The count is a Python int before the product."""
    fp = FixedPoint(scale=scale, bits=bits)
    with pytest.raises(HeadroomError) as python:
        fp.check_headroom(int(clients), value_bound)
    with pytest.raises(HeadroomError) as numpy_count:
        fp.check_headroom(clients, value_bound)  # type: ignore[arg-type]
    assert str(numpy_count.value) == str(python.value)
    assert numpy_count.value.largest_clients == python.value.largest_clients
    fp.check_headroom(type(clients)(1), value_bound / 2**40)  # and a fitting one passes


@pytest.mark.parametrize("integer", [int, np.int64, np.int32, np.uint64])
def test_the_headroom_helpers_answer_in_python_integers(integer: type) -> None:
    """smallest_bits(np.int64(3), 5) failed as an AttributeError (numpy's integers have
    no bit_length), and np.int32(70000) * 70000 wrapped before it was measured."""
    assert smallest_bits(integer(3), integer(5)) == smallest_bits(3, 5) == 5
    assert smallest_bits(integer(70000), integer(70000)) == (70000 * 70000).bit_length() + 1
    assert type(smallest_bits(integer(3), integer(5))) is int
    assert largest_clients(integer(5), integer(32)) == largest_clients(5, 32) == 429496729
    assert type(largest_clients(integer(5), integer(32))) is int
