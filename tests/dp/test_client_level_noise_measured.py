"""The client-level mechanisms the simulator builds carry the noise their accountants count.

Why: docs/results.md's client-level rows score the distributed discrete Gaussian (z 6.798)
well above central noise (z 4.397) on the same seeds, which would follow if the
distributed sum carried less noise than its accountant assumes (every epsilon it prints
would then be wrong). Measured through the same calls a round makes (the client's clip,
the noise share's encoding, the modular sum, the server's decoding and release), the
distributed sum carries the full ``z * clip`` of all its shares, more than central noise,
and both treat the signal alike (clip to ``dp.clip``, divide by the expected cohort), so
the ordering is not the mechanism's (investigation of 2026-12-07, worktree 290). These
tests keep it that way: a share sized for more clients than the round, a scale dropped
from the decoding, or a denominator that differs between the two would fail them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.federation_plan import federation_config, honest_shares
from secagg.crypto.stream import KeyedStream
from secagg.dp.release import CentralRelease, DistributedRelease, Mechanism

#: the simulator's head (the MLP's output layer: 32 weights and a bias)
HEAD = 33
BRANCHES = 8
#: released rounds measured: 40 x 33 coordinates put the sample std within about 2 % of
#: the true one; the bounds below are 10 % (the draws are keyed, so the test replays)
ROUNDS = 40
SEED = b"noise-measured.."


def _federation(mechanism: str, tmp_path: Path):
    config = SimulationConfig(unit="client", mechanism=mechanism)
    fed = federation_config(config, HEAD, tmp_path / f"{mechanism}.sqlite")
    return config, fed


def _released(mech: Mechanism, updates: np.ndarray, round_number: int) -> np.ndarray:
    """One round's released mean of ``updates`` (one row per branch), as the runtime
    computes it: each branch clips (the client's :meth:`Mechanism.prepare`); central:
    the exact sum is noised by the server; distributed: each branch's noise share is
    encoded to ring words from its own keyed stream, the words are summed modulo the
    ring, decoded and released."""
    clipped = np.array([Mechanism(mech.clip).prepare(u) for u in updates])
    count = len(clipped)
    if isinstance(mech, CentralRelease):
        total = clipped.sum(axis=0)
    else:
        assert isinstance(mech, DistributedRelease)
        share = mech.round_options(count)["noise_share"]
        ddg = share.mechanism
        words = np.zeros(ddg.padded, dtype=np.uint64)
        for branch, update in enumerate(clipped):
            stream = KeyedStream(bytes([round_number, branch]) * 8)
            words += ddg.encode(update, share.rotation_seed, stream).astype(np.uint64)
        words &= np.uint64((1 << (8 * np.dtype(ddg.word_dtype).itemsize)) - 1)
        total = ddg.decode(words.astype(ddg.word_dtype), share.rotation_seed)
    release = mech.release(total, contributors=count, participants=count, noise_added=0.0)
    return release.mean


def _noise_std_of_sum(fed) -> float:
    """The std of the noise in the released sum, per coordinate, in the updates' units."""
    mech = fed.mechanism(seed=SEED)
    zeros = np.zeros((BRANCHES, HEAD))
    means = np.array([_released(mech, zeros, r) for r in range(ROUNDS)])
    return float(means.std() * fed.expected_clients)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[float, object]]:
    tmp = tmp_path_factory.mktemp("fed")
    out = {}
    for name in ("central", "distributed"):
        config, fed = _federation(name, tmp)
        out[name] = (_noise_std_of_sum(fed), fed, config)
    return out


def test_central_sum_carries_z_times_the_clip(measured) -> None:
    std, fed, _ = measured["central"]
    claimed = fed.dp.noise_multiplier * fed.dp.clip
    assert claimed == pytest.approx(4.3975, abs=1e-3)  # the simulator's default plan
    assert std == pytest.approx(claimed, rel=0.10)


def test_distributed_sum_carries_every_share_and_at_least_the_honest_ones(measured) -> None:
    """All 8 shares: ``z * clip`` (each share ``z * clip / sqrt(8)``). The accountant
    counts only the honest ones (4 of 8 here), whose part is ``z * clip * sqrt(4 / 8)``;
    the sum must carry at least that, and more than the central sum does."""
    std, fed, config = measured["distributed"]
    z, clip = fed.dp.noise_multiplier, fed.dp.clip
    assert z == pytest.approx(6.7985, abs=1e-3)
    assert std == pytest.approx(z * clip, rel=0.10)
    counted = z * clip * np.sqrt(honest_shares(config) / BRANCHES)
    assert honest_shares(config) == 4
    assert std > 1.2 * counted
    assert std > 1.3 * measured["central"][0]


@pytest.mark.parametrize("mechanism", ["central", "distributed"])
def test_the_signal_is_clipped_to_the_clip_and_divided_by_the_expected_cohort(
    mechanism: str, tmp_path: Path
) -> None:
    """The same keyed draws with and without updates: the difference is the signal the
    release carries, the same for both mechanisms (each update clipped to ``dp.clip``,
    the sum divided by the expected cohort), within the ring's rounding."""
    _, fed = _federation(mechanism, tmp_path)
    updates = np.zeros((BRANCHES, HEAD))
    updates[:, 0] = 3.0  # three times the clip: clipped to 1 each
    updates[BRANCHES // 2 :, 0] = 0.4  # under the clip: kept
    with_signal = _released(fed.mechanism(seed=SEED), updates, 0)
    noise_only = _released(fed.mechanism(seed=SEED), np.zeros_like(updates), 0)
    expected = np.zeros(HEAD)
    expected[0] = (BRANCHES // 2 * 1.0 + BRANCHES // 2 * 0.4) / fed.expected_clients
    np.testing.assert_allclose(with_signal - noise_only, expected, atol=1e-6)
