"""A distributed discrete Gaussian's given scale gets the ring headroom its planned one has.

Review (2026-12-06): ``DistributedDiscreteGaussian(dimension=4, clip=1, noise_multiplier=1,
expected_clients=3, bits=32, scale=2**40)`` was accepted, in code and from the wire; each
noise share then had a std of 6.3e11 units in a ring of 4.3e9, so every coordinate of
the sum wrapped and the server read back noise modulo the ring (with the report's
error bound inf, as for any noised round). The planned scale (the paper's heuristic)
puts the sum's ``k``-sigma spread, ``k`` for ``wrap_probability``, at half the ring; a
given scale above it is now refused: :class:`ScaleBeyondRing` in code,
:class:`MalformedMessage` from the wire.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import KeyedStream
from secagg.dp.clipping import clip_l2
from secagg.dp.distributed import DistributedDiscreteGaussian, ScaleBeyondRing
from secagg.dp.noise import discrete_gaussian
from secagg.encoding.rotation import RandomizedHadamard
from secagg.errors import ConfigurationError, MalformedMessage
from tests._ddg_wire import REVIEWED, spec_with_share_scale

_REVIEWED = REVIEWED  # the reviewed parameters (tests/_ddg_wire.py)


def test_the_reviewed_scale_that_wraps_every_coordinate_is_refused_by_type() -> None:
    planned = DistributedDiscreteGaussian(**_REVIEWED)  # type: ignore[arg-type]
    with pytest.raises(ScaleBeyondRing, match=r"scale 1\.09951e\+12 .* 32-bit ring") as caught:
        DistributedDiscreteGaussian(**_REVIEWED, scale=2.0**40)  # type: ignore[arg-type]
    assert caught.value.largest_scale == planned.scale == planned.largest_scale
    assert isinstance(caught.value, ConfigurationError)
    # the figure the message quotes is rounded down: it is itself accepted
    quoted = float(str(caught.value).split("at most ")[1].split(" ")[0])
    assert DistributedDiscreteGaussian(**_REVIEWED, scale=quoted).scale == quoted  # type: ignore[arg-type]
    # the planned scale, given back (as the wire and a ledger do), is taken as it is
    assert DistributedDiscreteGaussian(**_REVIEWED, scale=planned.scale) == planned  # type: ignore[arg-type]


def test_a_share_scale_from_the_wire_beyond_the_ring_is_malformed() -> None:
    from secagg.aggregation import decode_spec

    with pytest.raises(MalformedMessage, match="too little headroom"):
        decode_spec(spec_with_share_scale(2.0**40)[0])
    same, spec = spec_with_share_scale(DistributedDiscreteGaussian(**_REVIEWED).scale)  # type: ignore[arg-type]
    assert decode_spec(same) == spec


def _signed(words: np.ndarray, bits: int) -> np.ndarray:
    """The ring's words read as signed ``bits``-bit integers, as decode reads them."""
    shift = np.uint64(64 - bits)
    return (words.astype(np.uint64) << shift).view(np.int64) >> np.int64(64 - bits)


@settings(max_examples=80, deadline=None)
@given(
    clients=st.integers(min_value=1, max_value=8),
    dimension=st.integers(min_value=1, max_value=64),
    clip=st.floats(min_value=1e-3, max_value=1e3),
    noise_multiplier=st.floats(min_value=0.1, max_value=4.0),
    bits=st.integers(min_value=16, max_value=64),
    doublings=st.integers(min_value=-3, max_value=3) | st.just(40),
    key=st.binary(min_size=16, max_size=16),
)
def test_any_accepted_scale_sums_within_the_ring_or_is_refused(
    clients: int,
    dimension: int,
    clip: float,
    noise_multiplier: float,
    bits: int,
    doublings: int,
    key: bytes,
) -> None:
    """Any scale a share can announce (the planned one times 2^-3 .. 2^3, or 2^40): refused as
    beyond the ring, or every client sending the same update at the bound (the signal
    the heuristic sizes for: the clients' rotated coordinates add up in step) plus its
    noise share sums without wrapping, the decoded sum being the exact integer sum over
    the scale. The heuristic allows a wrap with probability 1e-4 a coordinate at the
    planned scale (2 allowed in the at most 64 here: 3 is a 4e-8 event), about 1e-14
    at half of it (none allowed)."""
    params = dict(
        dimension=dimension,
        clip=clip,
        noise_multiplier=noise_multiplier,
        expected_clients=clients,
        bits=bits,
    )
    try:
        planned = DistributedDiscreteGaussian(**params)  # type: ignore[arg-type]
    except ConfigurationError:
        return  # no scale above 1 fits (too few bits for the cohort): nothing to announce
    scale = planned.scale * 2.0**doublings
    try:
        ddg = DistributedDiscreteGaussian(**params, scale=scale)  # type: ignore[arg-type]
    except ScaleBeyondRing as refused:
        assert scale > planned.largest_scale == refused.largest_scale
        return
    except ConfigurationError:  # beyond float64's exact integers: refused, not summed
        assert doublings > 0
        return
    assert scale <= planned.largest_scale

    # the rotation's signs from another key than the update's direction: from the same
    # one they matched its signs, and the rotation piled the whole L1 norm into one
    # coordinate (a client can do that on purpose, docs/privacy.md; the heuristic
    # sizes for honest clients, whose updates do not know the round's rotation)
    seed = bytes(byte ^ 0x5A for byte in key)
    direction = np.asarray(KeyedStream(key).uniform(dimension), dtype=np.float64) - 0.5
    update = direction / max(float(np.linalg.norm(direction)), 1e-300) * clip
    rotation = RandomizedHadamard(dimension, seed)
    exact = np.zeros(ddg.padded, dtype=np.int64)
    width = 8 * np.dtype(ddg.word_dtype).itemsize
    total = np.zeros(ddg.padded, dtype=np.uint64)
    for client in range(clients):
        stream_key = bytes([client]) + key[1:]
        words = ddg.encode(update, seed, KeyedStream(stream_key))
        # the same client's integers before the ring, from the same keyed draws
        stream = KeyedStream(stream_key)
        scaled = clip_l2(rotation.rotate(update), ddg.vector_bound).vector * ddg.scale
        shared = ddg.round_within_bound(scaled, stream)
        shared += discrete_gaussian(ddg.local_sigma**2, ddg.padded, stream)
        assert np.array_equal(ddg._to_ring(shared, stream), words)  # the emulation is encode's
        exact += shared.astype(np.int64)
        total += words.astype(np.uint64)
    if width == 32:
        total &= np.uint64(0xFFFFFFFF)
    wrapped = int(np.count_nonzero(_signed(total, bits) != exact))
    assert wrapped <= (0 if doublings < 0 else 2), (wrapped, ddg.padded)
    decoded = ddg.decode(total.astype(ddg.word_dtype), seed)
    if wrapped == 0:
        expected = rotation.unrotate(exact / ddg.scale)
        assert np.allclose(decoded, expected, rtol=1e-9, atol=1e-9 * clip * clients)
