"""The front door's epsilon is the epsilon of the noise it drew, by dp_accounting alone.

An auditor's re-check of :class:`~secagg.dp.release.CentralRelease`: rounds whose
cohorts are smaller or larger than planned, a client in some rounds and not others, a
restart that replays the stored rounds, and adaptive clipping. For each, (1) the noise
in the released mean is measured (a long vector: its sample std is within a few
percent of the std the round claims) and (2) the cumulative epsilon is recomputed from
dp_accounting's own Gaussian PLDs, optimistic (a lower bound of the truth) and
pessimistic (an upper bound), composed per client over the rounds it was in: the
release must lie between them (within float noise), never below the lower one.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

import numpy as np
import pytest
from dp_accounting.pld import privacy_loss_distribution

from secagg.dp.accounting import PLD_VALUE_DISCRETIZATION
from secagg.dp.config import DPSettings
from secagg.dp.release import CentralRelease, mechanism_for

DIMENSION = 40_000
EXPECTED = 4.0
DELTA = 1e-5
SEED = b"r" * 16


def _central(seed: bytes = SEED, **dp: object) -> CentralRelease:
    mechanism = mechanism_for(
        DPSettings(delta=DELTA, **dp),
        dimension=DIMENSION,
        bits=32,
        sample_rate=0.5,
        expected_clients=EXPECTED,
        corrupt_fraction=0.0,
        seed=seed,
    )
    assert isinstance(mechanism, CentralRelease)
    return mechanism


@functools.lru_cache(maxsize=64)
def _composed(
    multipliers: tuple[float, ...], *, pessimistic: bool
) -> privacy_loss_distribution.PrivacyLossDistribution:
    """dp_accounting's PLD of Gaussian mechanisms (sensitivity 1, the given multipliers)
    composed in order: the last one onto the cached PLD of those before it, and each
    single Gaussian built once. Why: building one Gaussian's PLD is most of this file's
    time, and the histories here repeat one z and extend one another round by round
    (the same PLDs composed in the same order as from scratch)."""
    *before, z = multipliers
    if not before:
        return privacy_loss_distribution.from_gaussian_mechanism(
            z,
            pessimistic_estimate=pessimistic,
            value_discretization_interval=PLD_VALUE_DISCRETIZATION,
            use_connect_dots=pessimistic,
        )
    return _composed(tuple(before), pessimistic=pessimistic).compose(
        _composed((z,), pessimistic=pessimistic)
    )


def _gaussians(multipliers: tuple[float, ...], *, pessimistic: bool) -> float:
    """Epsilon at DELTA of Gaussian mechanisms (sensitivity 1, the given multipliers)
    composed, from dp_accounting's PLD alone."""
    return _composed(multipliers, pessimistic=pessimistic).get_epsilon_for_delta(DELTA)


def _within_truth(claimed: float, per_client: dict[str, list[float]]) -> None:
    """``claimed`` is the most charged client's epsilon: at least every client's lower
    bound, and at most the largest upper bound (plus float noise)."""
    histories = {tuple(zs) for zs in per_client.values()}
    low = max(_gaussians(zs, pessimistic=False) for zs in histories)
    high = max(_gaussians(zs, pessimistic=True) for zs in histories)
    assert low * (1 - 1e-9) <= claimed <= high * (1 + 1e-6), (low, claimed, high)


def _noise_std(mean: np.ndarray, total: np.ndarray) -> float:
    """The sample std of the noise in a released mean of ``total``."""
    return float(np.std(mean * EXPECTED - total))


@pytest.mark.parametrize("cohorts", [[4, 4, 4], [2, 7, 1, 4], [9, 9]])
def test_central_rounds_of_any_size_charge_the_noise_they_drew(cohorts: list[int]) -> None:
    """Fewer or more participants than the expected 4: each round's noise is still
    z * C on the sum, and each client is charged only the rounds it was in."""
    z, clip = 0.9, 2.0
    mechanism = _central(clip=clip, noise_multiplier=z)
    per_client: dict[str, list[float]] = {}
    total = np.full(DIMENSION, 0.25)
    for size in cohorts:
        members = [f"branch-{i}" for i in range(size)]
        mechanism.begin_round(members)
        out = mechanism.release(total, contributors=size, participants=size, noise_added=0.0)
        assert _noise_std(out.mean, total) == pytest.approx(z * clip, rel=0.03)
        for name in members:
            per_client.setdefault(name, []).append(z)
        assert out.epsilon is not None
        _within_truth(out.epsilon, per_client)


def test_a_restart_replays_the_charges_the_rounds_ran_with() -> None:
    """Stored rounds restored into a fresh mechanism (another z configured since) are
    charged as they ran: the epsilon after one more round is that of all of them."""
    first = _central(clip=1.0, noise_multiplier=1.3)
    stored = []
    rounds = [["a", "b", "c"], ["a", "d"], ["a", "b", "c", "d", "e"]]
    for members in rounds:
        first.begin_round(members)
        out = first.release(np.zeros(DIMENSION), contributors=2, participants=2, noise_added=0.0)
        stored.append(out.store)
    restarted = _central(seed=b"t" * 16, clip=1.0, noise_multiplier=0.7)
    for store in stored:
        restarted.restore(store)
    restarted.begin_round(["a", "e"])
    out = restarted.release(np.zeros(DIMENSION), contributors=2, participants=2, noise_added=0.0)
    assert _noise_std(out.mean, np.zeros(DIMENSION)) == pytest.approx(0.7, rel=0.03)
    counts = Counter(name for members in rounds for name in members)
    per_client = {name: [1.3] * count for name, count in counts.items()}
    for name in ("a", "e"):
        per_client[name].append(0.7)
    assert out.epsilon is not None
    _within_truth(out.epsilon, per_client)


def test_an_adaptive_round_charges_the_update_and_the_count_it_noised() -> None:
    """The update sum noised at z_delta times the clip applied, the count at sigma_b:
    together, by dp_accounting, the epsilon of one Gaussian at the configured z."""
    z, clip, sigma_b = 1.0, 0.5, 2.0
    mechanism = _central(
        clip=clip, noise_multiplier=z, adaptive_clip=True, count_noise_stddev=sigma_b
    )
    adaptive = mechanism.adaptive
    assert adaptive is not None
    update = np.zeros(DIMENSION)
    total = np.append(update, 0.5 * 3)  # three clients, each under the clip
    mechanism.begin_round(["a", "b", "c"])
    out = mechanism.release(total, contributors=3, participants=3, noise_added=0.0)
    z_delta = adaptive.update_noise_multiplier
    assert _noise_std(out.mean, update) == pytest.approx(z_delta * clip, rel=0.03)
    assert out.store["clip_applied"] == clip
    # the two releases' PLDs composed (count: sensitivity 1/2, so multiplier 2 sigma_b)
    low = _gaussians((z_delta, 2 * sigma_b), pessimistic=False)
    high = _gaussians((z_delta, 2 * sigma_b), pessimistic=True)
    assert out.epsilon is not None
    assert low * (1 - 1e-9) <= out.epsilon <= high * (1 + 1e-6)
    assert math.isclose(out.epsilon, _gaussians((z,), pessimistic=True), rel_tol=1e-3)
