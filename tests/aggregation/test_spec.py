"""The round spec codec: what a backend writes it reads back; anything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import decode_spec, encode_spec, get_backend
from secagg.aggregation.masking import MaskingSpec
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
