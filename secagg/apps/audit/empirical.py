"""``secagg audit empirical``: a one-shot empirical lower estimate of epsilon with canary clients.

Following Andrew, Kairouz, Oh, Oprea, McMahan, Suriyakumar, "One-shot Empirical
Privacy Estimation for Federated Learning" (ICLR 2024):

1. Draw ``2k`` random unit directions in parameter space (from the CSPRNG or a
   keyed stream). ``k`` become *canary clients*: in every round in which they
   are sampled, like any client, they send their direction scaled to the clip
   norm. The other ``k`` are held out and never sent.
2. Train one federation, DP-FedAvg with central Gaussian noise, with the real
   branches and the canaries together.
3. Take the final model's change from the start, ``Delta``. For each direction,
   the cosine ``cos(Delta, c)``. Held-out cosines follow the null
   distribution (about N(0, 1/d)); inserted cosines are shifted by how much
   the release remembers each canary.
4. Fit a Gaussian to each set. Equal-variance Gaussians ``N(0, s^2)`` and
   ``N(m, s^2)`` are exactly ``mu``-GDP with ``mu = m / s``; convert to
   ``(epsilon, delta)`` (Dong, Roth, Su 2022): ``delta(eps) = Phi(-eps/mu + mu/2)
   - e^eps Phi(-eps/mu - mu/2)``.

This is an *estimate*, not a proof: it can only show that a run leaks at least
about so much, for an attacker who sees the final model. We report the point
estimate and a lower bound at one-sided 95 % confidence (normal approximation
of the difference of the two means: ``m - 1.645 * sqrt(s_in^2/k + s_out^2/k)``),
beside the accountant's upper bound for the same run. Without noise the
estimate is large; with strong noise it falls below the accountant's bound.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from secagg.crypto.stream import KeyedStream
from secagg.dp.accounting import epsilon as accountant_epsilon
from secagg.dp.clipping import clip_l2
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError

CONFIDENCE_Z = 1.6448536269514722  # one-sided 95 %


def gdp_epsilon(mu: float, delta: float) -> float:
    """The smallest epsilon at which ``mu``-GDP satisfies (epsilon, delta)-DP."""
    if not 0 < delta < 1:
        raise ConfigurationError("delta must lie in (0, 1)")
    if mu <= 0:
        return 0.0

    def excess(eps: float) -> float:  # delta(eps) - delta, decreasing in eps
        tail = norm.cdf(-eps / mu + mu / 2)
        log_second = eps + norm.logcdf(-eps / mu - mu / 2)
        return tail - math.exp(log_second) - delta

    if excess(0.0) <= 0:
        return 0.0
    low, high = 0.0, 1.0
    while excess(high) > 0:
        high *= 2
        if high > 1e4:
            return math.inf
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if excess(mid) > 0 else (low, mid)
    return high


@dataclass(frozen=True)
class EmpiricalEstimate:
    epsilon_estimate: float
    epsilon_lower_95: float
    epsilon_accountant: float
    mu_estimate: float
    mu_lower_95: float
    delta: float
    canaries: int
    dimension: int
    rounds: int
    noise_multiplier: float
    inserted_cosine_mean: float
    held_out_cosine_mean: float
    held_out_cosine_std: float
    confidence: str = "one-sided 95 %, normal approximation of the mean difference"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def estimate_from_cosines(
    inserted: np.ndarray, held_out: np.ndarray, delta: float
) -> tuple[float, float, float, float]:
    """(mu, mu_lower_95, eps, eps_lower_95) from the two sets of cosines."""
    inserted, held_out = np.asarray(inserted, float), np.asarray(held_out, float)
    if inserted.size < 2 or held_out.size < 2:
        raise ConfigurationError("need at least 2 inserted and 2 held-out canaries")
    spread = float(np.std(held_out, ddof=1))
    if spread == 0:
        raise ConfigurationError("held-out cosines have no spread")
    difference = float(inserted.mean() - held_out.mean())
    error = math.sqrt(np.var(inserted, ddof=1) / inserted.size + spread**2 / held_out.size)
    mu = difference / spread
    mu_low = max(0.0, (difference - CONFIDENCE_Z * error) / spread)
    return mu, mu_low, gdp_epsilon(mu, delta), gdp_epsilon(mu_low, delta)


def _unit_directions(count: int, dimension: int, stream: KeyedStream) -> np.ndarray:
    directions = gaussian(1.0, count * dimension, stream).reshape(count, dimension)
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def run_canary_audit(
    *,
    noise_multiplier: float,
    rounds: int = 10,
    canaries: int = 400,
    branches: int = 8,
    clip: float = 1.0,
    delta: float = 1e-5,
    seed: int | None = 0,
    train_rows: int = 8_000,
    server_learning_rate: float = 1.0,
    progress: bool = False,
) -> EmpiricalEstimate:
    """One DP-FedAvg run of the fraud MLP over synthetic branches, with canaries inserted.

    Every client (branch or canary) takes part in every round (q = 1), the
    update of each is clipped to ``clip`` and the server adds N(0, (z C)^2)
    to the sum, as the runtime's central mechanism does. The aggregation is an
    exact sum in every backend, so it is computed directly here.
    """
    if noise_multiplier < 0 or rounds < 1 or canaries < 2 or clip <= 0:
        raise ConfigurationError("need noise >= 0, rounds >= 1, canaries >= 2, clip > 0")
    import torch

    from secagg.apps.simulation.config import SimulationConfig
    from secagg.apps.simulation.runner import BranchTrainer, load_branches

    config = SimulationConfig(
        branches=branches,
        rounds=rounds,
        seed=seed or 0,
        model="mlp",
        mechanism="off",
        train_rows=train_rows,
        test_rows_per_branch=100,
        local_epochs=1,
        dropout=0.0,
        update_clip=clip,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_branches(config)
        trainers = [BranchTrainer(config, b, "audit") for b in data]
        hooks = [t.update_hook() for t in trainers]
        model = trainers[0].flat().astype(np.float64)
        start = model.copy()
        d = model.size
        key = None if seed is None else hashlib.sha256(f"audit/{seed}".encode()).digest()[:16]
        stream = KeyedStream(key)
        directions = _unit_directions(2 * canaries, d, stream)
        inserted = directions[:canaries]
        clients = branches + canaries
        canary_sum = inserted.sum(axis=0) * clip  # each canary's clipped update, every round
        for t in range(rounds):
            total = canary_sum.copy()
            for hook in hooks:
                total += clip_l2(hook(model), clip).vector
            total += gaussian(noise_multiplier * clip, d, stream)
            model = model + server_learning_rate * total / clients
            if progress:
                print(f"round {t + 1}/{rounds}", flush=True)
    finally:
        torch.set_num_threads(threads)
    change = model - start
    cosines = directions @ change / np.linalg.norm(change)
    cos_in, cos_out = cosines[:canaries], cosines[canaries:]
    mu, mu_low, eps, eps_low = estimate_from_cosines(cos_in, cos_out, delta)
    bound = (
        math.inf
        if noise_multiplier == 0
        else accountant_epsilon(noise_multiplier, 1.0, rounds, delta)
    )
    return EmpiricalEstimate(
        epsilon_estimate=eps,
        epsilon_lower_95=eps_low,
        epsilon_accountant=bound,
        mu_estimate=mu,
        mu_lower_95=mu_low,
        delta=delta,
        canaries=canaries,
        dimension=d,
        rounds=rounds,
        noise_multiplier=noise_multiplier,
        inserted_cosine_mean=float(cos_in.mean()),
        held_out_cosine_mean=float(cos_out.mean()),
        held_out_cosine_std=float(cos_out.std(ddof=1)),
    )
