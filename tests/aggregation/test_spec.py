"""The round spec codec: what a backend writes it reads back; anything else is refused."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import decode_spec, encode_spec, get_backend
from secagg.aggregation.base import RoundSpec
from secagg.aggregation.ckks import CKKSSpec, DesignPoint
from secagg.aggregation.masking import MaskingSpec
from secagg.aggregation.spec import (
    MAX_FIELD_BYTES,
    MAX_SPEC_CLIENTS,
    MAX_SPEC_DIMENSION,
    Writer,
)
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.errors import MalformedMessage


@settings(max_examples=50, deadline=None)
@given(
    backend=st.sampled_from(("plain", "secagg", "secagg+")),
    n=st.integers(2, 5000),
    d=st.integers(1, 10**6),
    bound=st.floats(1e-3, 1e3),
    bits=st.sampled_from([32, 64]),
)
def test_every_spec_round_trips(backend: str, n: int, d: int, bound: float, bits: int) -> None:
    options = {"value_bound": bound} | ({} if backend == "plain" else {"bits": bits})
    spec = get_backend(backend, **options).plan(n, d)
    assert decode_spec(encode_spec(spec)) == spec


def test_the_distributed_noise_share_travels_in_the_masking_spec() -> None:
    ddg = DistributedDiscreteGaussian(
        dimension=100, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    share = NoiseShareRound(ddg, bytes(range(16)))
    spec = get_backend("secagg+").plan(10, 100, noise_share=share)
    back = decode_spec(encode_spec(spec))
    assert isinstance(back, MaskingSpec) and back == spec
    assert back.vector_length == ddg.padded


def test_a_record_level_noise_share_travels_with_its_vector_bound() -> None:
    ddg = DistributedDiscreteGaussian(
        dimension=100, clip=0.01, noise_multiplier=2.0, expected_clients=10, vector_bound=5.0
    )
    spec = get_backend("secagg+").plan(10, 100, noise_share=NoiseShareRound(ddg, bytes(16)))
    back = decode_spec(encode_spec(spec))
    assert back == spec and back.noise_share.mechanism.record_level  # type: ignore[attr-defined]
    # a record-level share whose bound is not above its clip cannot be built: refused
    data = encode_spec(spec)
    bound = struct.pack("<d", 5.0)
    assert data.count(bound) == 1
    with pytest.raises(MalformedMessage, match="vector bound"):
        decode_spec(data.replace(bound, struct.pack("<d", 0.005)))


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 80), flip=st.integers(0, 79), junk=st.binary(max_size=8))
def test_truncated_flipped_or_extended_specs_raise_only_malformed(
    cut: int, flip: int, junk: bytes
) -> None:
    data = encode_spec(get_backend("secagg+").plan(10, 100))
    mutated = bytearray(data[:cut] + junk + data[cut:])
    if flip < len(mutated):
        mutated[flip] ^= 0x41
    if bytes(mutated) == data:
        return
    try:
        decode_spec(bytes(mutated))
    except MalformedMessage:
        pass  # refused, typed


def test_an_unknown_backend_is_refused() -> None:
    data = encode_spec(get_backend("plain").plan(3, 4)).replace(b"plain", b"pl@in")
    with pytest.raises(MalformedMessage, match="unknown backend"):
        decode_spec(data)


# --- totality (review findings H1 and L3) -------------------------------------------------
# A spec comes from the server; whatever it sends, decode_spec gives a spec or
# MalformedMessage, never another exception (it would escape a branch's receive loop).


def _valid_specs() -> list[bytes]:
    ddg = DistributedDiscreteGaussian(
        dimension=100, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    share = NoiseShareRound(ddg, bytes(range(16)))
    record = DistributedDiscreteGaussian(
        dimension=100, clip=0.01, noise_multiplier=2.0, expected_clients=10, vector_bound=5.0
    )
    record_share = NoiseShareRound(record, bytes(range(16)))
    return [
        encode_spec(get_backend("plain", value_bound=2.0).plan(3, 4)),
        encode_spec(get_backend("secagg+").plan(10, 100, noise_share=record_share)),
        encode_spec(get_backend("secagg").plan(10, 100)),
        encode_spec(get_backend("secagg+", bits=64).plan(10, 100)),
        encode_spec(get_backend("secagg+").plan(10, 100, noise_share=share)),
        encode_spec(CKKSSpec(5, 10, DesignPoint(5, 1.0, 1e-6), b"f" * 32, b"context")),
    ]


VALID = _valid_specs()
HUGE_U32 = (0, 0xFFFFFFFF, 0x80000000, MAX_SPEC_CLIENTS + 1, MAX_FIELD_BYTES + 1)
SPECIAL_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -1.0)


def _decodes_or_refuses(data: bytes) -> RoundSpec | None:
    try:
        return decode_spec(data)
    except MalformedMessage:
        return None


def _spec(name: bytes, body: bytes) -> bytes:
    return b"SASP\x02" + bytes([len(name)]) + name + body  # spec version 2


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid spec, truncated, bit-flipped, extended, or with a field set huge or special."""
    data = bytearray(draw(st.sampled_from(VALID)))
    how = draw(st.sampled_from(("cut", "flip", "u32", "f64", "junk")))
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return bytes(data[:at])
    if how == "flip":
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "u32":
        data[at : at + 4] = struct.pack("<I", draw(st.sampled_from(HUGE_U32)))
    elif how == "f64":
        data[at : at + 8] = struct.pack("<d", draw(st.sampled_from(SPECIAL_FLOATS)))
    else:
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=500, deadline=None)
@given(data=mutated())
def test_mutated_specs_of_every_backend_decode_or_raise_only_malformed(data: bytes) -> None:
    spec = _decodes_or_refuses(data)
    if spec is not None:
        assert 1 <= spec.num_clients <= MAX_SPEC_CLIENTS
        assert 1 <= spec.dimension <= MAX_SPEC_DIMENSION


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from((b"plain", b"secagg", b"secagg+", b"ckks", b"", b"\xff")),
    body=st.binary(max_size=120),
)
def test_random_bodies_for_every_backend_raise_only_malformed(name: bytes, body: bytes) -> None:
    _decodes_or_refuses(_spec(name, body))


@pytest.mark.parametrize("name", [b"plain", b"ckks"])
@pytest.mark.parametrize(("n", "d"), [(0, 4), (3, 0)])
def test_an_empty_round_is_malformed_not_a_configuration_error(name: bytes, n: int, d: int) -> None:
    """Found by the fuzz test: plain and CKKS decode_body raised ConfigurationError."""
    body = (
        Writer().u32(n).u32(d).f64(1.0).bytes()
        if name == b"plain"
        else Writer().u32(n).u32(d).u32(2).f64(1.0).f64(1e-6).blob(b"f").blob(b"c").bytes()
    )
    with pytest.raises(MalformedMessage):
        decode_spec(_spec(name, body))


@pytest.mark.parametrize(("clip", "noise"), [(1e308, 10.0), (10.0, 1e308)])
def test_distributed_noise_parameters_that_overflow_are_malformed(
    clip: float, noise: float
) -> None:
    """Found by the fuzz test: a clip or noise multiplier near 1e308 raised OverflowError
    (an infinite noise std in DistributedDiscreteGaussian), which masking did not convert."""
    data = bytearray(VALID[3])  # secagg+ with a distributed noise share
    body = 6 + len(b"secagg+")  # the spec header
    at = body + 4 + 4 + 1 + 8 + 8 + 8 + 8 + 1  # n, d, bits, bound, scale, fractions, kind
    data[at : at + 16] = struct.pack("<dd", clip, noise)
    with pytest.raises(MalformedMessage):
        decode_spec(bytes(data))


@pytest.mark.parametrize(
    ("n", "d"), [(MAX_SPEC_CLIENTS + 1, 4), (2**32 - 1, 4), (3, MAX_SPEC_DIMENSION + 1)]
)
def test_absurd_round_sizes_are_malformed(n: int, d: int) -> None:
    with pytest.raises(MalformedMessage, match="out of range"):
        decode_spec(_spec(b"plain", Writer().u32(n).u32(d).f64(1.0).bytes()))


@pytest.mark.parametrize("data", ["SASP", None, 3])
def test_a_non_bytes_spec_is_malformed(data: object) -> None:
    with pytest.raises(MalformedMessage):
        decode_spec(data)  # type: ignore[arg-type]
