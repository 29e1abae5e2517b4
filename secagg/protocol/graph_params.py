"""Choosing the Harary-graph degree ``k`` and Shamir threshold ``t`` for SecAgg+.

SecAgg+ (Bell, Bonawitz, Gascón, Lepoint, Raykova, CCS 2020) replaces the complete
"everyone shares with everyone" graph of the original SecAgg with a sparse random
Harary graph: the clients are put on a ring in a secret random order and each one
shares its mask seeds with the ``k/2`` clients on either side. The round then costs
``O(n log n)`` instead of ``O(n^2)``, but ``k`` and ``t`` have to be picked so that,
with overwhelming probability over the random ordering,

* **privacy** holds: no client has ``t`` or more corrupt neighbours (so the server
  and its colluding clients can never reconstruct an honest client's secrets), and
  the honest survivors stay connected (so no subset of honest inputs is isolated
  and revealed), and
* **correctness** holds: every client keeps at least ``t`` surviving neighbours (so
  every secret the server legitimately needs can be reconstructed).

This module is a line-by-line port of Google's parameter finder, used in
production by the Federated Compute Platform:

* ``fcp/secagg/server/graph_parameter_finder.{h,cc}`` (the search itself and
  ``CheckFullGraphParameters``),
* ``fcp/secagg/server/distribution_utilities.cc`` (the hypergeometric CDF and
  quantile routines the search relies on; ported bit-for-bit because the
  discrete thresholds depend on exactly how those tails are summed),
* ``fcp/secagg/server/secagg_server.cc`` (how the result is used, which is what
  fixes the meaning of ``k``),

as found in ``google-parfait/federated-compute`` at commit
``e7157f0625b52fdf5912fd4eb9074f003424ceb1`` (the later revision ``bdbd822a…``
only swaps the status macros for Abseil ones; the arithmetic is the same).

Parameters of the search (identical to fcp)
-------------------------------------------
* statistical security ``sigma = 40``: the bad privacy events have total
  probability at most ``2**-40``; the budget is split evenly between the two
  events (disconnection, too many corrupt neighbours), i.e. ``2**-41`` each, and
  the per-client event is further divided by ``n`` (union bound over clients);
* correctness ``eta = 20``: a client ends up with fewer than ``t`` surviving
  neighbours with probability at most ``2**-20 / n``;
* the corrupt and dropped-out sets are worst-case sized,
  ``floor((gamma + 1e-14) * n)`` and ``floor((delta + 1e-14) * n)``, and placed
  uniformly at random, so a client's number of corrupt (or surviving)
  neighbours is hypergeometric with population ``n``, ``k`` draws;
* candidate degrees are ``k = 2, 4, 6, ...`` while ``k < n - 1``; the first ``k``
  that passes both tests wins, with ``t = max(t1 + 1, 2)`` where ``t1`` is the
  ``2**-41/n`` upper quantile of the corrupt-neighbour count (semi-malicious:
  ``t1 <- ceil((t1 + k - 1.25) / 2)``, so that two disjoint sets of ``t`` shares
  cannot both be assembled by the server) and ``t`` must not exceed ``t2``,
  the ``2**-20/n`` lower quantile of the surviving-neighbour count.

Meaning of ``k`` (read this before wiring the result into a graph)
--------------------------------------------------------------------
In fcp, ``ComputeHararyGraphParameters`` returns ``degree`` = the even number of
neighbours of a client **not counting itself** (the search loops over
``2, 4, 6, ...`` and the hypergeometric draws are ``degree`` other clients).
``SecAggServer::Create`` then adds one (``degree + 1``, always odd) before building
``SecretSharingHararyGraph``, because that graph class lists every node as its own
neighbour (neighbour index ``degree/2`` is the node itself) and
``SecretSharingGraphFactory::CreateHararyGraph`` insists the degree is odd.

In this library ``k`` means *the number of neighbours of a client other than
itself*: a client's secrets are Shamir-shared among exactly those ``k`` clients
with threshold ``t``. That is the finder's own ``degree``, so **no conversion is
applied**: ``k`` here equals fcp's ``HararyGraphParameters.degree`` and the
thresholds are identical. :attr:`HararyParameters.fcp_graph_degree` gives the
``k + 1`` that fcp's graph class would be built with, for cross-checking.

Departures from fcp
-------------------
* fcp reports "no ``k`` found" as an error status and the server falls back to
  the complete graph; here :func:`harary_parameters` returns ``None`` so the
  caller can make that same fallback explicitly (see :func:`complete_graph_threshold`).
* fcp's ``NONE`` adversary class is only its semi-honest search with the extra
  requirement ``gamma == 0``; pass ``corrupt_fraction=0.0`` to get it.
* NaN/infinite fractions and non-integer client counts are refused (fcp's range
  checks are written so that NaN would slip through).
* The complete graph's ``ceil((1 - delta) * n)`` survivors are counted as
  ``n - floor((delta + 1e-14) * n)``, the search's own nudged count of dropouts: fcp's
  float product rounds past an integer for some fractions (``0.82 * 150``), one survivor
  more than the round is sized for (:func:`_fewest_survivors`). The security minimum
  (``ceil(gamma * n)``) keeps fcp's float arithmetic: its error only ever raises it.
* Added around the port, not in it (last section of this file): a floor of
  colluders for small cohorts, worst-case sizing of the active variant, and the
  client-side check of a server's choice (:func:`minimum_threshold`).

Known quirk, kept for fidelity
------------------------------
fcp clamps the threshold to ``t >= 2`` *after* checking ``t1 < t2``, so when no
client can be corrupt (``floor(gamma * n) == 0``) and ``t2 == 1`` the returned
``t = 2`` exceeds ``t2`` and the ``2**-20`` correctness bound does not hold
(e.g. ``n = 10, gamma = 0, delta = 0.33`` gives ``k = 4, t = 2`` although one of
the 4 neighbours dropping out is far likelier than ``2**-20``). Only small
cohorts are affected (``n < 60`` for the default fractions). Privacy is not
weakened; a round may simply abort more often than promised.

Size: about 770 lines: a line-by-line port of one upstream file, kept whole so it can
be diffed against the original (about 520 lines), then what this library adds around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral, Real

from secagg.errors import ConfigurationError, decimal_digits

#: the protocol's default assumptions: the fraction of a cohort that may drop out, and
#: the fraction that may collude with the server (Bell et al.'s usual 10 % / 5 %); every
#: layer's default reads these two, so the server's choice and a branch's own check agree
DEFAULT_DROPOUT_FRACTION = 0.10
DEFAULT_CORRUPT_FRACTION = 0.05

__all__ = [
    "CORRECTNESS_PARAMETER",
    "DEFAULT_CORRUPT_FRACTION",
    "DEFAULT_DROPOUT_FRACTION",
    "DEFAULT_MIN_COLLUDERS",
    "MAX_NUM_CLIENTS",
    "SECURITY_PARAMETER",
    "HararyParameters",
    "check_complete_graph_threshold",
    "colluder_floor",
    "colluders_tolerated_by",
    "complete_graph_threshold",
    "harary_parameters",
    "minimum_threshold",
    "population_colluders",
    "sized_harary_parameters",
    "tolerated_colluders",
    "tolerated_dropouts",
    "worst_case_threshold",
]

#: Statistical security parameter sigma: privacy fails with probability < 2**-40.
SECURITY_PARAMETER: float = 40.0
#: Statistical correctness parameter eta: a round fails with probability < 2**-20.
CORRECTNESS_PARAMETER: float = 20.0
#: Largest cohort fcp accepts. Not a mathematical limit: it is where fcp stopped
#: testing, and we keep it so both implementations refuse the same inputs.
MAX_NUM_CLIENTS: int = 1_000_000

# Nudge added before flooring/ceiling ``fraction * n`` so that e.g. 0.1 * 30 =
# 3.0000000000000004 or 0.29999... * 10 rounds the way a human expects, and
# never in the insecure direction.
_SMALL = 1e-14
# The privacy budget is split evenly between the two bad events, 2**-41 each.
_SECURITY_PER_EVENT = SECURITY_PARAMETER + 1
# fcp's semi-honest and no-adversary feasibility bound (gamma + delta) and its
# semi-malicious one (gamma + 2 * delta).
_MAX_BAD_FRACTION = 0.9


@dataclass(frozen=True)
class HararyParameters:
    """A SecAgg+ communication graph: who shares with whom, and how many must meet.

    ``k`` is the number of neighbours of each client *excluding itself*; it is
    even because a Harary graph takes ``k/2`` neighbours on each side of the
    ring. Each client's secrets are Shamir-shared among those ``k`` neighbours
    with reconstruction threshold ``threshold``. The inputs are kept so the
    parameters can be logged, audited and re-derived.
    """

    num_clients: int
    k: int
    threshold: int
    corrupt_fraction: float
    dropout_fraction: float
    semi_malicious: bool

    @property
    def fcp_graph_degree(self) -> int:
        """``k + 1``: the degree fcp's ``SecretSharingHararyGraph`` uses (it counts
        each node as its own neighbour). Only useful when comparing with fcp."""
        return self.k + 1


# --- hypergeometric tails (port of fcp's distribution_utilities.cc) ----------
#
# Everything below mirrors fcp's floating-point evaluation order so that the
# integer quantiles, and hence k and t, come out identical. X counts the marked
# ("counted") items among ``sampled`` draws without replacement from ``total``.


def _pmf(total: int, counted: int, sampled: int, x: float) -> float:
    """P[X = x], via log-gamma so that n up to 10**6 neither overflows nor underflows early."""
    if x < 0 or x > sampled or x > counted:
        return 0.0
    if total + x < counted + sampled:
        return 0.0
    lg = math.lgamma
    lpmf = (
        lg(sampled + 1)
        + lg(counted + 1)
        + lg(total - counted + 1)
        + lg(total - sampled + 1)
        - lg(x + 1)
        - lg(sampled - x + 1)
        - lg(counted - x + 1)
        - lg(total + 1)
        - lg(total - sampled - counted + x + 1)
    )
    return math.exp(lpmf)


def _lower_tail(total: int, counted: int, sampled: int, x: float) -> float:
    """P[X <= x], summed from x downwards until the terms stop mattering.

    Starting at the largest term and walking away from the mode with the pmf
    ratio keeps the sum accurate in the far tail, which is where the 2**-41/n
    and 2**-20/n quantiles live.
    """
    pmf = _pmf(total, counted, sampled, x)
    result = 0.0
    rest = total - counted - sampled
    while pmf > result * 1e-16:
        result += pmf
        pmf *= x
        pmf *= rest + x
        pmf /= counted - x + 1
        pmf /= sampled - x + 1
        x -= 1
    return result


def _cdf(total: int, marked: int, sampled: int, x: float) -> float:
    """P[X <= floor(x)], computed from whichever tail is the small one."""
    x = math.floor(x)
    mean = marked * float(sampled) / total
    if x > mean:
        return 1 - _lower_tail(total, total - marked, sampled, sampled - x - 1)
    return _lower_tail(total, marked, sampled, x)


def _quantile_impl(total: int, counted: int, sampled: int, quantile: float) -> float:
    """Largest x with P[X <= x] < quantile (for a small ``quantile``).

    The search starts from a Hoeffding lower bound on the answer, so it only
    walks the few integers between that bound and the true quantile.
    """
    basic_bound = float(counted + sampled - total - 1)
    hoeffding_bound = sampled * (
        float(counted) / total - math.sqrt(-math.log(quantile) / (2 * sampled))
    )
    result = -1.0
    if basic_bound > result:
        result = basic_bound
    if hoeffding_bound > result:
        result = hoeffding_bound
    result = float(math.floor(result))

    cdf = _lower_tail(total, counted, sampled, result)
    pmf = _pmf(total, counted, sampled, result)
    rest = total - counted - sampled
    while cdf < quantile and result < sampled:
        if pmf > 0:
            pmf /= result + 1
            pmf /= rest + result + 1
            pmf *= counted - result
            pmf *= sampled - result
        else:
            pmf = _pmf(total, counted, sampled, result + 1)
        cdf += pmf
        result += 1
    return result - 1


def _quantile(
    total: int, marked: int, sampled: int, quantile: float, complement: bool = False
) -> float:
    """Integer quantile rounded away from the median; ``complement`` asks for the
    upper tail without ever forming ``1 - tiny`` (which would lose all precision)."""
    if quantile > 0.5:
        quantile = 1 - quantile
        complement = not complement
    if complement:
        return sampled - _quantile_impl(total, total - marked, sampled, quantile) - 1
    return _quantile_impl(total, marked, sampled, quantile)


# --- the search (port of fcp's HararyGraphParameterFinder) ---------------------


def _log_prob_disconnected(n: int, k: int, max_bad: int) -> float:
    """Union bound (in log space) on the honest survivors of a random Harary graph
    being disconnected.

    Cutting a ring-shaped Harary graph of degree k needs two disjoint runs of k/2
    consecutive removed (corrupt or dropped) clients. There are n * (n - k - 1) / 2
    places for such a pair of gaps, and for each the chance that all k clients in
    them are among the ``max_bad`` removed ones is ``C(max_bad, k) / C(n, k)``
    written with factorials.
    """
    log_gap_pairs = math.log(n) + math.log(n - k - 1) - math.log(2)
    if k > max_bad:
        return -math.inf
    return (
        log_gap_pairs
        + math.lgamma(max_bad + 1)
        + math.lgamma(n - k + 1)
        - math.lgamma(n + 1)
        - math.lgamma(max_bad - k + 1)
    )


def _corrupt_bound(n: int, k: int, max_corrupt: int, semi_malicious: bool) -> float:
    """``t1``: the most shares of one client its corrupt neighbours may hold.

    Corrupt neighbours exceed ``t1`` with probability at most 2**-41/n. For a
    semi-malicious server ``t1`` is raised so that 2t - k exceeds what the
    corrupt neighbours can supply: the server may ask different honest clients
    for different shares of the same secret and must not be able to collect
    ``t`` shares of the self-mask *and* ``t`` of the mask key.
    """
    privacy_tail = math.pow(2, -_SECURITY_PER_EVENT) / n
    t1 = _quantile(n, max_corrupt, k, privacy_tail, complement=True)
    if semi_malicious:
        t1 = math.ceil((t1 + k - 1.25) / 2)
    return t1


def _surviving_bound(n: int, k: int, min_surviving: int) -> float:
    """``t2``: surviving neighbours fall below it with probability <= 2**-20/n."""
    correctness_tail = math.pow(2, -CORRECTNESS_PARAMETER) / n
    t2 = _quantile(n, min_surviving, k, correctness_tail)
    if _cdf(n, min_surviving, k, t2) < correctness_tail:
        t2 += 1
    return t2


def _may_disconnect(n: int, k: int, max_bad: int) -> bool:
    """True if ``max_bad`` removed clients cut the ring with probability >= 2**-41."""
    log_budget = -_SECURITY_PER_EVENT * math.log(2)
    return _log_prob_disconnected(n, k, max_bad) >= log_budget


def _threshold_for(
    n: int,
    k: int,
    max_corrupt: int,
    max_dropped: int,
    min_surviving: int,
    semi_malicious: bool,
) -> int | None:
    """Smallest safe threshold for degree ``k``, or None if ``k`` is not enough.

    ``k`` is rejected if the survivors may disconnect (probability >= 2**-41), or
    if no ``t`` is both above the corrupt-neighbour count (except with probability
    2**-41/n) and at most the surviving-neighbour count (except with probability
    2**-20/n).
    """
    if _may_disconnect(n, k, max_corrupt + max_dropped):
        return None
    t1 = _corrupt_bound(n, k, max_corrupt, semi_malicious)
    t2 = _surviving_bound(n, k, min_surviving)
    if t2 <= t1:
        return None
    # Any t in (t1, t2] is safe; the smallest keeps reconstruction cheapest.
    # fcp's Shamir implementation needs t >= 2.
    return int(max(t1 + 1, 2.0))


def _check_rates(corrupt_fraction: float, dropout_fraction: float) -> None:
    """Refuse fractions outside [0, 1) (and NaN/inf), naming the broken limit.

    Every use below computes with ``float(value)``, so a real number below 1 that no
    float below 1 holds (``Fraction`` 1 - 1e-30) is refused here, naming it, rather than
    passing and then failing inside as a fraction of 1.0 the caller never gave; an
    integer past the floats (``10**400``) is refused too, where ``math.isfinite`` raised
    a bare OverflowError (hostile policy review, 2026-12-07)."""
    for name, value in (
        ("corrupt_fraction", corrupt_fraction),
        ("dropout_fraction", dropout_fraction),
    ):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ConfigurationError(f"{name} must be a real number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            raise ConfigurationError(
                f"{name} must lie in [0, 1), got an integer of {decimal_digits(int(value))} digits"
            ) from None
        if not math.isfinite(number) or value < 0 or value >= 1:
            raise ConfigurationError(f"{name} must lie in [0, 1), got {value!r:.60}")
        if number >= 1:
            raise ConfigurationError(
                f"{name} must lie in [0, 1), got {value!r:.60}: below 1, but closer to it "
                "than any float below 1, so every use of it would compute with 1.0"
            )


def _check_num_clients(num_clients: int) -> None:
    """Refuse non-integers (a float cohort size is a caller bug) and empty cohorts."""
    if isinstance(num_clients, bool) or not isinstance(num_clients, Integral):
        raise ConfigurationError(f"num_clients must be an int, got {num_clients!r}")
    if num_clients < 1:
        raise ConfigurationError(f"num_clients must be at least 1, got {num_clients}")


def _check_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer (not a bool), else a ConfigurationError.

    Why: ``int(value)`` took ``"4"`` and truncated ``2.5`` to a degree of 2 (another
    graph than the caller named), and None or NaN failed as a bare TypeError or
    ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigurationError(f"{name} must be an int, got {value!r}")
    return int(value)


@lru_cache(maxsize=4096)
def harary_parameters(
    num_clients: int,
    *,
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
    semi_malicious: bool = False,
) -> HararyParameters | None:
    """Smallest even ``k`` (and its threshold) that makes SecAgg+ private and correct.

    ``corrupt_fraction`` (gamma) bounds the share of clients colluding with the
    server, ``dropout_fraction`` (delta) the share that may drop out; with
    ``semi_malicious`` the server may also lie about who dropped out (fcp's
    ``SEMI_MALICIOUS_SERVER``), otherwise it is honest-but-curious
    (``CURIOUS_SERVER``). See the module docstring for the exact guarantees and
    for what ``k`` counts.

    Returns None when no ``k < num_clients - 1`` works (always the case for
    ``num_clients <= 3``, and typical for small cohorts with large gamma + delta);
    fcp then runs the complete-graph protocol, whose threshold
    :func:`complete_graph_threshold` gives.

    Raises:
        ConfigurationError: ``num_clients`` is not in ``[1, 10**6]``, a fraction
            is outside ``[0, 1)``, or the fractions are too large for any graph:
            ``gamma + delta > 0.9`` (semi-honest) or ``gamma + 2 * delta > 0.9``
            (semi-malicious).

    Results are memoised, since the same cohort size recurs at every round setup.
    """
    _check_num_clients(num_clients)
    if num_clients > MAX_NUM_CLIENTS:
        raise ConfigurationError(
            f"num_clients must be at most {MAX_NUM_CLIENTS} (fcp's tested limit), got {num_clients}"
        )
    _check_rates(corrupt_fraction, dropout_fraction)
    gamma, delta = float(corrupt_fraction), float(dropout_fraction)
    semi_malicious = bool(semi_malicious)
    if semi_malicious:
        if gamma + 2 * delta > _MAX_BAD_FRACTION:
            raise ConfigurationError(
                "semi-malicious SecAgg+ needs corrupt_fraction + 2 * dropout_fraction "
                f"<= {_MAX_BAD_FRACTION}, got {gamma} + 2 * {delta} = {gamma + 2 * delta}"
            )
    elif gamma + delta > _MAX_BAD_FRACTION:
        raise ConfigurationError(
            "semi-honest SecAgg+ needs corrupt_fraction + dropout_fraction "
            f"<= {_MAX_BAD_FRACTION}, got {gamma} + {delta} = {gamma + delta}"
        )

    n = int(num_clients)
    max_corrupt = math.floor((gamma + _SMALL) * n)
    max_dropped = tolerated_dropouts(n, delta)
    min_surviving = math.ceil((1 - delta - _SMALL) * n)
    for k in range(2, n - 1, 2):
        t = _threshold_for(n, k, max_corrupt, max_dropped, min_surviving, semi_malicious)
        if t is not None:
            return HararyParameters(
                num_clients=n,
                k=k,
                threshold=t,
                corrupt_fraction=gamma,
                dropout_fraction=delta,
                semi_malicious=semi_malicious,
            )
    return None


# --- complete-graph fallback (port of fcp's CheckFullGraphParameters) ---------


def _complete_graph_security_minimum(n: int, gamma: float, semi_malicious: bool) -> int:
    """Smallest threshold fcp's check accepts on privacy grounds alone.

    Semi-honest: ``t > ceil(gamma * n)`` so the corrupt clients alone never hold
    ``t`` shares. Semi-malicious: ``t > ceil((n + gamma * n) / 2)`` so that the
    server cannot gather ``t`` self-mask shares from one half of the honest
    clients and ``t`` mask-key shares of the same client from the other half.
    Also ``t >= 2``, which fcp's Shamir code needs.
    """
    if semi_malicious:
        bound = math.ceil((n + gamma * n) / 2)
    else:
        bound = math.ceil(gamma * n)
    return max(bound + 1, 2)


def _fewest_survivors(n: int, delta: float) -> int:
    """fcp's ``ceil((1 - delta) * n)``: the survivors of a round that lost the dropouts it
    is sized for, counted as :func:`tolerated_dropouts` counts those (``n - floor((delta
    + 1e-14) * n)``).

    Why not fcp's float expression: ``(1 - delta) * n`` rounds just above an integer for
    some fractions (``0.82 * 150`` is ``123.00000000000001``), so its ceiling asked one
    survivor more than the round is sized for: at n = 150 and ``delta = 0.18`` a threshold
    of 124 where 27 dropouts (123 survivors) are tolerated by the Harary search's rule and
    counted by the DP plan, and an honest round that lost its 27 aborted (hostile policy
    review, 2026-12-07; tests/protocol/test_complete_graph_survivors.py). It was never one
    too low (the float product only ever rounded up past the integer)."""
    return n - tolerated_dropouts(n, delta)


def check_complete_graph_threshold(
    num_clients: int,
    threshold: int,
    *,
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
    semi_malicious: bool = False,
) -> None:
    """Refuse a complete-graph (original SecAgg) threshold that fcp would refuse.

    The rules, in fcp's order: ``1 < t <= n``; both fractions in ``[0, 1)``;
    ``t >= ceil((1 - delta) * n)``, counted as ``n - floor((delta + 1e-14) * n)``
    (:func:`_fewest_survivors`; the round needs that many survivors anyway,
    so a lower ``t`` would let the server unmask with fewer clients than the
    round admits); and ``t > ceil(gamma * n)`` (semi-honest) or
    ``t > ceil((n + gamma * n) / 2)`` (semi-malicious). Note that the semi-honest
    bound is on the *ceiling* of ``gamma * n``, one stricter than ``t > gamma * n``
    whenever ``gamma * n`` is not an integer.

    Raises:
        ConfigurationError: naming the first rule that ``threshold`` breaks.
    """
    _check_num_clients(num_clients)
    if isinstance(threshold, bool) or not isinstance(threshold, Integral):
        raise ConfigurationError(f"threshold must be an int, got {threshold!r}")
    if threshold <= 1 or threshold > num_clients:
        raise ConfigurationError(
            f"threshold must satisfy 1 < threshold <= num_clients = {num_clients}, got {threshold}"
        )
    _check_rates(corrupt_fraction, dropout_fraction)
    n, gamma, delta = int(num_clients), float(corrupt_fraction), float(dropout_fraction)
    survivors = _fewest_survivors(n, delta)
    if threshold < survivors:
        raise ConfigurationError(
            f"threshold must be at least num_clients - floor(dropout_fraction * num_clients) "
            f"= {survivors} (the survivors a round sized for its dropouts keeps), got {threshold}"
        )
    minimum = _complete_graph_security_minimum(n, gamma, bool(semi_malicious))
    if threshold < minimum:
        rule = (
            "ceil((num_clients + corrupt_fraction * num_clients) / 2)"
            if semi_malicious
            else "ceil(corrupt_fraction * num_clients)"
        )
        raise ConfigurationError(
            f"threshold must exceed {rule} = {minimum - 1} "
            f"({'semi-malicious' if semi_malicious else 'semi-honest'} server), got {threshold}"
        )


def complete_graph_threshold(
    num_clients: int,
    *,
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
    semi_malicious: bool = False,
) -> int:
    """Threshold for the complete-graph fallback: the smallest ``t`` fcp accepts.

    fcp's server sets ``t = max(minimum_clients_to_proceed, ceil(n * (1 - delta)))``
    and then *checks* it with ``CheckFullGraphParameters`` (see
    :func:`check_complete_graph_threshold`), failing the round if the check
    fails. Here the security minimum is folded in instead, so the result is
    ``max(ceil((1 - delta) * n), security minimum)`` (the first counted as
    :func:`_fewest_survivors` counts it), which passes that check by
    construction: the fewest survivors the round can tolerate, but never so few
    that the corrupt clients (or, semi-malicious, a split of the honest ones)
    could reconstruct a secret.

    Raises:
        ConfigurationError: for invalid inputs, or when the security minimum
            exceeds ``num_clients`` (e.g. ``n = 1``: fcp needs ``t >= 2``), i.e.
            no threshold is private for this cohort.
    """
    _check_num_clients(num_clients)
    _check_rates(corrupt_fraction, dropout_fraction)
    n, gamma, delta = int(num_clients), float(corrupt_fraction), float(dropout_fraction)
    minimum = _complete_graph_security_minimum(n, gamma, bool(semi_malicious))
    if minimum > n:
        raise ConfigurationError(
            f"no complete-graph threshold is private for num_clients = {n}: the "
            f"{'semi-malicious' if semi_malicious else 'semi-honest'} security minimum "
            f"is {minimum} (and fcp requires threshold >= 2)"
        )
    threshold = max(_fewest_survivors(n, delta), minimum)
    check_complete_graph_threshold(
        n,
        threshold,
        corrupt_fraction=gamma,
        dropout_fraction=delta,
        semi_malicious=bool(semi_malicious),
    )
    return threshold


# --- beyond fcp: a colluder floor, worst-case sizing, the client's own check ---
#
# Everything below is *not* in fcp. It wraps the port above without touching
# its arithmetic: the port sizes k and t for ``floor(gamma * n)`` colluders
# placed uniformly at random on a ring the server shuffled honestly. Two things
# that analysis leaves open are closed here.
#
# * Small cohorts (security review L2). ``floor(0.05 * n)`` is 0 for n < 20 and
#   1 for n < 40, so the port sized small rounds for no colluder at all (k = 2,
#   t = 2 at n = 8: two colluding ring neighbours and the server unmask the
#   client between them). Every round is now sized for at least
#   ``min_colluders`` (default 2, capped at n - 2, beyond which the sum itself
#   reveals the last honest input). The floor is handed to the port as an
#   effective fraction ``c / n``. It changes nothing for n >= 40 at the
#   default 5 %. Below that it is worst-case sizing: at such n every placement of
#   2 colluders has probability above the 2**-41/n budget, so the port's
#   random-placement quantile already counts both colluders among any client's
#   neighbours, and its connectivity bound rejects every k <= 2 + dropped.
# * A server that fixes the graph seed (security review C1(b)). The random
#   placement assumption holds only if the party choosing the seed does not
#   collude. In the active variant the server is the adversary, so it can grind
#   seeds until a victim's neighbours include all its colluders. There t is
#   sized for the worst placement: 2t > k + 1 + c (the k + 1 holders of a
#   client's shares include all c colluders, and the honest rest must not be
#   splittable into two groups of t - c that reveal different share kinds),
#   and k > c (otherwise all of a client's neighbours may be colluders: they
#   know every pair seed, and the server rebuilds the self-mask of a survivor
#   anyway). With t > c + 1, which 2t > k + 1 + c and k > c imply, a client's
#   own "t of my holders survived" check also guarantees it an honest surviving
#   neighbour, whose pair mask nobody can remove. (Partial sums of several honest
#   inputs are a connectivity matter: the clients check that the survivors stay
#   connected with any c of them left out, NeighbourGraph.connects_despite, which
#   holds wherever the colluders sit.) The seed then cannot help the
#   server, so no seed-derivation protocol is needed (one would be hard anyway:
#   a server that can drop contributors biases any coin flip that depends on
#   them). The price: k grows like c, so at large n the active variant is far
#   denser than fcp's (n = 1000: k = 118 instead of 78).

#: The fewest colluding clients any round is sized for, whatever ``gamma * n`` says.
DEFAULT_MIN_COLLUDERS = 2


def tolerated_colluders(
    num_clients: int, corrupt_fraction: float, min_colluders: int = DEFAULT_MIN_COLLUDERS
) -> int:
    """Colluding clients a round of ``num_clients`` is sized for, in absolute numbers.

    ``c = max(floor(gamma * n), min(min_colluders, n - 2))``: the corrupt
    fraction, but never fewer than ``min_colluders`` while the cohort has room
    for them (with n - 1 colluders the sum alone reveals the last input, so no
    parameter choice can help and none is asked for).
    """
    _check_num_clients(num_clients)
    _check_rates(corrupt_fraction, 0.0)
    if isinstance(min_colluders, bool) or not isinstance(min_colluders, Integral):
        raise ConfigurationError(f"min_colluders must be an int, got {min_colluders!r}")
    if min_colluders < 0:
        raise ConfigurationError(f"min_colluders must be non-negative, got {min_colluders}")
    n = int(num_clients)
    return max(math.floor((corrupt_fraction + _SMALL) * n), min(int(min_colluders), max(n - 2, 0)))


def population_colluders(num_clients: int, population: int | None, corrupt_fraction: float) -> int:
    """The colluders of the population a round of ``num_clients`` was drawn from, all of
    which may sit in that round: ``floor(gamma * max(n, population))``.

    Why: whoever draws the round (the server) can put every colluder of the population
    into it, so a round of 20 from 100 at 5 % must be sized for 5 colluders, not its own
    1 (or the floor's 2): at k = 8, t = 6 the 5 plus one honest holder met t for each
    of two conflicting survivor lists and unmasked an honest input (review of
    colluders, 2026-12-07; tests/protocol/test_cohort_colluders.py). ``None`` or a
    population no larger than the round: the round is the population."""
    _check_num_clients(num_clients)
    _check_rates(corrupt_fraction, 0.0)
    cohort = int(num_clients)
    if population is not None:
        cohort = max(cohort, _check_int("population", population))
    return math.floor((float(corrupt_fraction) + _SMALL) * cohort)


def colluder_floor(
    num_clients: int,
    population: int | None,
    corrupt_fraction: float,
    min_colluders: int = DEFAULT_MIN_COLLUDERS,
) -> int | None:
    """The ``min_colluders`` to size a round of ``num_clients`` with, so that it also
    holds against every colluder of its ``population``: ``max(min_colluders,``
    :func:`population_colluders` ``)``; None when those colluders may fill the round but
    one (``n - 1`` or more), where the sum alone reveals the last honest input and no
    k or t helps.

    Passed as the floor to the unchanged searches (:func:`sized_harary_parameters`,
    :func:`minimum_threshold`), whose :func:`tolerated_colluders` caps only the floor's
    default part at ``n - 2``: a population's colluders below that are taken whole."""
    if isinstance(min_colluders, bool) or not isinstance(min_colluders, Integral):
        raise ConfigurationError(f"min_colluders must be an int, got {min_colluders!r}")
    packed = population_colluders(num_clients, population, corrupt_fraction)
    if packed > int(num_clients) - 2 and population is not None and population > num_clients:
        return None
    return max(int(min_colluders), packed)


def tolerated_dropouts(num_clients: int, dropout_fraction: float) -> int:
    """Dropouts a round of ``num_clients`` is sized for: ``floor((delta + 1e-14) * n)``,
    the nudge of :data:`_SMALL` included (0.29 * 100 is 28.999999999999996 in floats).

    Why a function: the DP plan counts the noise shares a tolerated round loses
    (:func:`secagg.dp.distributed.planned_honest_shares`) and must count as many
    dropouts as SecAgg+ is sized for; it floored ``0.29 * 100`` without the nudge, 28
    where the protocol tolerates 29, and sized the noise for one honest share more
    than such a round keeps."""
    _check_num_clients(num_clients)
    _check_rates(0.0, dropout_fraction)
    return math.floor((float(dropout_fraction) + _SMALL) * int(num_clients))


def _effective_fraction(n: int, colluders: int, corrupt_fraction: float) -> float:
    """The corrupt fraction to give the port so that it sizes for ``colluders``.

    ``floor((c / n + 1e-14) * n) == c`` exactly: the rounding error of ``c / n * n``
    is below ``n * 2**-52``, far under the port's ``1e-14 * n`` nudge.
    """
    if colluders <= math.floor((corrupt_fraction + _SMALL) * n):
        return float(corrupt_fraction)
    return colluders / n


def worst_case_threshold(k: int, colluders: int) -> int:
    """Smallest t with ``2t > k + 1 + colluders`` (active variant, any placement).

    A lying server shows group A of a client's honest holders "it survived"
    and group B "it dropped"; A reveal self-mask shares, B mask-key shares, the
    colluders both. It needs ``t - c`` honest holders in each group, so
    ``2(t - c) <= k + 1 - c`` must fail.
    """
    return (_check_int("k", k) + 1 + _check_int("colluders", colluders)) // 2 + 1


@lru_cache(maxsize=4096)
def sized_harary_parameters(
    num_clients: int,
    *,
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
    semi_malicious: bool = False,
    min_colluders: int = DEFAULT_MIN_COLLUDERS,
) -> HararyParameters | None:
    """The port's search, sized for the colluder floor and, if active, the worst case.

    Semi-honest: :func:`harary_parameters` for ``max(gamma, c / n)`` (identical
    to fcp whenever ``floor(gamma * n) >= min_colluders``, e.g. n >= 40 at 5 %).
    Semi-malicious: the smallest even k whose fcp threshold, raised to
    :func:`worst_case_threshold` and with k > c, still meets fcp's
    correctness bound. Returns None when no k < n - 1 works (the caller falls
    back to the complete graph), including when the floor pushes the effective
    fractions past what the port accepts.

    Raises:
        ConfigurationError: for inputs the port itself refuses (checked with the
            caller's own fractions, before the floor).
    """
    harary_parameters(  # refuse what fcp refuses, with the caller's fractions
        num_clients,
        corrupt_fraction=corrupt_fraction,
        dropout_fraction=dropout_fraction,
        semi_malicious=semi_malicious,
    )
    n = int(num_clients)
    gamma, delta = float(corrupt_fraction), float(dropout_fraction)
    c = tolerated_colluders(n, gamma, min_colluders)
    effective = _effective_fraction(n, c, gamma)
    if not semi_malicious:
        try:
            return harary_parameters(n, corrupt_fraction=effective, dropout_fraction=delta)
        except ConfigurationError:  # the floor made gamma + delta exceed fcp's limit
            return None
    if effective + 2 * delta > _MAX_BAD_FRACTION:
        return None
    max_dropped = math.floor((delta + _SMALL) * n)
    min_surviving = math.ceil((1 - delta - _SMALL) * n)
    for k in range(c + 2 - c % 2, n - 1, 2):  # even degrees above c only
        t = _threshold_for(n, k, c, max_dropped, min_surviving, True)
        if t is None:
            continue
        t = max(t, worst_case_threshold(k, c))
        if t > k + 1 or t > _surviving_bound(n, k, min_surviving):
            continue
        return HararyParameters(
            num_clients=n,
            k=k,
            threshold=t,
            corrupt_fraction=effective,
            dropout_fraction=delta,
            semi_malicious=True,
        )
    return None


@lru_cache(maxsize=4096)
def minimum_threshold(
    num_clients: int,
    degree: int,
    *,
    semi_malicious: bool,
    corrupt_fraction: float = DEFAULT_CORRUPT_FRACTION,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
    min_colluders: int = DEFAULT_MIN_COLLUDERS,
) -> int | None:
    """The smallest threshold a client accepts for a graph the server announced.

    Privacy only: how often a round could abort is the server's concern, so
    fcp's correctness bound and its ``t >= ceil((1 - delta) * n)`` rule are not
    applied. ``degree >= num_clients - 1`` is the complete graph, otherwise a
    Harary graph of even degree ``degree``. For ``c`` =
    :func:`tolerated_colluders`:

    * complete graph: fcp's privacy minimum (``t > ceil(gamma * n)``, or
      ``t > ceil((n + gamma * n) / 2)`` semi-malicious), at least ``c + 1``, and
      semi-malicious also :func:`worst_case_threshold` ``(n - 1, c)``;
    * Harary graph: None if ``c`` colluders and ``floor(delta * n)`` dropouts may
      cut the ring (fcp's connectivity bound); else the port's
      ``max(t1 + 1, 2)`` for ``c`` colluders; semi-malicious also k > c (else
      None) and :func:`worst_case_threshold` ``(k, c)``.

    Returns None when no threshold up to the ``degree + 1`` holders is safe.
    """
    _check_num_clients(num_clients)
    _check_rates(corrupt_fraction, dropout_fraction)
    n, k = int(num_clients), _check_int("degree", degree)
    if n < 2 or not 1 <= k <= n - 1:
        raise ConfigurationError(f"degree must lie in [1, {n - 1}] for {n} clients, got {k}")
    gamma, delta = float(corrupt_fraction), float(dropout_fraction)
    c = tolerated_colluders(n, gamma, min_colluders)
    if k >= n - 1:
        t = max(_complete_graph_security_minimum(n, gamma, semi_malicious), c + 1)
        if semi_malicious:
            t = max(t, worst_case_threshold(n - 1, c))
        return t if t <= n else None
    if semi_malicious and k <= c:
        return None
    if _may_disconnect(n, k, c + math.floor((delta + _SMALL) * n)):
        return None
    t = int(max(_corrupt_bound(n, k, c, semi_malicious) + 1, 2.0))
    if semi_malicious:
        t = max(t, worst_case_threshold(k, c))
    return t if t <= k + 1 else None


def colluders_tolerated_by(
    num_clients: int,
    degree: int,
    threshold: int,
    *,
    semi_malicious: bool,
    dropout_fraction: float = DEFAULT_DROPOUT_FRACTION,
) -> int:
    """The most colluders for which :func:`minimum_threshold` accepts ``threshold``.

    Placed uniformly at random on the ring in the semi-honest case, anywhere in
    the semi-malicious one; -1 when even a round with no colluder is refused
    (e.g. ``t = 1``, or a Harary degree that the dropouts alone may cut).
    Binary search: the minimum threshold never decreases with more colluders.
    """

    _check_num_clients(num_clients)
    _check_int("degree", degree)
    _check_int("threshold", threshold)

    def accepts(c: int) -> bool:
        t = minimum_threshold(
            num_clients,
            degree,
            semi_malicious=semi_malicious,
            corrupt_fraction=0.0,
            dropout_fraction=dropout_fraction,
            min_colluders=c,
        )
        return t is not None and t <= threshold

    low, high = -1, max(int(num_clients) - 2, 0)  # accepts(low) holds or low == -1
    while low < high:
        mid = (low + high + 1) // 2
        if accepts(mid):
            low = mid
        else:
            high = mid - 1
    return low
