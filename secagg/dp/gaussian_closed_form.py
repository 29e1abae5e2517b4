"""The Gaussian mechanism's epsilon in closed form, and a subsampled bound from it.

What lives here
    :func:`gaussian_epsilon`: the exact epsilon of one Gaussian mechanism (Balle and
    Wang, ICML 2018, Theorem 8), which is also that of any number of rounds at
    ``q == 1`` (Gaussians compose to one Gaussian of the summed precision), solved for
    epsilon in microseconds and rounded up. :func:`subsampled_epsilon_bound`: a loose
    but microsecond upper bound for Poisson-sampled rounds (the exact Gaussian,
    amplified by subsampling, basic composition), tight where PLD and RDP struggle
    (a tiny ``q`` over few rounds).

Why a module of its own
    These need neither dp_accounting nor a PLD grid, only scipy: the running accountant's
    ``q == 1`` rounds, a plan's figure and the calibration's floor check all read them,
    and a PLD composition that reaches a closed-form part
    (:mod:`secagg.dp.pld_composition`) must not depend on the planning modules above it.
"""

from __future__ import annotations

import functools
import math
from typing import Final

import numpy as np
from scipy import optimize, special

from secagg.dp._checks import _count, _delta, _positive, _sample_rate

__all__ = ["gaussian_epsilon", "subsampled_epsilon_bound"]


def gaussian_epsilon(noise_multiplier: float, delta: float) -> float:
    """Exact epsilon at ``delta`` of one Gaussian mechanism (sensitivity 1, noise
    multiplier ``z``, add/remove adjacency): ``T`` rounds at ``z`` are
    ``gaussian_epsilon(z / sqrt(T), delta)``, rounds at ``z_1 .. z_T`` are
    ``gaussian_epsilon(sum(z_i ** -2) ** -0.5, delta)``.

    Balle and Wang (ICML 2018), Theorem 8: the mechanism is (eps, delta)-DP exactly
    when ``Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu) <= delta``, ``mu = 1/z``.
    That is solved for eps and rounded *up*, so the returned eps meets ``delta``. It
    is what PLD accounting approximates from above with its discretisation, without
    the cost that grows with the number of rounds.
    """
    return _gaussian_epsilon(_positive("noise_multiplier", noise_multiplier), _delta(delta))


def _gaussian_delta(mu: float, eps: float) -> float:
    """The tight delta of the Gaussian mechanism at ``eps`` (Balle and Wang, Theorem 8)."""
    upper = float(special.ndtr(mu / 2 - eps / mu))
    lower = math.exp(eps + float(special.log_ndtr(-mu / 2 - eps / mu)))
    return upper - lower


#: the relative error allowed for each of :func:`_gaussian_delta`'s two terms, per unit of
#: ``a^2 + b^2 + |eps| + 16`` (their arguments ``a = mu/2 - eps/mu``, ``b = a - mu``), in
#: units of 2^-53. Why that form: a term ``Phi(x)`` in the lower tail loses about ``x^2``
#: ulps (the rounding of ``x`` times ``d log Phi / dx``, about ``|x|``, and scipy's own
#: ``exp(-x^2 / 2)``), and ``exp(eps + log Phi(b))`` the ulps of its argument; measured:
#: 3e-13 relative at ``a = -36.5`` (about 2.7e3 ulps), where this allows 4.7e-12
_TERM_ERROR_ULPS = 16


def _gaussian_delta_above(mu: float, eps: float) -> float:
    """An upper bound on the true :func:`_gaussian_delta`: its first term taken at the top
    of its float error and the second at the bottom (:data:`_TERM_ERROR_ULPS`).

    Why: the two terms nearly cancel where the noise is large (``mu`` small) and delta
    tiny: at z = 10^7, delta = 1e-300 each term is 3.7e8 times delta, and their float
    error of 3e-13 was 1e-4 of delta, so an epsilon whose float delta met the target
    had a true delta above it (1271 of 3000 random points with z in [0.1, 10^4] and
    delta in [1e-300, 0.1]; tests/dp/test_gaussian_epsilon_cancellation.py): the
    epsilon "rounded up" lay below the exact one (by up to 7.6e-8 relative)."""
    a = mu / 2 - eps / mu
    b = -mu / 2 - eps / mu
    slack = _TERM_ERROR_ULPS * 2.0**-53 * (a * a + b * b + abs(eps) + 16)
    upper = float(special.ndtr(a)) * (1 + slack)
    lower = math.exp(eps + float(special.log_ndtr(b))) * (1 - slack)
    return upper - lower


@functools.lru_cache(maxsize=4096)  # pure: the server asks once per round, the plan many times
def _gaussian_epsilon(z: float, delta: float) -> float:
    """:func:`gaussian_epsilon` without the checks: the least epsilon (up to float
    steps) at which even :func:`_gaussian_delta_above`, a bound on the exact delta that
    covers the floats' error, meets ``delta``, or :func:`_tail_epsilon` where that is
    less (so little noise that the floats' error bound is wide) or where the floats
    cannot solve at all. Both are upper bounds on the exact epsilon.

    ``+inf`` where ``mu^2`` overflows (``z`` below about 7.5e-155, or 0: a composition
    whose precision overflowed): the exact epsilon, about ``mu^2 / 2``, lies beyond the
    largest float, and inf is its only upward rounding. Why: brentq was handed an
    infinite bracket there and raised its own ValueError ("The function value at x=inf
    is NaN; solver cannot continue") out of :func:`gaussian_epsilon`, the plan and the
    running accountant (tests/dp/test_gaussian_epsilon_no_noise.py)."""
    mu = 1.0 / z if z > 0 else math.inf
    if not math.isfinite(mu * mu):
        return math.inf
    if mu > _SOLVED_MU_LIMIT:
        return _tail_epsilon(mu, delta)
    try:
        solved = _solved_epsilon(z, delta)
    except OverflowError:
        solved = math.inf
    return min(solved, _tail_epsilon(mu, delta))


#: above this ``mu = 1 / z`` only :func:`_tail_epsilon` answers. Why: Balle and Wang's
#: arguments ``mu / 2 - eps / mu`` cancel two terms of about ``mu / 2`` to leave a few
#: units, so they carry an absolute float error of about ``mu * 2^-53`` that
#: :func:`_gaussian_delta_above`'s slack does not count; at ``mu = 7.4e152`` (``z =
#: 1.3439e-153``, found by hypothesis) the "solved" epsilon came out below the privacy
#: loss's mean ``mu^2 / 2``, which the exact one never is at such a delta
#: (tests/dp/test_gaussian_epsilon_no_noise.py). At ``mu = 1e9`` that error is 1e-7 of
#: a unit, and the tail bound is within 1e-8 (relative) of the exact epsilon.
_SOLVED_MU_LIMIT: Final = 1e9


def _tail_epsilon(mu: float, delta: float) -> float:
    """An upper bound on the Gaussian's epsilon without cancelling terms: the privacy
    loss is ``N(mu^2 / 2, mu^2)`` and ``delta(eps) <= P[loss > eps]``, so
    ``eps = mu^2 / 2 + mu * Phi^-1(1 - delta)`` meets ``delta``; rounded up.

    Why: below about z = 1e-10 (z = 1e-6 over 10^9 rounds, z_eff = 3e-11) the solved
    epsilon is near 10^20, where the float error of ``eps + log Phi(b)`` alone exceeds
    ``exp``'s range: ``math.exp`` raised OverflowError ("math range error") out of
    :func:`epsilon` and ``DPConfig``, a traceback for a config with a mistyped noise
    multiplier (tests/dp/test_gaussian_epsilon_cancellation.py). Loose at ordinary
    noise (z = 1, delta = 1e-5: 4.77 against the exact 4.38), tight at such noise.

    At least 0: where ``delta`` exceeds ``Phi(mu / 2)`` the formula is negative (z = 1,
    delta = 0.7: -0.024; z = 100, delta = 0.6: -0.0025), and that figure came out of
    :func:`gaussian_epsilon`, the plan and the running accountant as the epsilon spent;
    0 meets such a delta (``delta(0) <= P[loss > 0] <= delta``), and no epsilon is below
    it (tests/dp/test_gaussian_epsilon_delta_edges.py)."""
    bound = mu * mu / 2 + mu * -float(special.ndtri(delta))
    return max(0.0, bound * (1 + 2.0**-50))


def _solved_epsilon(z: float, delta: float) -> float:
    """The epsilon of :func:`_gaussian_epsilon`, solved on Balle and Wang's delta."""
    mu = 1.0 / z
    if _gaussian_delta_above(mu, 0.0) <= delta:
        return 0.0
    high = mu * mu / 2 + mu * math.sqrt(2 * math.log(1.25 / delta)) + 1.0
    while _gaussian_delta(mu, high) > delta:
        high *= 2
    try:
        root = optimize.brentq(
            lambda eps: _gaussian_delta(mu, eps) - delta, 0.0, high, xtol=1e-14, rtol=1e-15
        )
    except ValueError:
        # no root the floats can bracket: a subnormal delta (1e-310), whose target the
        # floats' delta never reaches before the bracket overflows (delta at inf is NaN),
        # or one so small beside huge noise (z = 1e300, delta = 2.2e-308) that the
        # floats' delta is already below it at 0 where the bound on it is not; brentq's
        # ValueError escaped; :func:`_tail_epsilon` answers instead
        return math.inf
    # brentq lands within its tolerance on either side, and on the floats' delta, which
    # may lie below the exact one: step up until the bound on the exact delta holds
    eps, step = float(root), max(float(root), 1.0) * 1e-15
    below = -math.inf  # the last epsilon refused: the bound's crossing lies in (below, eps]
    while _gaussian_delta_above(mu, eps) > delta:
        below, eps, step = eps, eps + step, step * 2
    for _ in range(60 if below > -math.inf else 0):  # back from the doubling's overshoot
        middle = below + (eps - below) / 2
        if not below < middle < eps:
            break
        if _gaussian_delta_above(mu, middle) > delta:
            below = middle
        else:
            eps = middle
    return eps


def subsampled_epsilon_bound(
    noise_multiplier: float, sample_rate: float, rounds: int, delta: float
) -> float:
    """An upper bound on epsilon at ``delta`` of ``rounds`` Poisson-sampled Gaussian
    rounds that costs microseconds at any ``z``, ``q`` and ``T``.

    Each round: the exact Gaussian (:func:`gaussian_epsilon`) at ``delta_0``, then
    amplification by Poisson subsampling, ``(log(1 + q (e^eps_0 - 1)), q delta_0)``
    (Balle, Barthe and Gaboardi, NeurIPS 2018, add/remove adjacency), then basic
    composition over the rounds, with ``delta_0 = delta / (T q)`` (a ``delta_0`` of 1
    or more is met at ``eps_0 = 0``). Far looser than PLD or RDP over many rounds, but
    tight where they struggle: a tiny ``q`` over few rounds (``q`` below ``delta / T``
    gives 0). Why: RDP is loose there (q = 1e-9, z = 0.1, one round: RDP 27, this
    bound 0), so ``privacy noise`` could not tell up front that such a budget
    needs less noise than PLD can evaluate, and ran its PLD search for minutes."""
    z = _positive("noise_multiplier", noise_multiplier)
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    d = _delta(delta)
    if t == 0:
        return 0.0
    delta_0 = d / (t * q)
    if delta_0 >= 1.0:
        return 0.0  # every mechanism is (0, 1)-DP: the sampled one is (0, q) per round
    eps_0 = _gaussian_epsilon(z, delta_0)
    if q == 1.0:
        return t * eps_0
    # log(1 + q (e^eps_0 - 1)) = log((1 - q) + q e^eps_0), without overflow at a large eps_0
    return t * float(np.logaddexp(math.log1p(-q), math.log(q) + eps_0))
