"""A one-sided lower bound on epsilon from a canary membership test, with its assumptions.

Why this module exists
----------------------
The earlier "95 % lower bound" of ``secagg audit empirical`` was a normal-approximation
interval on a fitted Gaussian parameter. It exceeded the exact epsilon in 14 % of runs
at 10 canaries and 18 % at 4 (DP review, M4). An auditor needs a bound that is wrong
at most 5 % of the time, whatever the number of canaries: this is it.

Method (Jagielski, Ullman, Oprea, NeurIPS 2020; Nasr, Song, Thakurta, Papernot,
Carlini, IEEE S&P 2021): a membership test "was canary c in the run?" with false-
positive rate FPR and true-positive rate TPR constrains any (epsilon, delta)-DP
mechanism (for neighbours that differ in c, in both directions) by::

    TPR     <= e^eps FPR     + delta   ->  eps >= log((TPR - delta) / FPR)
    1 - FPR <= e^eps (1-TPR) + delta   ->  eps >= log((1 - delta - FPR) / (1 - TPR))

We plug in a one-sided Clopper-Pearson lower confidence bound on TPR, and for FPR
its *exact* value instead of an estimate (as Andrew et al., ICLR 2024, observe, the
null distribution is known):

* The score of a canary is ``cos(Delta, c)``, the cosine between the released
  model's change and the canary's direction. A canary's direction ``c`` is drawn
  uniformly on the unit sphere of R^d, independently of everything else. Had
  ``c`` not been inserted, the release ``Delta`` would be independent of ``c``,
  so ``cos(Delta, c)`` would have the distribution of one coordinate of a uniform
  unit vector: ``(1 + cos) / 2 ~ Beta((d-1)/2, (d-1)/2)``. The FPR of the
  threshold test ``cos > tau`` is that distribution's tail, exactly
  (:func:`cosine_null_sf`). The held-out canaries are only a check of this.
* The TPR is estimated from the ``k`` inserted canaries: ``hits`` of them
  score above the threshold; Clopper-Pearson gives ``TPR_lower``.
* The threshold is not fitted to the data (which would void the confidence):
  it is each of the fixed FPR values in :data:`FPR_GRID`, and the confidence
  ``1 - alpha`` is split over them (Bonferroni: ``alpha / len(FPR_GRID)`` each).
  The bound is the largest over the grid, and clipped at 0.

Assumptions (what the confidence rests on)
------------------------------------------
1. The directions are uniform and independent of the rest of the run (we draw
   them from the CSPRNG, or a keyed stream for replays). This makes FPR exact.
2. The ``k`` inserted canaries' hits are treated as independent Bernoulli trials
   with the same TPR. By exchangeability each hit has probability TPR, but in one
   run they share the model's noise and each other's cross-talk, so the count is
   not exactly binomial. With d much larger than 1 the dependence is weak; the
   coverage is checked by simulation (tests/apps/test_empirical_bound.py) on the
   exact Gaussian mechanism and on the one-run cosine statistic at 4, 10 and
   400 canaries. A bound free of this assumption (a one-run audit with random
   inclusion, Steinke, Nasr, Jagielski, NeurIPS 2023) is looser.
3. The bound is for the attacker this test models (the final model, a cosine
   score): it can only show that a run leaks *at least* so much, never that it
   is private. A lower bound above the accountant's epsilon contradicts the
   claim (missing or weakened noise); one below it is consistent, not a proof.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import beta as beta_distribution
from scipy.stats import norm

from secagg.errors import ConfigurationError

#: the fixed false-positive rates whose thresholds are tried (Bonferroni over them)
FPR_GRID: tuple[float, ...] = (
    0.5,
    0.2,
    0.1,
    *(10.0**-e for e in range(2, 13)),
)

METHOD = (
    "Clopper-Pearson lower bound on the canaries' TPR, exact null FPR of the cosine "
    "(Jagielski et al. 2020; Nasr et al. 2021), Bonferroni over {n} thresholds"
)


def gdp_epsilon(mu: float, delta: float) -> float:
    """The smallest epsilon at which ``mu``-GDP satisfies (epsilon, delta)-DP (Dong, Roth,
    Su 2022): the exact epsilon of T full-participation Gaussian rounds at noise z,
    ``mu = sqrt(T) / z``, which the coverage tests compare the bound with."""
    if not 0 < delta < 1:
        raise ConfigurationError("delta must lie in (0, 1)")
    if mu <= 0:
        return 0.0

    def excess(eps: float) -> float:  # delta(eps) - delta, decreasing in eps
        tail = norm.cdf(-eps / mu + mu / 2)
        log_second = eps + norm.logcdf(-eps / mu - mu / 2)
        return float(tail - math.exp(log_second) - delta)

    return _smallest_epsilon(excess)


def _smallest_epsilon(excess: Callable[[float], float]) -> float:
    """The smallest epsilon at which ``excess`` (delta(epsilon) - delta, decreasing in
    epsilon) is no longer positive, from above: 0 if it is not at 0, infinity past 10^4.

    Bisection, 100 halvings after doubling to a bracket; the answer is the bracket's upper
    end, so an estimate is never reported below the crossing it brackets. One search for
    both estimates (the mu-GDP and the two-Gaussian one), which each had a copy."""
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


def _interval_mass(mean: float, std: float, low: float, high: float) -> float:
    """P(low < X < high) for X ~ N(mean, std^2), from the nearer tail (no cancellation)."""
    a, b = (low - mean) / std, (high - mean) / std
    if a > 0:
        return float(norm.sf(a) - norm.sf(b))
    return float(norm.cdf(b) - norm.cdf(a))


def _gaussian_hockey_stick(p: tuple[float, float], q: tuple[float, float], epsilon: float) -> float:
    """The hockey-stick divergence ``int max(0, p(x) - e^eps q(x)) dx`` of two Gaussians
    (each ``(mean, std)``), in closed form: ``P(R) - e^eps Q(R)`` over the region ``R``
    where the log-likelihood ratio, a quadratic in x, exceeds epsilon (Andrew et al.,
    ICLR 2024, Appendix A.3)."""
    (mp, sp), (mq, sq) = p, q
    a = 1 / (2 * sq**2) - 1 / (2 * sp**2)
    b = mp / sp**2 - mq / sq**2
    c = mq**2 / (2 * sq**2) - mp**2 / (2 * sp**2) + math.log(sq / sp) - epsilon
    intervals: list[tuple[float, float]]
    if abs(a) <= 1e-12 * (1 / sp**2 + 1 / sq**2):  # equal spreads: a half-line
        if b == 0:
            intervals = [(-math.inf, math.inf)] if c > 0 else []
        else:
            root = -c / b
            intervals = [(root, math.inf)] if b > 0 else [(-math.inf, root)]
    else:
        disc = b * b - 4 * a * c
        if disc <= 0:
            intervals = [(-math.inf, math.inf)] if a > 0 else []
        else:
            r1, r2 = sorted(((-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)))
            intervals = [(-math.inf, r1), (r2, math.inf)] if a > 0 else [(r1, r2)]
    mass_p = sum(_interval_mass(mp, sp, lo, hi) for lo, hi in intervals)
    mass_q = sum(_interval_mass(mq, sq, lo, hi) for lo, hi in intervals)
    return max(0.0, mass_p - math.exp(epsilon) * mass_q)


def two_gaussian_epsilon(mean: float, std: float, dimension: int, delta: float) -> float:
    """Andrew et al.'s one-shot estimate (ICLR 2024): the smallest epsilon at which the
    null N(0, 1/d) of a cosine with a direction the release never saw and N(mean, std^2),
    fitted to the inserted canaries' cosines, are (epsilon, delta)-indistinguishable,
    both ways (the larger hockey-stick divergence is delta). Rounded up by the
    bisection; ``inf`` past 10^4. An estimate: it has no confidence and is no bound.

    Why not mu-GDP of the mean shift alone: that drops the inserted canaries' spread;
    the two agree only when it equals the null's (tests/apps/test_audit_empirical_estimate.py)."""
    if not 0 < delta < 1:
        raise ConfigurationError("delta must lie in (0, 1)")
    if dimension < 2 or not std > 0 or not math.isfinite(mean) or not math.isfinite(std):
        raise ConfigurationError("need a dimension >= 2 and a finite mean and positive spread")
    null = (0.0, 1 / math.sqrt(dimension))
    fitted = (mean, std)

    def excess(eps: float) -> float:  # decreasing in eps
        worst = max(
            _gaussian_hockey_stick(fitted, null, eps), _gaussian_hockey_stick(null, fitted, eps)
        )
        return worst - delta

    return _smallest_epsilon(excess)


def clopper_pearson_lower(hits: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound of a binomial proportion.

    Exact, so valid at any number of trials (a normal approximation is not at 4)."""
    if not 0 <= hits <= trials or trials < 1 or not 0 < alpha < 1:
        raise ConfigurationError("need 0 <= hits <= trials, trials >= 1, alpha in (0, 1)")
    if hits == 0:
        return 0.0
    return float(beta_distribution.ppf(alpha, hits, trials - hits + 1))


def cosine_null_sf(threshold: float, dimension: int) -> float:
    """P(cos(u, c) > threshold) for ``c`` uniform on the sphere of R^d and ``u`` fixed."""
    if dimension < 2:
        raise ConfigurationError("the cosine null needs a dimension of at least 2")
    half = (dimension - 1) / 2
    return float(beta_distribution.sf((1 + threshold) / 2, half, half))


def cosine_null_isf(fpr: float, dimension: int) -> float:
    """The cosine threshold whose exact false-positive rate is ``fpr``."""
    if dimension < 2:
        raise ConfigurationError("the cosine null needs a dimension of at least 2")
    half = (dimension - 1) / 2
    return float(2 * beta_distribution.isf(fpr, half, half) - 1)


def epsilon_from_rates(
    tpr: float | np.ndarray, fpr: float | np.ndarray, delta: float
) -> np.ndarray:
    """The smallest epsilon (>= 0) that (epsilon, delta)-DP allows for tests with these
    rates (elementwise): the larger of the two inequalities of the module docstring."""
    tpr, fpr = np.broadcast_arrays(np.asarray(tpr, np.float64), np.asarray(fpr, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where((tpr > delta) & (fpr > 0), np.log((tpr - delta) / fpr), 0.0)
        second = np.where(
            (1 - delta - fpr > 0) & (tpr < 1), np.log((1 - delta - fpr) / (1 - tpr)), 0.0
        )
    return np.maximum(0.0, np.maximum(first, second))


def bounds_from_hits(
    hits: np.ndarray, canaries: int, delta: float, confidence: float, grid: Sequence[float]
) -> np.ndarray:
    """Epsilon bound of each threshold (last axis: the grid) from its hit count.

    Vectorised over leading axes, so that a coverage simulation runs the very
    arithmetic an audit runs, for hundreds of runs at once."""
    hits = np.asarray(hits)
    alpha = (1 - confidence) / len(grid)
    # one-sided Clopper-Pearson: the alpha quantile of Beta(hits, k - hits + 1); 0 at 0 hits
    tpr_lower = np.where(
        hits > 0,
        beta_distribution.ppf(alpha, np.maximum(hits, 1), canaries - hits + 1),
        0.0,
    )
    return epsilon_from_rates(tpr_lower, np.asarray(grid, np.float64), delta)


@dataclass(frozen=True)
class LowerBound:
    """The bound and the threshold test that gave it."""

    epsilon: float
    confidence: float
    method: str
    threshold_fpr: float  # the chosen test's exact false-positive rate
    threshold: float  # its score threshold
    hits: int  # inserted canaries scoring above it
    canaries: int
    tpr_lower: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def epsilon_lower_bound(
    inserted: Sequence[float] | np.ndarray,
    null_isf: Callable[[float], float],
    delta: float,
    *,
    confidence: float = 0.95,
    grid: Sequence[float] = FPR_GRID,
) -> LowerBound:
    """A one-sided ``confidence`` lower bound on epsilon from the inserted canaries' scores.

    ``null_isf(p)`` is the threshold whose exact false-positive rate is ``p`` (a
    score of a canary that was not inserted exceeds it with probability ``p``):
    :func:`cosine_null_isf` for cosines, ``norm.isf`` for a standardised score.
    """
    scores = np.asarray(inserted, dtype=np.float64)
    if scores.ndim != 1 or scores.size < 1 or not np.all(np.isfinite(scores)):
        raise ConfigurationError("need at least one finite inserted score")
    if not 0 < delta < 1 or not 0 < confidence < 1 or not grid:
        raise ConfigurationError("need delta and confidence in (0, 1) and a threshold grid")
    thresholds = np.array([null_isf(fpr) for fpr in grid])
    hits = np.count_nonzero(scores[:, None] > thresholds[None, :], axis=0)
    bounds = bounds_from_hits(hits, scores.size, delta, confidence, grid)
    i = int(np.argmax(bounds))
    alpha = (1 - confidence) / len(grid)
    return LowerBound(
        epsilon=float(bounds[i]),
        confidence=confidence,
        method=METHOD.format(n=len(grid)),
        threshold_fpr=float(grid[i]),
        threshold=float(thresholds[i]),
        hits=int(hits[i]),
        canaries=int(scores.size),
        tpr_lower=clopper_pearson_lower(int(hits[i]), scores.size, alpha),
    )
