"""The distributed discrete Gaussian's privacy: its sensitivity after rounding and its RDP bound.

Kairouz, Liu and Steinke (ICML 2021): the sum of the clients' discrete Gaussian
shares is close to a discrete Gaussian, which the paper's ``tau`` term pays for;
:func:`ddg_epsilon` composes the rounds with Poisson sampling through a generic
subsampled-RDP bound and converts to (epsilon, delta); dp_accounting is needed only
for that conversion, on first use. :mod:`secagg.dp.accounting` re-exports these names.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from functools import cache, lru_cache

from secagg.dp._checks import _count, _delta, _positive, _sample_rate
from secagg.errors import ConfigurationError

#: Integer Renyi orders of the DDG analysis (those of the paper's code).
DDG_ORDERS: tuple[int, ...] = (*range(2, 129), 256)


def inflated_l2_bound(l2_clip: float, granularity: float, beta: float, dimension: int) -> float:
    """L2 norm bound of a clipped vector after (conditional) stochastic rounding.

    Rounding each coordinate to the grid ``granularity * Z`` can lengthen a
    vector of norm ``C``: by at most ``granularity * sqrt(d)`` always, and with
    conditional rounding (redraw until the norm is within the bound; each draw
    passes with probability >= 1 - beta) the bound of Kairouz et al. 2021 Thm 1
    ``sqrt(C^2 + g^2 d/4 + sqrt(2 ln(1/beta)) g (C + g sqrt(d)/2))`` when that is
    smaller. This, not ``C``, is the sensitivity the accountant must charge.
    Units are those of ``l2_clip`` (unscaled); multiply by the scale for the
    integer domain. ``beta == 0`` means unconditional rounding.
    """
    c = _positive("l2_clip", l2_clip)
    g = _positive("granularity", granularity)
    d = _count("dimension", dimension, 1)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
        raise ConfigurationError(
            f"beta must lie in [0, 1) (0 = unconditional rounding), not {beta!r}"
        )
    always = c + g * math.sqrt(d)
    if beta == 0:
        return always
    conditional = math.sqrt(
        c * c + g * g * d / 4 + math.sqrt(2 * math.log(1 / beta)) * g * (c + g * math.sqrt(d) / 2)
    )
    return min(always, conditional)


def poisson_subsampled_rdp_bound(
    order: int, sample_rate: float, rdp_of: Callable[[int], float]
) -> float:
    """Zhu & Wang (2019) general upper bound on the RDP of a Poisson-subsampled mechanism.

    Valid for any mechanism whose RDP at integer order ``l`` is ``rdp_of(l)``,
    which is why the DDG analysis uses it (there is no tight sampled-DDG
    formula). Computed in log space::

        (1/(a-1)) log[ (1-q)^(a-1) (a q - q + 1)
                       + C(a,2) q^2 (1-q)^(a-2) e^{eps(2)}
                       + 3 sum_{l=3}^{a} C(a,l) q^l (1-q)^(a-l) e^{(l-1) eps(l)} ]

    Looser than the exact sampled-Gaussian RDP (2.4503 vs 2.1078 at our
    reference point), so use it only where nothing tighter applies.
    """
    a = _count("order", order, 2)
    q = _sample_rate(sample_rate)
    if q == 1:
        return float(rdp_of(a))
    log_q, log_1q = math.log(q), math.log1p(-q)
    terms = [
        _log_no_sample_term(a - 1, q),
        _log_comb(a, 2) + 2 * log_q + (a - 2) * log_1q + rdp_of(2),
    ]
    log3 = math.log(3.0)
    for l in range(3, a + 1):  # noqa: E741 - the paper's symbol
        terms.append(log3 + _log_comb(a, l) + l * log_q + (a - l) * log_1q + (l - 1) * rdp_of(l))
    top = max(terms)
    if math.isinf(top):
        return top
    # log-sum-exp with the largest term's 1 kept apart (log1p of the rest): at a tiny q
    # the first term is about 1 - a^2 q^2 / 2 and the others add about a^2 q^2 e^eps(2)
    # / 2, below float64's resolution next to 1. Summed as one, they were lost, and
    # the bound came out as the first term alone: negative (q = 1e-9, order 8:
    # -1.6e-17 where the bound is +6.9e-18), which the RDP conversion reads as epsilon 0
    biggest = terms.index(top)
    rest = math.fsum(math.exp(t - top) for i, t in enumerate(terms) if i != biggest)
    return (top + math.log1p(rest)) / (a - 1)


def _log_no_sample_term(m: int, q: float) -> float:
    """``m log(1 - q) + log(1 + m q)``, the Zhu-Wang bound's first term, accurate at a
    tiny ``q``: its two parts are about -m q and +m q and leave about -m (m + 1) q^2 / 2,
    which their float64 sum gets only to about 1e-16 / (m q) relatively (3e-5 at
    q = 1e-12). Below m q = 1e-3 the series sum_k ((-1)^(k+1) m^k - m) q^k / k is used:
    six terms leave an error below 1e-18 of the first."""
    x = m * q
    if x >= 1e-3:
        return m * math.log1p(-q) + math.log1p(x)
    return math.fsum((((-1) ** (k + 1)) * m**k - m) * q**k / k for k in range(2, 9))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


#: an exponent past which ``math.exp(-x)`` is exactly 0.0 (it underflows beyond about
#: 745.13), with a margin that no rounding of ``x`` crosses
_EXP_UNDERFLOWS = 746.0


def _ddg_tau(local_stddev: float, noise_contributors: int) -> float:
    """KLS21's distance term between a sum of n discrete Gaussians and one discrete Gaussian.

    Only the terms that are not exactly 0.0 are summed: term ``k``'s exponent
    ``2 pi^2 sigma^2 k / (k + 1)`` grows with ``k``, past :data:`_EXP_UNDERFLOWS` from
    ``k >= 746 / (2 pi^2 sigma^2 - 746)`` on, so every later term is 0.0 and ``fsum``
    is the same float without them. Why: all ``n - 1`` terms were computed in Python,
    5.6 s per distinct share count at 10^7 clients, where at a local std of about 8.7
    or more every one is 0.0 (tests/dp/test_ddg_tau_early_exit.py). Below that std none
    underflows: past :data:`_TAU_TERMS_SUMMED` terms the tail is summed in closed form
    (:func:`_ddg_tau_tail`, rounded up by a part in 10^14), as a plan of 2 * 10^8 clients
    spent a minute here (tests/dp/test_plan_at_scale.py)."""
    two_pi2_s2 = 2 * math.pi**2 * local_stddev**2
    end = noise_contributors
    if two_pi2_s2 > _EXP_UNDERFLOWS:
        # the first k whose exponent is surely past the cut, +1 for the division's rounding
        end = min(end, math.floor(_EXP_UNDERFLOWS / (two_pi2_s2 - _EXP_UNDERFLOWS)) + 2)
    # past a million terms: the first ones as below, the rest in closed form
    head = max(_TAU_HEAD_TERMS, math.ceil(_TAU_TAIL_RATIO * two_pi2_s2))
    if end - 1 <= _TAU_TERMS_SUMMED or head >= end:
        return 10 * math.fsum(math.exp(-two_pi2_s2 * k / (k + 1)) for k in range(1, end))
    terms = [math.exp(-two_pi2_s2 * k / (k + 1)) for k in range(1, head)]
    terms.append(_ddg_tau_tail(two_pi2_s2, head, end))
    return 10 * math.fsum(terms)


#: the most terms :func:`_ddg_tau` sums one by one (about 0.3 s in Python); past it the
#: terms from :data:`_TAU_HEAD_TERMS` on are summed in closed form (:func:`_ddg_tau_tail`)
_TAU_TERMS_SUMMED = 2**20
#: the fewest terms summed one by one before the closed-form tail, and how far past the
#: exponent's scale ``c = 2 pi^2 sigma^2`` the tail starts (``c / j <= 1 / 100`` in it,
#: where the series below converges fast)
_TAU_HEAD_TERMS = 1000
_TAU_TAIL_RATIO = 100
#: the powers of ``c / j`` the tail's series sums (the rest is bounded and added)
_TAU_SERIES_ORDERS = 10
#: the tail's relative margin: its float error is a few units in 10^16 (the digamma and
#: Hurwitz zeta differences, one exp and products), so this rounds it up, never down
_TAU_TAIL_MARGIN = 1e-14


def _ddg_tau_tail(c: float, head: int, end: int) -> float:
    """``sum_{k=head}^{end-1} exp(-c k / (k + 1))``, rounded up, in closed form.

    Why: ``tau`` sums ``n - 1`` terms, and at a local std below about 6 none underflows:
    at 2 * 10^8 clients that was 60 s of Python per share count, and a plan evaluates two
    counts for every noise multiplier it tries. With ``j = k + 1`` a term is
    ``exp(-c) exp(c / j)``, and ``exp(c / j) = sum_m (c / j)^m / m!``, so the tail is
    ``exp(-c)`` times ``(end - head) + sum_{m >= 1} c^m / m! Z_m`` with ``Z_1`` a
    difference of digammas and ``Z_m`` one of Hurwitz zetas (the sums of ``j^-m`` over
    ``head < j <= end``). ``c / j <= 1 / 100`` there (the caller's ``head``), so ten
    orders leave a remainder below ``(c / j)^11 / 11!`` of each term, which is added as a
    bound: the tail is never below the terms it stands for."""
    from scipy.special import digamma, zeta

    count = end - head  # the terms k = head .. end - 1, i.e. j = head + 1 .. end
    series = math.fsum(
        c**m
        / math.factorial(m)
        * (
            float(digamma(end + 1) - digamma(head + 1))
            if m == 1
            else float(zeta(m, head + 1) - zeta(m, end + 1))
        )
        for m in range(1, _TAU_SERIES_ORDERS + 1)
    )
    ratio = c / (head + 1)  # the largest c / j of the tail
    orders = _TAU_SERIES_ORDERS + 1
    remainder = count * ratio**orders / math.factorial(orders) * math.exp(ratio)
    total = count + series + remainder
    # exp(-c) is a normal float below c = 708: one rounding; past it the tail is below
    # 10^-290 and only its exponent matters
    scaled = total * math.exp(-c) if c < 700 else math.exp(math.log(total) - c)
    return scaled * (1 + _TAU_TAIL_MARGIN)


def ddg_epsilon(
    *,
    l2_sensitivity: float,
    l1_sensitivity: float | None,
    local_stddev: float,
    noise_contributors: int | Iterable[int],
    dimension: int,
    sample_rate: float,
    rounds: int,
    delta: float,
) -> float:
    """Epsilon of the distributed discrete Gaussian over ``rounds`` Poisson-sampled rounds.

    ``noise_contributors`` is one count (every round's), or the counts the rounds had:
    every round is then charged, order by order, the largest per-round RDP of those
    counts, an upper bound on each round's own. Why not the fewest count's: the bound
    is not monotone in the count. Its ``tau`` term (the sum of ``n`` discrete Gaussians
    is only close to one) grows with ``n``, by at least ``10 exp(-2 pi^2 sigma^2)`` a
    share, so at a local std of 1 (in integer units) and a large ``d`` more honest
    shares can cost more: 50 000 expected clients, 14 bits, d = 2^14, z = 1 give
    epsilon 1.9761 with 45 000 honest shares, 1.9770 with 50 000 and 2.0110 with
    60 000 (one round). Where the fewest count's curve is the largest at every order
    (a local std of 2 or more makes ``tau`` vanish) this is that curve, float for float.

    All quantities live in the *scaled integer domain*: ``l2_sensitivity`` is the
    inflated L2 bound times the scale (:func:`inflated_l2_bound`),
    ``local_stddev`` one client's discrete Gaussian std in integer units, and
    ``l1_sensitivity`` the integer vector's L1 bound; ``None`` uses
    ``l2 * min(sqrt(d), l2)`` (Cauchy-Schwarz, and ``L1 <= L2^2`` for integer
    vectors).

    ``noise_contributors`` must be the number of clients whose noise share is
    really in the sum *and unknown to the server*: the round's survivors minus
    the clients assumed to collude with the server. A dropout takes its share
    with it and a colluder's share can be subtracted, and fewer shares mean
    less noise; passing the planned cohort size would overstate privacy.

    Per round (Kairouz, Liu, Steinke 2021; ``l_i = Delta_i / (sqrt(n) sigma)``,
    ``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k/(k+1))``)::

        eps(a) = min( a/2 l2^2 + tau d,
                      a/2 (l2^2 + 2 l1 tau + tau^2 d),
                      a/2 (l2 + sqrt(d) tau)^2 )

    then amplified by :func:`poisson_subsampled_rdp_bound` at :data:`DDG_ORDERS`
    (keeping the unsampled value where that is smaller), times ``rounds``, and
    converted with dp_accounting's RDP-to-(epsilon, delta) bound.
    """
    l2 = _positive("l2_sensitivity", l2_sensitivity)
    sigma = _positive("local_stddev", local_stddev)
    counts = _share_counts(noise_contributors)
    d = _count("dimension", dimension, 1)
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    delta = _delta(delta)
    if l1_sensitivity is None:
        l1 = l2 * min(math.sqrt(d), l2)
    else:
        l1 = _positive("l1_sensitivity", l1_sensitivity)
    if l1 < l2 * (1 - 1e-12):
        raise ConfigurationError(
            f"l1_sensitivity {l1:g} is below l2_sensitivity {l2:g}; no vector has that"
        )
    if t == 0:
        return 0.0

    curves = [_ddg_round_rdp(l2, l1, sigma, n, d, q) for n in counts]
    worst = curves[0] if len(curves) == 1 else tuple(map(max, zip(*curves, strict=True)))
    return rdp_epsilon([t * value for value in worst], delta)


def ddg_round_rdp(
    *,
    l2_sensitivity: float,
    l1_sensitivity: float | None,
    local_stddev: float,
    noise_contributors: int,
    dimension: int,
) -> tuple[float, ...]:
    """One unsampled round's RDP at :data:`DDG_ORDERS`: what :func:`ddg_epsilon` charges
    a round at sample rate 1, as a curve a caller can add to others.

    Why: :func:`ddg_epsilon` composes rounds of one mechanism. A branch that keeps its
    own budget (:mod:`secagg.runtime.branch_budget`) composes rounds whose parameters
    the server chose, each its own; RDP curves add across any rounds, so it keeps
    their sum and converts it with :func:`rdp_epsilon`. Arguments as
    :func:`ddg_epsilon`'s (scaled integer domain)."""
    l2 = _positive("l2_sensitivity", l2_sensitivity)
    sigma = _positive("local_stddev", local_stddev)
    count = _count("noise_contributors", noise_contributors, 1)
    d = _count("dimension", dimension, 1)
    l1 = (
        l2 * min(math.sqrt(d), l2)
        if l1_sensitivity is None
        else _positive("l1_sensitivity", l1_sensitivity)
    )
    if l1 < l2 * (1 - 1e-12):
        raise ConfigurationError(
            f"l1_sensitivity {l1:g} is below l2_sensitivity {l2:g}; no vector has that"
        )
    return _ddg_round_rdp(l2, l1, sigma, count, d, 1.0)


def ddg_epsilon_within(
    *,
    l2_sensitivity: float,
    l1_sensitivity: float | None,
    local_stddev: float,
    fewest: int,
    most: int,
    dimension: int,
    sample_rate: float,
    rounds: int,
    delta: float,
) -> float:
    """An upper bound on :func:`ddg_epsilon` of ``rounds`` rounds whose honest share
    counts are any within ``[fewest, most]``: what a plan can promise before it knows
    how many shares each round keeps. Equal to it when ``fewest == most``.

    Why not :func:`ddg_epsilon` of every count in the range: each count's ``tau``
    costs a sum over the count, so 10 % of 100 000 clients cost 10^9 terms at a
    server's start. Each per-round term increases in the sensitivity over the sum's
    std, largest at the fewest shares, and in ``tau``, largest at the most; both
    taken at once bound every count's curve from above, order by order, and cost two
    counts. Where ``tau`` vanishes (a local std of 2 or more in integer units) this is
    the fewest count's figure. Arguments as :func:`ddg_epsilon`'s."""
    low = _count("fewest", fewest, 1)
    high = _count("most", most, low)
    # validates every argument, and is the answer when the range holds one count
    least = ddg_epsilon(
        l2_sensitivity=l2_sensitivity,
        l1_sensitivity=l1_sensitivity,
        local_stddev=local_stddev,
        noise_contributors=low,
        dimension=dimension,
        sample_rate=sample_rate,
        rounds=rounds,
        delta=delta,
    )
    if low == high or rounds == 0:
        return least
    l2, sigma, d = float(l2_sensitivity), float(local_stddev), int(dimension)
    l1 = l2 * min(math.sqrt(d), l2) if l1_sensitivity is None else float(l1_sensitivity)
    scale = math.sqrt(low) * sigma
    curve = _ddg_curve(l2 / scale, l1 / scale, _ddg_tau(sigma, high), d, float(sample_rate))
    return rdp_epsilon([int(rounds) * value for value in curve], delta)


def rdp_epsilon(rdp_values: Iterable[float], delta: float) -> float:
    """Epsilon at ``delta`` of an RDP curve at :data:`DDG_ORDERS` (dp_accounting's
    conversion, the one :func:`ddg_epsilon` uses); 0 for the curve of no round."""
    values = [float(value) for value in rdp_values]
    if len(values) != len(DDG_ORDERS):
        raise ConfigurationError(
            f"an RDP curve at the DDG orders has {len(DDG_ORDERS)} values, not {len(values)}"
        )
    if any(not value >= 0 for value in values):  # also NaN
        raise ConfigurationError("an RDP curve's values must be numbers >= 0")
    delta = _delta(delta)
    if not any(values):
        return 0.0
    from dp_accounting import rdp  # the RDP-to-(epsilon, delta) conversion, on first use

    eps, _ = rdp.rdp_privacy_accountant.compute_epsilon(list(DDG_ORDERS), values, delta)
    return float(eps)


def _share_counts(noise_contributors: object) -> list[int]:
    """The distinct honest share counts of :func:`ddg_epsilon`, each an integer >= 1,
    ascending; a ConfigurationError naming the value otherwise."""
    given = (
        [noise_contributors]
        if isinstance(noise_contributors, numbers.Integral)
        or not isinstance(noise_contributors, Iterable)
        else list(noise_contributors)
    )
    if not given:
        raise ConfigurationError("noise_contributors must name at least one round's count")
    for count in given:
        if isinstance(count, bool) or not isinstance(count, numbers.Integral):
            raise ConfigurationError(f"noise_contributors must be an integer >= 1, not {count!r}")
        if count < 1:
            raise ConfigurationError(
                "noise_contributors must be at least 1: with no honest noise share in the sum "
                "the release is not private at all"
            )
    return sorted({int(count) for count in given})


@lru_cache(maxsize=256)
def _ddg_round_rdp(
    l2: float, l1: float, sigma: float, n: int, d: int, q: float
) -> tuple[float, ...]:
    """One round's RDP at :data:`DDG_ORDERS`, amplified by sampling where that helps.

    Cached: a federation's rounds share these numbers (only the count of honest
    shares moves), so the server's per-round epsilon and the audit's per-row replay
    cost one multiplication per order and the conversion, whatever the round number
    (reliability review D7)."""
    tau = _ddg_tau(sigma, n)
    scale = math.sqrt(n) * sigma
    return _ddg_curve(l2 / scale, l1 / scale, tau, d, q)


def _ddg_curve(l2s: float, l1s: float, tau: float, d: int, q: float) -> tuple[float, ...]:
    """The per-round RDP at :data:`DDG_ORDERS` of sensitivities already divided by the
    sum's std (``l2s``, ``l1s``) and the distance term ``tau``; every term increases
    in each of the three, which :func:`ddg_epsilon_within` relies on."""

    @cache
    def per_round(a: int) -> float:
        return min(
            a / 2 * l2s**2 + tau * d,
            a / 2 * (l2s**2 + 2 * l1s * tau + tau**2 * d),
            a / 2 * (l2s + math.sqrt(d) * tau) ** 2,
        )

    return tuple(
        min(poisson_subsampled_rdp_bound(a, q, per_round), per_round(a)) for a in DDG_ORDERS
    )
