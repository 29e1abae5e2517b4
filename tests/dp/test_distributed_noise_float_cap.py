"""The planned scale keeps a noise share's std within float64's exact integers.

Why: on a 56- or 64-bit ring a small cohort's planned scale was capped only for the
update (2^48 per unit of the clip), so ``z = 10^4`` with 2 clients put each share's std
at about 2^60 units and the constructor refused the plan with "lower the noise or the
clip": a lower clip changes nothing (the scale grows as the clip shrinks), and nothing
overflowed that a smaller scale would not avoid. The planner now caps the scale for the
noise too (std at most 2^48 units), and a *given* scale past the float range is told
the largest scale that fits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.dp.distributed import MAX_SCALED_MAGNITUDE, DistributedDiscreteGaussian
from secagg.errors import ConfigurationError


@pytest.mark.parametrize("bits", [56, 64])
@pytest.mark.parametrize("clients", [2, 10])
def test_a_large_noise_on_a_large_ring_is_planned(bits: int, clients: int) -> None:
    ddg = DistributedDiscreteGaussian(
        dimension=100, clip=1.0, noise_multiplier=1e4, expected_clients=clients, bits=bits
    )
    assert ddg.local_sigma <= MAX_SCALED_MAGNITUDE / 4
    assert ddg.scale * ddg.clip > 1e9  # the updates still span many ring units
    assert ddg.scale == ddg.planned_scale  # the audit's replay and the branches agree
    # the privacy of the noise asked for: the 32-bit ring's figure
    narrow = DistributedDiscreteGaussian(
        dimension=100, clip=1.0, noise_multiplier=1e4, expected_clients=clients
    )
    figures = [
        d.epsilon(noise_contributors=clients, sample_rate=1.0, rounds=1, delta=1e-5)
        for d in (ddg, narrow)
    ]
    assert figures[0] == pytest.approx(figures[1], rel=1e-6)


def test_the_round_decodes_the_noised_sum() -> None:
    """Two clients' shares on a 64-bit ring sum and decode: the noise is z C = 10^4 per
    coordinate on the sum (std), so the decoded sum lies within 8 of its std."""
    ddg = DistributedDiscreteGaussian(
        dimension=64, clip=1.0, noise_multiplier=1e4, expected_clients=2, bits=64
    )
    seed = b"\x01" * 16
    updates = [np.full(64, 0.1), np.full(64, -0.05)]
    words = [ddg.encode(u, seed, KeyedStream(bytes([i + 1]) * 16)) for i, u in enumerate(updates)]
    total = words[0] + words[1]  # uint64 wraps: the ring's sum
    decoded = ddg.decode(total, seed)
    assert np.all(np.isfinite(decoded))
    std = ddg.sum_stddev(2)
    assert std == pytest.approx(1e4, rel=1e-3)
    assert np.max(np.abs(decoded - (updates[0] + updates[1]))) < 8 * std


def test_a_given_scale_past_the_float_range_names_the_largest_that_fits() -> None:
    with pytest.raises(ConfigurationError) as refusal:
        DistributedDiscreteGaussian(
            dimension=100,
            clip=1.0,
            noise_multiplier=1e4,
            expected_clients=2,
            bits=64,
            scale=2e14,
        )
    text = str(refusal.value)
    assert "scale 2e+14" in text and "give a scale of at most" in text
    assert "or the clip" not in text
    most = float(text.split("at most ")[1].split(",")[0])
    assert most <= MAX_SCALED_MAGNITUDE * math.sqrt(2) / 1e4
    DistributedDiscreteGaussian(  # the scale it names is taken
        dimension=100,
        clip=1.0,
        noise_multiplier=1e4,
        expected_clients=2,
        bits=64,
        scale=most,
    )


def test_the_32_bit_plans_are_as_before() -> None:
    """The cap binds only where the ring's own scale puts the std past 2^48 units (over
    about 52 bits): a 32-bit plan's scale is the ring's, unchanged."""
    for z, n in [(1.0, 2), (1e4, 2), (0.7, 1000)]:
        ddg = DistributedDiscreteGaussian(
            dimension=100, clip=1.0, noise_multiplier=z, expected_clients=n
        )
        assert ddg.scale == ddg.largest_scale
