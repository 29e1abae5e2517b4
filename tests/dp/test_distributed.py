"""The distributed discrete Gaussian, alone and through the masking engine.

Spread checks use 5.5-sigma bands on sample variances (false alarm about 4e-8
each); mean checks likewise.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.dp.distributed import (
    DistributedDiscreteGaussian,
    honest_noise_contributors,
    wrap_stddevs,
)
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError
from secagg.protocol import simulate_round

Z_BAND = 5.5


def _mechanism(d: int, n: int, **kw: object) -> DistributedDiscreteGaussian:
    args: dict[str, object] = dict(dimension=d, clip=1.0, noise_multiplier=1.0, expected_clients=n)
    return DistributedDiscreteGaussian(**(args | kw))  # type: ignore[arg-type]


def _updates(n: int, d: int, norm: float = 2.0) -> np.ndarray:
    """n random updates of L2 norm about ``norm`` (so clipping to 1 is active)."""
    return gaussian(norm / math.sqrt(d), n * d).reshape(n, d)


def _ring_sum(words: list[np.ndarray]) -> np.ndarray:
    total = np.zeros_like(words[0])
    for w in words:
        total += w
    return total


def test_noise_of_the_decoded_sum_has_the_configured_spread() -> None:
    n, d = 20, 1 << 15
    mech = _mechanism(d, n)
    seed = os.urandom(16)
    words = [mech.encode(np.zeros(d), seed) for _ in range(n)]
    noise = mech.decode(_ring_sum(words), seed)  # zero updates: all that is left is noise
    expected = mech.sum_stddev(n)
    # n shares of sigma_int^2 sum to about (z C)^2: the central DP-FedAvg noise
    assert expected == pytest.approx(1.0, rel=1e-3)
    assert abs(noise.mean()) < Z_BAND * expected / math.sqrt(d)
    assert abs(noise.var() / expected**2 - 1) < Z_BAND * math.sqrt(2 / d)


def test_decoded_sum_is_the_clipped_sum_plus_noise_over_many_seeds() -> None:
    n, d, rounds = 10, 512, 20
    mech = _mechanism(d, n)
    errors = []
    for _ in range(rounds):
        seed = os.urandom(16)
        updates = _updates(n, d)
        clipped = updates / np.maximum(1.0, np.linalg.norm(updates, axis=1))[:, None]
        words = [mech.encode(u, seed) for u in updates]
        errors.append(mech.decode(_ring_sum(words), seed) - clipped.sum(axis=0))
    err = np.concatenate(errors)
    sd = mech.sum_stddev(n)
    assert abs(err.mean()) < Z_BAND * sd / math.sqrt(err.size)  # unbiased
    assert abs(err.var() / sd**2 - 1) < Z_BAND * math.sqrt(2 / err.size) + 1e-6


@pytest.mark.parametrize("graph", ["harary", "complete"])
def test_through_the_masking_engine_with_dropouts(graph: str) -> None:
    """Clients encode, mask and sum through SecAgg(+); some drop before their masked input."""
    n, d, rounds = 24, 256, 8
    mech = _mechanism(d, n)
    dropped = [3, 11]  # vanish before sending the masked input: their noise is missing
    survivors = [p for p in range(n) if p not in dropped]
    errors = []
    stream = KeyedStream()
    for r in range(rounds):
        seed = os.urandom(16)
        updates = _updates(n, d)
        clipped = updates / np.maximum(1.0, np.linalg.norm(updates, axis=1))[:, None]
        words = np.stack([mech.encode(u, seed, stream) for u in updates])
        word_sum = simulate_round(words, graph=graph, dropped={"masked_input": dropped}, seed=r)
        assert np.array_equal(word_sum, _ring_sum([words[p] for p in survivors]))
        errors.append(mech.decode(word_sum, seed) - clipped[survivors].sum(axis=0))
    err = np.concatenate(errors)
    sd = mech.sum_stddev(len(survivors))  # only the survivors' noise is in the sum
    assert abs(err.mean()) < Z_BAND * sd / math.sqrt(err.size)
    assert abs(err.var() / sd**2 - 1) < Z_BAND * math.sqrt(2 / err.size) + 1e-6


def test_dropouts_raise_the_reported_epsilon_honestly() -> None:
    n, d = 100, 1 << 16
    mech = _mechanism(d, n, bits=20, beta=0.0)
    args = dict(sample_rate=0.01, rounds=1000, delta=1e-5)
    full = mech.epsilon(noise_contributors=n, **args)  # type: ignore[arg-type]
    survivors = honest_noise_contributors(90, assumed_corrupt=5)
    assert survivors == 85
    fewer = mech.epsilon(noise_contributors=survivors, **args)  # type: ignore[arg-type]
    assert fewer > full
    assert mech.epsilon(noise_contributors=0, **args) == math.inf  # type: ignore[arg-type]
    # close to the continuous Gaussian's 2.45 through the same subsampling bound
    assert 2.4 < full < 2.6


def test_conditional_rounding_keeps_the_norm_bound() -> None:
    d = 1000
    mech = _mechanism(d, 10, bits=12, wrap_probability=1e-3)  # coarse: rounding matters
    limit = mech.norm_bound * mech.scale
    stream = KeyedStream()
    for _ in range(20):
        x = _updates(1, mech.padded, norm=1.0)[0]
        scaled = x / max(1.0, float(np.linalg.norm(x))) * mech.scale
        rounded = mech.round_within_bound(scaled, stream)
        assert float(np.linalg.norm(rounded.astype(np.float64))) <= limit
        assert np.all(np.abs(rounded - scaled) < 1)
    assert mech.sensitivity >= limit
    assert mech.l1_sensitivity >= mech.sensitivity


@pytest.mark.parametrize("bits", [12, 20, 31, 33, 63, 64])
def test_any_modulus_rides_in_the_engine_words(bits: int) -> None:
    n, d = 8, 64
    mech = _mechanism(d, n, bits=bits)
    seed = os.urandom(16)
    updates = _updates(n, d, norm=0.5)  # unclipped
    words = [mech.encode(u, seed) for u in updates]
    assert all(w.dtype == mech.word_dtype for w in words)
    err = mech.decode(_ring_sum(words), seed) - updates.sum(axis=0)
    assert np.all(np.abs(err) < 8 * mech.sum_stddev(n))


def test_high_bits_above_a_small_modulus_are_random() -> None:
    """Zero high bits would make the sum's high part count the negative noised values."""
    n, d, bits = 10, 1024, 16
    mech = _mechanism(d, n, bits=bits)
    seed = os.urandom(16)
    words = [mech.encode(np.zeros(d), seed) for _ in range(n)]
    high = (_ring_sum(words) >> np.uint32(bits)).astype(np.int64)
    # uniform on [0, 2^16): mean 32767.5, std 18918; a count of negatives would be <= 10
    assert abs(high.mean() - 32767.5) < Z_BAND * 18918 / math.sqrt(d)
    assert high.max() > n


def test_scale_choice_and_wrap_parameters() -> None:
    assert wrap_stddevs(1e-4) == pytest.approx(3.8906, abs=1e-3)
    small = _mechanism(1 << 16, 100, bits=16, beta=0.0)
    # the note's 16-bit example: s = 7845.08 for n = 100, d = 2^16, C = 1, z = 1
    assert small.scale == pytest.approx(7845.08, rel=1e-4)
    with pytest.raises(ConfigurationError, match="bits"):
        _mechanism(1 << 16, 100_000, bits=8)


@pytest.mark.parametrize(
    "bad",
    [
        dict(dimension=0),
        dict(clip=0.0),
        dict(noise_multiplier=0.0),
        dict(expected_clients=0),
        dict(beta=1.0),
        dict(bits=4),
        dict(bits=65),
        dict(wrap_probability=0.0),
    ],
)
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        _mechanism(64, 10, **bad)


def test_encode_and_decode_check_shapes() -> None:
    mech = _mechanism(100, 5)
    with pytest.raises(ConfigurationError):
        mech.encode(np.zeros(99), os.urandom(16))
    with pytest.raises(ConfigurationError):
        mech.decode(np.zeros(100, dtype=np.uint32), os.urandom(16))


def test_the_accountant_counts_the_colluders_the_protocol_tolerates() -> None:
    """DP review: colluders were floored for accounting but counted larger by the
    protocol; both now use graph_params.tolerated_colluders."""
    from secagg.dp.distributed import assumed_colluders
    from secagg.protocol import RoundConfig
    from secagg.protocol.graph_params import tolerated_colluders

    for n in (3, 5, 8, 19, 20, 40, 100, 333):
        for gamma in (0.0, 0.05, 0.1):
            assumed = assumed_colluders(n, gamma)
            assert assumed == tolerated_colluders(n, gamma), (n, gamma)  # what it is sized for
            # and the round's parameters really tolerate that many
            assert RoundConfig.create(n, 4, corrupt_fraction=gamma).tolerated_colluders >= assumed
