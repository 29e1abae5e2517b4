"""A plan's epsilon: ``T`` DP-FedAvg rounds at ``z`` and ``q``, amplified or a federation's.

What lives here
    :func:`epsilon`, the Poisson-amplified epsilon of a plan (with every client sampled,
    PLD's answer is the closed form the running accountant uses, so a plan and the run it
    plans agree; refusals are remembered, :class:`_Refusals`, since ``lru_cache`` keeps
    only results), and what a secagg federation claims instead: each client charged
    for the rounds it is in, unamplified (a round's members see one another), the most
    sampled client's :func:`likely_most_rounds` of them (:func:`federation_epsilon`,
    :func:`plan_charge`, :func:`plan_epsilon`, the one entry point for "the epsilon of
    this z").

Why a module of its own
    These are the figures a person plans with (``secagg privacy epsilon``,
    :class:`~secagg.dp.config.DPConfig`), above the compositions that compute them and
    below the calibration (:mod:`secagg.dp.calibration`) that searches them for a
    budget.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import dp_accounting

from secagg.dp import pld_composition
from secagg.dp._checks import _count, _delta, _positive, _sample_rate
from secagg.dp.accounting_core import (
    PLD_VALUE_DISCRETIZATION,
    AccountantCannotEvaluate,
    _accountant,
    _epsilon_of,
    _Round,
    _sampled,
)
from secagg.dp.gaussian_closed_form import _gaussian_epsilon
from secagg.dp.pld_composition import _build_sampled_pld, _PldComposition
from secagg.errors import ConfigurationError

__all__ = [
    "MOST_ROUNDS_TAIL",
    "PlanCharge",
    "epsilon",
    "federation_epsilon",
    "likely_cohort_range",
    "likely_most_rounds",
    "plan_charge",
    "plan_epsilon",
]


def epsilon(
    noise_multiplier: float,
    sample_rate: float,
    rounds: int,
    delta: float,
    accountant: str = "pld",
) -> float:
    """Epsilon at ``delta`` of ``rounds`` DP-FedAvg rounds with Poisson client sampling.

    ``noise_multiplier`` is the noise std on the *sum* divided by the L2 clip;
    ``sample_rate`` the probability that a client joins a round. Add/remove-one
    client adjacency. Zero rounds release nothing, hence 0.0.
    """
    z = _positive("noise_multiplier", noise_multiplier)
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    d = _delta(delta)
    acc = _accountant(accountant)
    return _fedavg_epsilon(z, q, t, d, acc)


@functools.lru_cache(maxsize=256)  # pure; plans are re-checked with the same numbers
def _fedavg_epsilon(
    z: float,
    q: float,
    t: int,
    delta: float,
    accountant: str,
    discretization: float = PLD_VALUE_DISCRETIZATION,
) -> float:
    """:func:`epsilon` without the checks (also reachable where ``epsilon`` is shadowed).

    With every client sampled, PLD's answer is the closed form (the running
    accountant's, so a plan and the run it plans agree); see :mod:`secagg.dp.accounting`.
    A refusal (:class:`AccountantCannotEvaluate`) is remembered too (:class:`_Refusals`)."""
    if t == 0:
        return 0.0
    # the size limit in force, read where it lives (a caller that lowers it there is obeyed)
    key = (z, q, t, delta, accountant, discretization, pld_composition.MAX_PLD_POINTS)
    _REFUSALS.raise_if_refused(key)
    try:
        if accountant == "pld":  # what the running accountant computes for t identical rounds
            if q == 1.0:
                return _gaussian_epsilon(z / math.sqrt(t), delta)
            composition = _PldComposition(discretization, build=_build_sampled_pld)
            composition.add(_Round(z, q), t)
            return composition.epsilon(delta)
        event = dp_accounting.SelfComposedDpEvent(_sampled(q, dp_accounting.GaussianDpEvent(z)), t)
        return _epsilon_of(event, delta, accountant, discretization)
    except AccountantCannotEvaluate as exc:
        _REFUSALS.remember(key, exc)
        raise


class _Refusals:
    """The last refusals of :func:`_fedavg_epsilon`, which ``lru_cache`` does not keep (it
    keeps results only), by its arguments and the size limit in force.

    Why: a refusal costs seconds (the round's PLD is built and its composition sized
    before the size is known: about 2 s for z = 0.29, q = 1e-9, 10^9 rounds), and the
    same one is asked again: a calibration at PLD's floor and then ``epsilon`` of the
    ``z`` it could not evaluate, ``privacy noise`` with and without ``--json``; the three
    refusals of ``privacy noise --epsilon 8 -q 1e-9 -T 1000000000`` were 6 of its 16 s,
    each time. Each is kept as its type, arguments and attributes, never the raised
    exception, whose traceback would hold the frames (and PLD arrays) it was raised in;
    a fresh exception of the same type and fields is raised again."""

    SIZE = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[
            Hashable, tuple[type[BaseException], tuple[Any, ...], dict[str, Any]]
        ]
        self._kept = OrderedDict()

    def remember(self, key: Hashable, refusal: AccountantCannotEvaluate) -> None:
        with self._lock:
            self._kept[key] = (type(refusal), refusal.args, dict(vars(refusal)))
            while len(self._kept) > self.SIZE:
                self._kept.popitem(last=False)

    def raise_if_refused(self, key: Hashable) -> None:
        with self._lock:
            found = self._kept.get(key)
        if found is not None:
            kind, args, fields = found
            again = kind.__new__(kind, *args)  # args as raised; __init__ ran for those
            again.__dict__.update(fields)
            raise again

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


_REFUSALS = _Refusals()

#: the chance a plan allows that some client is sampled into more rounds than it assumes
#: (that client then sits out once its next round would cross the budget)
MOST_ROUNDS_TAIL = 0.05


def likely_most_rounds(
    population: int, sample_rate: float, rounds: int, tail: float = MOST_ROUNDS_TAIL
) -> int:
    """The fewest rounds ``m`` such that, with probability at least ``1 - tail``, no
    client of ``population`` is sampled (Poisson, rate q) into more than ``m`` of
    ``rounds`` rounds: a union bound over the clients of the Binomial(T, q) tail.

    Why: a federation charges each client for the rounds it was in (a round's members
    see each other, so sampling amplifies nothing; see
    :class:`~secagg.dp.accountants.PerClientAccountant`), and its claim is the most
    charged client's. A plan sizes its noise for that client: at q = 0.3, 10 rounds and
    1 000 clients that is 9 rounds, not 10 (q = 0.05, 500 rounds, 2 000 clients: 47)."""
    from scipy import stats

    n = _count("population", population, 1)
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    if q >= 1.0 or t == 0:
        return t

    def rare(m: int) -> bool:
        return n * float(stats.binom.sf(m, t, q)) <= tail

    # the tail P(X > m) falls as m grows: bisect for the first m where the bound holds
    # (a scan from m = 0 took hours at T = 10^9; rare(t) always holds, sf(t) = 0)
    low, high = 0, t
    while low < high:
        middle = (low + high) // 2
        if rare(middle):
            high = middle
        else:
            low = middle + 1
    return low


def likely_cohort_range(
    population: int, sample_rate: float, rounds: int, tail: float = MOST_ROUNDS_TAIL
) -> tuple[int, int]:
    """The fewest and the most clients a Poisson draw at rate ``q`` from ``population``
    puts into a round, over ``rounds`` rounds, with probability at least ``1 - tail``:
    a union bound over the rounds of each Binomial(N, q) tail, ``tail / 2`` a side.

    Why: the distributed mechanism's noise is the cohort's shares, each sized for the
    expected cohort ``q N``, and each round is charged at the honest shares it kept;
    a cohort drawn smaller than expected keeps fewer, so a plan that counted the
    expected cohort understated the epsilon of most Poisson runs (100 clients at
    q = 0.5 over 10 rounds: some round draws 45 or fewer with probability 0.87). As
    :func:`likely_most_rounds` does for the central mechanism, the plan states the
    figure that holds with probability ``1 - tail``. Every client sampled (``q = 1``)
    or no round: the cohort is fixed, ``round(q N)`` (at least 1) both ways."""
    from scipy import stats

    n = _count("population", population, 1)
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    if q >= 1.0 or t == 0:
        fixed = max(1, round(q * n))
        return fixed, fixed
    side = tail / 2

    def rare_below(m: int) -> bool:  # some round draws fewer than m: unlikely enough
        return t * float(stats.binom.cdf(m - 1, n, q)) <= side

    def rare_above(m: int) -> bool:  # some round draws more than m: unlikely enough
        return t * float(stats.binom.sf(m, n, q)) <= side

    low, high = 0, n  # the largest m with rare_below(m): it holds at 0 and fails past n
    while low < high:
        middle = (low + high + 1) // 2
        if rare_below(middle):
            low = middle
        else:
            high = middle - 1
    fewest = low
    low, high = 0, n  # the smallest m with rare_above(m): it holds at n
    while low < high:
        middle = (low + high) // 2
        if rare_above(middle):
            high = middle
        else:
            low = middle + 1
    return max(1, fewest), max(1, low)


def _federation_delta(delta: object, population: int) -> float:
    """``delta`` if it lies in (0, 1) and below ``1 / population``, else a
    :class:`ConfigurationError` saying why (``population`` already checked)."""
    d = _delta(delta)
    if not d < 1 / population:
        raise ConfigurationError(
            f"delta {d:g} is not below 1 / population = 1/{population}: at delta >= 1/N "
            "the guarantee allows releasing one client's data outright"
        )
    return d


def federation_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    rounds: int,
    delta: float,
    population: int,
    accountant: str = "pld",
) -> float:
    """The epsilon a federation will likely claim after ``rounds`` rounds: that of its
    most charged client, unamplified over the :func:`likely_most_rounds` it takes part
    in (every round at q = 1). :func:`epsilon` is the Poisson-amplified figure, which
    holds only where nobody can tell who was sampled.

    ``delta`` must lie below ``1 / population`` (:class:`ConfigurationError`
    otherwise): a larger delta allows releasing one client's data outright, so no
    epsilon at it is a guarantee (the CLI and :class:`~secagg.dp.config.DPConfig`
    refused it; this helper returned a figure)."""
    # a population is what makes this the federation's figure: None is refused here,
    # where plan_epsilon would read it as "no population" (the amplified figure)
    counted = _count("population", population, 1)
    return plan_epsilon(noise_multiplier, sample_rate, rounds, delta, counted, accountant)


@dataclass(frozen=True)
class PlanCharge:
    """The rounds a plan's epsilon is charged for, and at which sampling rate.

    ``most_rounds`` is None for the Poisson-amplified figure (no population, or every
    client sampled): ``rounds`` rounds at ``sample_rate``. With a population and
    ``q < 1`` it is the rounds the most sampled client likely takes part in
    (:func:`likely_most_rounds`, at least 1 once any round runs), charged at rate 1:
    what a secagg federation claims."""

    sample_rate: float
    rounds: int
    most_rounds: int | None = None


def plan_charge(sample_rate: float, rounds: int, population: int | None = None) -> PlanCharge:
    """What :func:`plan_epsilon` charges for ``rounds`` rounds at ``sample_rate`` (with
    ``population``: the federation's figure, see :class:`PlanCharge`).

    Why one function: the CLI's ``privacy epsilon`` and ``privacy noise`` each picked
    the rounds and the rate themselves, beside :func:`federation_epsilon`'s own choice,
    and three copies of the same rule can drift apart."""
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    if population is None or q >= 1.0:
        return PlanCharge(q, t)
    most = likely_most_rounds(population, q, t)
    # a plan with any round charges someone at least once, however rare the sampling
    most = max(most, min(t, 1))
    return PlanCharge(1.0, most, most)


def plan_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    rounds: int,
    delta: float,
    population: int | None = None,
    accountant: str = "pld",
) -> float:
    """The epsilon of a plan: ``rounds`` rounds at ``noise_multiplier`` and
    ``sample_rate``, Poisson-amplified (no ``population``, :func:`epsilon`) or as a
    federation claims it (:func:`federation_epsilon`, ``delta`` below
    ``1 / population``). The one entry point for "the epsilon of this z": the CLI's
    ``privacy epsilon`` and ``privacy noise`` and :func:`federation_epsilon` ask here."""
    if population is not None:
        _federation_delta(delta, _count("population", population, 1))
    charge = plan_charge(sample_rate, rounds, population)
    return epsilon(noise_multiplier, charge.sample_rate, charge.rounds, delta, accountant)
