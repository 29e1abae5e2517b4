"""Privacy accounting: how much epsilon a plan or a finished run has spent.

Theory of operation
-------------------
*Client-level DP-FedAvg.* Every round each client joins independently with
probability ``q`` (Poisson sampling), the sum of the participants' updates,
each clipped to L2 norm ``C``, gets Gaussian noise of std ``z * C``. Under
add/remove-one-client adjacency one round is the Poisson-subsampled Gaussian
mechanism and ``T`` rounds are its adaptive ``T``-fold composition::

    SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(z)), T)

(without the sampling event when ``q == 1``: sampling everyone amplifies
nothing). We never evaluate that event ourselves: Google's ``dp_accounting``
does, with one of two accountants.

* ``"pld"`` (default): privacy loss distributions with a pessimistic
  discretisation of 1e-4. The tightest upper bound we have; it is what the
  engine reports.
* ``"rdp"``: Renyi DP at dp_accounting's default orders. 7-135 % looser than
  PLD on our reference table (dp-notes 2.4), but fast at any ``z``, and an
  independent cross-check.

GDP/CLT accounting is deliberately absent: it *under*-estimates epsilon.

*Adaptive clipping* (Andrew et al. 2021) releases, per round, the noised update
sum (multiplier ``z_delta``) and a noised count of unclipped clients
(sensitivity 1/2, std ``sigma_b``, so multiplier ``2 sigma_b``). Two Gaussian
mechanisms on the same sample compose to exactly one Gaussian with
``z^-2 = z_delta^-2 + (2 sigma_b)^-2`` (their Theorem 1: the privacy loss of a
pair of independent Gaussians is that of one Gaussian with the summed
precision). RDP accounts the composed event as it is; dp_accounting 0.6.0's PLD
cannot take a Poisson-sampled composed event, so PLD is given the single
Gaussian of the effective ``z``. Both are exact descriptions of the same round;
the tests check that RDP gives the same number both ways.

*Running accountant.* :class:`PrivacyAccountant` records each round as it
happens, merging runs of identical rounds into one ``SelfComposedDpEvent``. Its
:attr:`~PrivacyAccountant.history` is plain JSON for the privacy ledger, with
the accountant and dp_accounting version, and
:meth:`PrivacyAccountant.from_history` recomputes the same epsilon from it: an
auditor needs nothing but the ledger to re-check the number.

*Constant time per round* (reliability review D7). The server asks for epsilon
after every round and ``secagg audit verify`` after every row, so recomputing the
whole history each time made a round cost O(T) and a T-row audit O(T^2). Instead:

* Rounds where every client is sampled (``q == 1``) under ``"pld"`` use the closed
  form: Gaussians compose to one Gaussian with ``z^-2 = sum_i z_i^-2`` (T rounds at
  ``z`` are one at ``z / sqrt(T)``, adaptive rounds entering with their effective
  ``z``), and one Gaussian's epsilon is exact (Balle and Wang 2018, Theorem 8:
  ``delta(eps) = Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu)``, ``mu = 1/z``),
  solved for epsilon in microseconds. The discretised PLD dp_accounting builds for
  it (2-9 s at T = 100, 48 s at T = 1 000: its grid widens with sqrt(T)) is a pessimistic
  approximation of this same number: it lies above it by at most the
  discretisation, ``PLD_VALUE_DISCRETIZATION`` (1e-4) per run of identical rounds.
* Sampled rounds (``q < 1``) under ``"pld"`` are composed incrementally: a run
  of identical rounds is dp_accounting's own self-composition (the FFT of one
  round's PLD raised to the ``k``-th power, read in the window of its Chernoff tail
  bound), carried on: the accountant keeps the spectrum and multiplies one more
  round in, and epsilon costs one inverse FFT per side (add, remove) and a scan of
  the upper tail, whatever ``k`` (the grid itself widens like sqrt(k): 22 ms at
  T = 100, 38 ms at T = 1 000 against 1.2 s from scratch). Earlier runs (a restart
  with another z) enter as a fixed prefix pmf in the same product. The result
  differs from composing the whole history at once only by float rounding in FFTs
  of other lengths: the tests bound it by 1e-8 relative (measured 4e-10 at
  T = 1 000, 2e-9 at T = 10 000), far inside the ledger's 1e-6.
* ``"rdp"`` keeps the sum of the rounds' RDP curves and adds one curve per round
  (each kind of round's curve computed once): the same sum dp_accounting forms.
* Mixed histories (sampled rounds and ``q == 1`` rounds, e.g. a restart that
  changed the sampling) under ``"pld"`` compose the sampled PLD with one
  discretised Gaussian of the closed-form ``z`` (kept while it does not change):
  correct, but while the current rounds are the ``q == 1`` ones that Gaussian PLD
  is rebuilt every round (0.1-0.5 s), and it grows with them as before.

Epsilon is read from a PLD by cumulative sums over its upper tail rather than
dp_accounting's loop over every grid point (:func:`_dense_epsilon`, the same walk).
A trial copy (``copy.deepcopy``, as the budget check makes one before a round)
shares a small memo with its original, so the round that is then really charged
is not composed twice. :meth:`PrivacyAccountant.reference_epsilon` is the old
from-scratch computation, kept as the reference the tests compare with and for
ledgers whose rows were written with it.

*Distributed discrete Gaussian* (Kairouz, Liu and Steinke, ICML 2021). With
secure aggregation every client adds its own discrete Gaussian share in the
integer domain; the sum of ``n`` shares is *close to*, not equal to, a discrete
Gaussian, which the paper's ``tau`` term pays for. :func:`ddg_epsilon`
evaluates their per-round RDP bound, amplifies it by Poisson sampling with the
generic Zhu & Wang (2019) upper bound at integer orders, composes over rounds
and converts to ``(epsilon, delta)`` with dp_accounting's RDP conversion.
Everything there is in the *scaled integer* domain.

*A plan's figures.* :func:`plan_epsilon` is the one entry point for the epsilon of a
given ``z`` (amplified, or with a population the federation's, :func:`plan_charge`
saying which rounds at which rate), and :func:`noise_for_budget` the noise for a budget
as a person reads it: the search's ``z`` rounded up to its printed digits, with that
``z``'s own epsilon, within the budget. ``secagg privacy`` prints their figures.

Size: about 1 800 lines: planning (calibration, a plan's figures) and the running
accountant share one event model, one closed form and one set of checks; the search
(:func:`_calibrate`, :func:`_narrow`) and the incremental PLD composition
(:class:`_Power`) are most of it. The DDG analysis is :mod:`secagg.dp.ddg_accounting`.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import dp_accounting
import numpy as np
from dp_accounting import pld, rdp
from dp_accounting.pld import privacy_loss_mechanism
from scipy import fft as sp_fft
from scipy import optimize, special

from secagg.dp.config import MAX_NOISE_MULTIPLIER, PrivacyCostWarning
from secagg.dp.display import shown
from secagg.errors import BudgetUnreachable, ConfigurationError

__all__ = [
    "ACCOUNTANTS",
    "DDG_ORDERS",
    "MAX_PLD_POINTS",
    "PLD_VALUE_DISCRETIZATION",
    "AccountantCannotEvaluate",
    "BudgetNoise",
    "NoiseFloorWarning",
    "PlanCharge",
    "PldTooLarge",
    "PrivacyAccountant",
    "PrvCannotEvaluate",
    "adaptive_noise_split",
    "ddg_epsilon",
    "dp_accounting_version",
    "epsilon",
    "federation_epsilon",
    "federation_noise_multiplier",
    "gaussian_epsilon",
    "inflated_l2_bound",
    "likely_most_rounds",
    "noise_for_budget",
    "noise_multiplier_after",
    "noise_multiplier_for",
    "plan_charge",
    "plan_epsilon",
    "poisson_subsampled_rdp_bound",
    "printed_noise_multiplier",
]

#: The accountants we trust for a guarantee; GDP/CLT is not one of them.
ACCOUNTANTS = ("pld", "rdp")
#: PLD discretisation: pessimistic, so a coarser value only loosens the bound.
PLD_VALUE_DISCRETIZATION = 1e-4
#: Integer Renyi orders of the DDG analysis (those of the paper's code).
from secagg.dp.ddg_accounting import DDG_ORDERS  # noqa: E402  (the DDG analysis owns it)

#: Most grid points a PLD (one round's, or a composition's FFT window) may have. Its size
#: grows like 1 / (2 z^2 * discretization): one round at z = 0.001, q = 0.1 is 5.1e9 points
#: (38 GiB; MemoryError), and a calibration toward a huge epsilon walked z that low and was
#: killed for memory. 2^22 points cost about 20 s and 0.8 GB for one round (z ~ 0.05 at
#: the default discretisation); every epsilon that small a z gives is in the hundreds.
MAX_PLD_POINTS = 1 << 22


class AccountantCannotEvaluate(ConfigurationError):
    """The accountant cannot evaluate so little noise (its numerics, not the budget): a
    calibration treats such a ``z`` as no candidate and stops at the least noise it can
    evaluate (:class:`NoiseFloorWarning`); anything else that fails still raises."""


class PrvCannotEvaluate(AccountantCannotEvaluate):
    """Opacus's PRV accountant cannot evaluate a DP-SGD history: its privacy loss
    domain reaches where ``exp`` overflows in float64, or its discretisation failed
    ("Discrete mean differs significantly from continuous mean"). RDP
    (``accountant="rdp"``) has no such limit.

    Why a type: below about z = 0.05 a calibration toward a large epsilon walked into
    that failure and aborted (``epsilon=10000``), and where the domain overflowed
    without failing PRV answered about 709 + log q (707.5 for z = 0.01, q = 0.1, one
    step, whose true epsilon is over 5 000), a figure that flatters the run."""

    def __init__(self, message: str, *, history: Sequence[tuple[float, float, int]]) -> None:
        self.history = tuple(history)
        super().__init__(message)


class PldTooLarge(AccountantCannotEvaluate):
    """A PLD would need more than :data:`MAX_PLD_POINTS` grid points: refused before it
    is built. RDP accounting (``accountant="rdp"``) has no grid and takes any ``z``.

    ``points`` is the size it would need; ``noise_multiplier`` and ``sample_rate`` the
    round it was sized for; ``rounds`` how many were composed (None: one round's PLD is
    already too large, so the noise is what to change, not the rounds). A command line
    names its own flags from these instead of repeating the library's words."""

    def __init__(
        self,
        message: str,
        *,
        points: float,
        noise_multiplier: float,
        sample_rate: float,
        rounds: int | None = None,
    ) -> None:
        self.points = points
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate
        self.rounds = rounds
        super().__init__(message)


class NoiseFloorWarning(PrivacyCostWarning):
    """A calibration met the budget only from above, stopped by the least noise its
    accountant can evaluate: the returned ``z`` (``noise_multiplier``, the least evaluated
    noise within the budget, for PLD rounded up as below) spends ``epsilon`` of
    ``target_epsilon`` (that ``z``'s own figure, as evaluated), and the search's next
    step down, ``unevaluable``, the accountant could not evaluate. The least noise that
    meets the budget lies below ``z``: under the floor, or between ``unevaluable`` and
    ``z``, so ``z`` may be up to ``excess`` (``z / unevaluable``: at most 1.5, a step of
    the search, and for PLD up to 0.1 % more, see below) times the noise the accountant
    would have found there. RDP (``accountant="rdp"``) has no such floor and may find
    less noise. The returned ``z`` is safe (it meets the budget by its own figure), just
    not the smallest: the search does not refine that step, as every PLD evaluation near
    the floor builds a PLD near :data:`MAX_PLD_POINTS` (about 20 s each).

    From :func:`noise_multiplier_for` (PLD) the returned ``z`` is the search's rounded up
    to what ``secagg privacy noise`` prints (4 decimals, or 4 significant digits below
    0.1) whenever PLD evaluates that rounded ``z`` within the budget, and ``epsilon`` is
    its figure: the warning, the caller and the CLI then quote one ``z`` and one epsilon.
    Why: PLD's epsilon is not monotone in ``z`` this close to its floor
    (``epsilon(z, 1e-9, 10**9, 1e-5)`` is 1.45, 0.034, 3.06, 7.95, 0.034 at z = 0.4332,
    0.43322, 0.43325, 0.43328, 0.4333), so the warning's "0.433238 spends epsilon 7.966"
    (the unrounded z's figure beside a rounded-up z) and the CLI's "z = 0.4333, epsilon
    0.03413" disagreed. ``pld_above_rdp`` is ``(z, pld, rdp)`` when PLD's figure at a ``z``
    it evaluated there exceeded RDP's (an upper bound, which a valid PLD figure never
    exceeds): PLD's numerics are unstable there, and the message says so. The figure
    quoted is still PLD's, never lowered to RDP's.

    Why the warning at all: ``noise_multiplier_for(8, 1e-5, 1e-9, 10**9)`` returned
    z = 0.4333, which spends epsilon 0.034, and said nothing: a caller took it for the
    noise epsilon 8 needs. The message rounds ``z`` up at 6 significant digits (the
    returned PLD ``z`` mostly has fewer and is then shown exactly), ``epsilon`` and
    ``excess`` up, and ``unevaluable`` down (no z below it can be evaluated either)."""

    def __init__(
        self,
        *,
        noise_multiplier: float,
        epsilon: float,
        target_epsilon: float,
        unevaluable: float,
        accountant: str = "PLD",
        pld_above_rdp: tuple[float, float, float] | None = None,
    ) -> None:
        self.noise_multiplier = noise_multiplier
        #: ``(z, pld, rdp)``: PLD's epsilon at a ``z`` it evaluated here exceeded RDP's
        #: upper bound there, so PLD's figures are unstable this close to its floor
        self.pld_above_rdp = pld_above_rdp
        #: which accountant has the floor: "PLD" (noise_multiplier_for) or "PRV"
        #: (Opacus's, for DP-SGD's noise_multiplier_after)
        self.accountant = accountant
        self.epsilon = epsilon
        self.target_epsilon = target_epsilon
        self.unevaluable = unevaluable
        #: the most by which ``noise_multiplier`` may exceed the least noise PLD could
        #: have found (1.0 when the refused z lies above it, which a search never reports)
        self.excess = max(1.0, noise_multiplier / unevaluable) if unevaluable > 0 else math.inf
        z = shown(noise_multiplier, 6, significant=True)
        super().__init__(
            f"epsilon {target_epsilon:g} is met only from above: noise_multiplier {z} spends "
            f"epsilon {shown(epsilon, 4, significant=True)}, and {accountant} cannot evaluate "
            f"{shown(unevaluable, 6, significant=True, lower=True)}, the search's next step "
            f"down; the least noise that meets the budget is below {z}: under what "
            f"{accountant} can "
            f"evaluate, or at most {shown(self.excess, 3, significant=True)}x less; "
            "accountant='rdp' may find less noise" + _unstable_note(pld_above_rdp)
        )


def _unstable_note(pld_above_rdp: tuple[float, float, float] | None) -> str:
    """The :class:`NoiseFloorWarning` sentence on PLD's instability, or nothing. The ``z``
    is exact (``repr``): the figures this close to the floor jump within its 6th digit."""
    if pld_above_rdp is None:
        return ""
    at, pld_figure, rdp_figure = pld_above_rdp
    return (
        f"; PLD is unstable this close to its floor: at z = {at!r} it gave epsilon "
        f"{shown(pld_figure, 4, significant=True)}, above RDP's upper bound "
        f"{shown(rdp_figure, 4, significant=True)} there, so its figures here may be off "
        "either way"
    )


def _pld_points(z: float, q: float, discretization: float) -> float:
    """Grid points of one round's PLD as dp_accounting builds it: the privacy loss over
    the noise's truncated range (its own tail bounds), over the discretisation. Exact to
    a point (the remove and add sides have the same range), and costs microseconds."""
    loss = pld.privacy_loss_mechanism.GaussianPrivacyLoss(z, sampling_prob=q)
    tail = loss.privacy_loss_tail()
    span = loss.privacy_loss(tail.lower_x_truncation) - loss.privacy_loss(tail.upper_x_truncation)
    return span / discretization


def _check_pld_size(z: float, q: float, discretization: float) -> None:
    points = _pld_points(z, q, discretization)
    if not points <= MAX_PLD_POINTS:
        raise PldTooLarge(
            f"noise_multiplier {z:g} at sample_rate {q:g} needs a PLD of {points:.3g} points "
            f"(the limit is {MAX_PLD_POINTS}): too little noise for PLD accounting in memory; "
            "use accountant='rdp' (an upper bound at any noise) or more noise",
            points=points,
            noise_multiplier=z,
            sample_rate=q,
        )


def check_pld_rounds(
    sample_rate: float, rounds: int, discretization: float = PLD_VALUE_DISCRETIZATION
) -> None:
    """Refuse, with :class:`PldTooLarge`, ``rounds`` Poisson-sampled rounds that PLD cannot
    compose within :data:`MAX_PLD_POINTS` even at :data:`MAX_NOISE_MULTIPLIER`, the most
    noise a calibration tries. Milliseconds: one round's PLD at that noise has a dozen
    points, and the composition's size follows from its tail bounds without building it.

    Why: the composed grid widens with the rounds (about as their square root) and
    narrows with the noise, so past this size no noise a calibration tries can be
    evaluated. ``noise_multiplier_for(10, 1e-5, 0.5, 10**9)`` evaluated its way up to
    z = 10^4 and then called epsilon 10 "unreachable ... spends inf", where RDP answers
    at once (z = 8494). With ``sample_rate`` 1 the closed form composes any number of
    rounds, and nothing is refused."""
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 0)
    if q == 1.0 or t == 0:
        return
    z = MAX_NOISE_MULTIPLIER
    base = _build_sampled_pld(z, q, discretization)
    pmfs = [base._pmf_remove] + ([] if base._symmetric else [base._pmf_add])
    points = max(_Power(pmf).points(t) for pmf in pmfs)
    if points > MAX_PLD_POINTS:
        raise PldTooLarge(
            f"{t} rounds at sample_rate {q:g} compose to a PLD of {points:.3g} points even "
            f"at noise_multiplier {z:g}, the most a calibration tries (the limit is "
            f"{MAX_PLD_POINTS}): too many rounds for PLD accounting in memory; use "
            "accountant='rdp' (an upper bound for any number of rounds) or fewer rounds",
            points=points,
            noise_multiplier=z,
            sample_rate=q,
            rounds=t,
        )


#: Sensitivity of the adaptive-clipping count: clients report ``1[unclipped] - 1/2``.
DEFAULT_COUNT_SENSITIVITY = 0.5

_UNITS = ("client", "record")
_NEIGHBOURING = "add_or_remove_one"


def dp_accounting_version() -> str:
    """The installed dp_accounting version; the ledger records it with every number."""
    try:
        return metadata.version("dp-accounting")
    except metadata.PackageNotFoundError:  # pragma: no cover - vendored copy without metadata
        return "unknown"


# --- argument checks (shared with the DDG analysis) ----------------------------

from secagg.dp._checks import _count, _delta, _positive, _sample_rate  # noqa: E402


def _accountant(value: object) -> str:
    if value not in ACCOUNTANTS:
        raise ConfigurationError(
            f"accountant must be one of {', '.join(map(repr, ACCOUNTANTS))}, not {value!r} "
            "(GDP/CLT accounting underestimates epsilon and is not offered)"
        )
    return str(value)


# --- DP-FedAvg with Poisson client sampling ----------------------------------


def _fresh_accountant(
    accountant: str, discretization: float = PLD_VALUE_DISCRETIZATION
) -> dp_accounting.PrivacyAccountant:
    if accountant == "rdp":
        return rdp.RdpAccountant()
    return pld.PLDAccountant(value_discretization_interval=discretization)


def _sampled(q: float, event: dp_accounting.DpEvent) -> dp_accounting.DpEvent:
    # q == 1 is no sampling at all; wrapping it would only cost accuracy in PLD.
    return event if q == 1.0 else dp_accounting.PoissonSampledDpEvent(q, event)


def _epsilon_of(
    event: dp_accounting.DpEvent,
    delta: float,
    accountant: str,
    discretization: float = PLD_VALUE_DISCRETIZATION,
) -> float:
    acc = _fresh_accountant(accountant, discretization)
    return float(acc.compose(event).get_epsilon(delta))


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
    accountant's, so a plan and the run it plans agree); see the module docstring.
    A refusal (:class:`AccountantCannotEvaluate`) is remembered too (:class:`_Refusals`)."""
    if t == 0:
        return 0.0
    key = (z, q, t, delta, accountant, discretization, MAX_PLD_POINTS)
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


# --- the Gaussian mechanism in closed form (every client sampled) ---------------


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


@functools.lru_cache(maxsize=4096)  # pure: the server asks once per round, the plan many times
def _gaussian_epsilon(z: float, delta: float) -> float:
    """:func:`gaussian_epsilon` without the checks."""
    mu = 1.0 / z
    if _gaussian_delta(mu, 0.0) <= delta:
        return 0.0
    high = mu * mu / 2 + mu * math.sqrt(2 * math.log(1.25 / delta)) + 1.0
    while _gaussian_delta(mu, high) > delta:
        high *= 2
    root = optimize.brentq(
        lambda eps: _gaussian_delta(mu, eps) - delta, 0.0, high, xtol=1e-14, rtol=1e-15
    )
    # brentq lands within its tolerance on either side; step up until delta holds
    eps, step = float(root), max(float(root), 1.0) * 1e-15
    while _gaussian_delta(mu, eps) > delta:
        eps, step = eps + step, step * 2
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


def federation_noise_multiplier(
    epsilon: float,
    delta: float,
    sample_rate: float,
    rounds: int,
    population: int,
    accountant: str = "pld",
) -> float:
    """The smallest noise multiplier whose :func:`federation_epsilon` stays within
    ``epsilon`` (the server's budget makes a client sampled more often sit out);
    ``delta`` below ``1 / population``, as :func:`federation_epsilon`."""
    most = likely_most_rounds(population, sample_rate, rounds)
    _federation_delta(delta, population)
    return noise_multiplier_for(epsilon, delta, 1.0, max(1, most), accountant)


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


def printed_noise_multiplier(noise_multiplier: float) -> float:
    """``noise_multiplier`` as a person reads it, rounded *up* at the precision
    :func:`~secagg.dp.display.shown` prints (4 decimals, or 4 significant digits below
    0.1): never less noise than was computed, and the number whose epsilon is stated.
    ``float(shown(z))``, in one place for :func:`noise_for_budget` and the PLD floor."""
    return float(shown(noise_multiplier))


#: how many steps up :func:`noise_for_budget` takes, at most, where the accountant puts
#: the rounded-up noise above the budget (PLD's discretisation is not exactly monotone in
#: z near its floor): each 0.01 % more noise, and at least one unit of the last printed digit
_BUDGET_ROUNDING_STEPS = 10


@dataclass(frozen=True)
class BudgetNoise:
    """The noise multiplier for a budget as printed, and the epsilon of exactly that.

    ``noise_multiplier`` is ``float(text)``; ``epsilon`` is :func:`plan_epsilon` of it
    (not of the unrounded search result), at most ``target_epsilon``; ``charge`` the
    rounds it was charged for."""

    text: str
    noise_multiplier: float
    epsilon: float
    target_epsilon: float
    charge: PlanCharge


def noise_for_budget(
    epsilon: float,
    delta: float,
    sample_rate: float,
    rounds: int,
    population: int | None = None,
    accountant: str = "pld",
) -> BudgetNoise:
    """The least noise multiplier a person can copy (rounded up, as printed) whose
    :func:`plan_epsilon` stays within ``epsilon``, with that epsilon.

    :func:`noise_multiplier_for` searches; the figure printed is rounded up
    (:func:`printed_noise_multiplier`) and its epsilon is computed by
    :func:`plan_epsilon`, the same call ``privacy epsilon`` makes for that z. Should
    the accountant put the rounded z above the budget (PLD is not exactly monotone
    near its floor), z is raised by 0.01 % (at least one unit of its last printed
    digit) until it does not, at most :data:`_BUDGET_ROUNDING_STEPS` times
    (:class:`BudgetUnreachable` beyond).

    Why here: ``privacy noise`` rounded and re-evaluated in the CLI, with its own copy
    of the rounds and rate a federation is charged, and printed the epsilon it found
    even above the budget it was asked for."""
    target = _positive("epsilon", epsilon)
    if population is not None:
        _federation_delta(delta, _count("population", population, 1))
    charge = plan_charge(sample_rate, rounds, population)
    found = noise_multiplier_for(target, delta, charge.sample_rate, charge.rounds, accountant)
    z = printed_noise_multiplier(found)
    spent = plan_epsilon(z, sample_rate, rounds, delta, population, accountant)
    for _ in range(_BUDGET_ROUNDING_STEPS):
        if spent <= target:
            break
        z = printed_noise_multiplier(math.nextafter(z, math.inf) * (1 + 1e-4))
        spent = plan_epsilon(z, sample_rate, rounds, delta, population, accountant)
    if not spent <= target:
        raise BudgetUnreachable(
            f"epsilon {target:g}: the noise multiplier found ({shown(found)}) rounded up, "
            f"and {_BUDGET_ROUNDING_STEPS} steps of 0.01 % above it, all spend more than the "
            f"budget (the last, {shown(z)}: {shown(spent, 4, significant=True)}); the "
            f"{accountant} accountant is not monotone here: use the rdp accountant",
            epsilon=target,
            noise_multiplier=z,
            spent=spent,
        )
    return BudgetNoise(shown(z), z, spent, target, charge)


def noise_multiplier_for(
    epsilon: float,
    delta: float,
    sample_rate: float,
    rounds: int,
    accountant: str = "pld",
    tolerance: float = 1e-3,
) -> float:
    """The smallest noise multiplier whose ``rounds`` rounds stay within ``epsilon``.

    The answer is rounded *up*: the returned ``z`` was itself evaluated and
    meets the budget, and it is within a relative ``tolerance`` of the exact
    threshold, so noise below ``z / (1 + tolerance)`` would overspend. Except at
    PLD's floor: where the search's next step down cannot be evaluated it stops at
    ``z`` and warns (:class:`NoiseFloorWarning`, whose ``excess`` bounds how far above
    the least noise PLD could find ``z`` may be): safe, but possibly more noise than needed.

    Why not ``dp_accounting.calibrate_dp_mechanism`` as is: its bracket search
    starts at ``z`` near 0, where PLD is slow and memory-hungry, and each PLD
    evaluation at 1e-4 costs up to seconds. So we go coarse to fine: RDP
    (milliseconds for most ``z`` and ``q``; about a second an evaluation where
    dp_accounting's fractional orders do not converge, as at ``q = 0.5``:
    ``noise_multiplier_for(3, 1e-5, 0.5, 50)`` spends 15 of its 19 s there) to 5 %,
    then PLD at a 10x coarser discretisation, then the real accountant in a bracket of
    width ``tolerance`` around that, which is usually settled in two or three
    evaluations. Each stage only supplies a starting point: the last one is judged by
    the real accountant.
    """
    target = _positive("epsilon", epsilon)
    d = _delta(delta)
    q = _sample_rate(sample_rate)
    t = _count("rounds", rounds, 1)
    acc = _accountant(accountant)
    tol = _positive("tolerance", tolerance)
    if tol >= 0.5:
        raise ConfigurationError(f"tolerance is relative and must lie in (0, 0.5), not {tol!r}")

    def eps_fn(name: str, vdi: float = PLD_VALUE_DISCRETIZATION) -> Callable[[float], float]:
        return lambda z: _fedavg_epsilon(z, q, t, d, name, vdi)

    if acc == "rdp":
        return _calibrate(eps_fn("rdp"), target, guess=1.0, tol=tol)
    check_pld_rounds(q, t)  # before any search: no noise it tries could be evaluated
    floor: list[tuple[float, float, float]] = []
    one_round = _least_pld_noise(q, 1) if q < 1.0 else None  # milliseconds: a lower bound
    if one_round is not None and subsampled_epsilon_bound(one_round, q, t, d) <= target:
        # an upper bound meets the budget already below the least noise PLD can evaluate
        # (one round's, and T rounds' is more): the threshold lies below that floor, and
        # the answer is the floor. The search toward it built PLDs of millions of points
        # (20 s each) in both stages: noise_multiplier_for(1e9, 1e-5, 0.1, 10) and
        # (8, 1e-5, 1e-9, 1) ran over a minute. Any other budget takes the search below.
        least = _least_pld_noise(q, t) or one_round
        z = _calibrate(eps_fn(acc), target, guess=least, tol=tol, first_step=1 + tol, floor=floor)
        return _pld_floor_warned(z, target, floor, q, t, d)
    try:
        guess = _calibrate(eps_fn("rdp"), target, guess=1.0, tol=0.05)
    except ConfigurationError:  # RDP is looser: PLD may still reach the target
        guess = MAX_NOISE_MULTIPLIER
    try:
        coarse = eps_fn(acc, 10 * PLD_VALUE_DISCRETIZATION)
        guess = _calibrate(coarse, target, guess=guess, tol=tol / 2)
    except ConfigurationError:
        guess = MAX_NOISE_MULTIPLIER
    # coarser PLD is more pessimistic, so ``guess`` normally meets the budget already
    z = _calibrate(eps_fn(acc), target, guess=guess, tol=tol, first_step=1 + tol, floor=floor)
    return _pld_floor_warned(z, target, floor, q, t, d)


def _floor_warning(
    z: float, target: float, floor: list[tuple[float, float, float]], accountant: str = "PLD"
) -> NoiseFloorWarning | None:
    """The :class:`NoiseFloorWarning` of a search that stopped at the floor of
    ``accountant`` (PLD's, or PRV's for DP-SGD) at ``z``, or None if it did not."""
    if not floor:
        return None
    _, spent, unevaluable = floor[0]
    return NoiseFloorWarning(
        noise_multiplier=z,
        epsilon=spent,
        target_epsilon=target,
        unevaluable=unevaluable,
        accountant=accountant,
    )


def _pld_floor_warned(
    z: float, target: float, floor: list[tuple[float, float, float]], q: float, t: int, d: float
) -> float:
    """:func:`noise_multiplier_for`'s answer when its PLD search stopped at the floor (``z``
    itself otherwise): ``z`` rounded up as ``privacy noise`` prints it, if PLD evaluates that
    within the budget (else ``z``), with a :class:`NoiseFloorWarning` quoting that answer's
    own epsilon, and RDP's bound where PLD's figure at ``z`` or the answer exceeded it.

    Why: PLD is not monotone this close to its floor, so the unrounded ``z``'s epsilon
    (7.966 for ``(8, 1e-5, 1e-9, 10**9)``) said nothing of the rounded ``z`` the CLI
    printed (0.4333: 0.03413). The rounded ``z`` is evaluated with the very call
    :func:`epsilon` makes (memoised: the CLI's own evaluation then costs nothing), and is
    more noise than ``z`` by at most 0.1 %; RDP costs milliseconds."""
    if not floor:
        return z
    _, spent, unevaluable = floor[0]
    answer, answer_spent = z, spent
    rounded = printed_noise_multiplier(z)  # rounded up: never less noise than z
    if rounded != z:
        try:
            figure = _fedavg_epsilon(rounded, q, t, d, "pld")  # epsilon()'s own memo key
        except AccountantCannotEvaluate:
            figure = math.inf
        if figure <= target:
            answer, answer_spent = rounded, figure
    above: tuple[float, float, float] | None = None
    for at, figure in ((z, spent), (answer, answer_spent)):
        bound = _fedavg_epsilon(at, q, t, d, "rdp")
        if figure > bound:
            above = (at, figure, bound)
            break
    warnings.warn(
        NoiseFloorWarning(
            noise_multiplier=answer,
            epsilon=answer_spent,
            target_epsilon=target,
            unevaluable=unevaluable,
            pld_above_rdp=above,
        ),
        stacklevel=3,
    )
    return answer


def _floor_warned(z: float, target: float, floor: list[tuple[float, float, float]]) -> float:
    """``z``, with a :class:`NoiseFloorWarning` if the search stopped at PLD's floor."""
    warning = _floor_warning(z, target, floor)
    if warning is not None:  # the answer is the floor's, not the budget's: say so (still safe)
        warnings.warn(warning, stacklevel=3)
    return z


#: how much coarser the grid :func:`_least_pld_noise` sizes compositions on, at most:
#: their points scale with 1 / discretisation (within 1e-4 relative at 100x, slightly
#: above, while the coarse grid keeps some 40 000 points at the size limit)
_FLOOR_COARSENING = 100


def _least_pld_noise(
    q: float, t: int, discretization: float = PLD_VALUE_DISCRETIZATION
) -> float | None:
    """About the least noise multiplier whose ``t`` rounds at ``q`` PLD can compose within
    :data:`MAX_PLD_POINTS` (at most 0.1 % above it; None if not even
    :data:`MAX_NOISE_MULTIPLIER` fits). A second or less: one round's size is exact in
    microseconds, and a composition's is sized on a grid up to 100x coarser (times that)."""

    def fits(z: float) -> bool:
        if not _pld_points(z, q, discretization) <= MAX_PLD_POINTS:
            return False
        if t == 1:
            return True
        base = _build_sampled_pld(z, q, discretization * coarsening)
        pmfs = [base._pmf_remove] + ([] if base._symmetric else [base._pmf_add])
        return max(_Power(pmf).points(t) for pmf in pmfs) * coarsening <= MAX_PLD_POINTS

    coarsening = max(1, min(_FLOOR_COARSENING, MAX_PLD_POINTS >> 15))

    low, high = 1e-4, MAX_NOISE_MULTIPLIER
    if not fits(high):
        return None
    while high / low > 1 + 1e-3:  # bisect in log z: about 24 steps
        middle = math.sqrt(low * high)
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def noise_multiplier_after(
    prior: Sequence[tuple[float, float, int]],
    epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    spent: Callable[[float], float],
    tolerance: float = 3e-3,
    accountant: str = "the accountant",
    floor_out: list[NoiseFloorWarning] | None = None,
) -> float:
    """The smallest noise multiplier ``z`` for ``steps`` more releases at ``sample_rate``
    after the ``prior`` ``(z, q, steps)`` releases such that ``spent(z)``, the real
    accountant's epsilon of that whole history (e.g. Opacus's PRV), is within ``epsilon``.

    Rounded up like :func:`noise_multiplier_for`: the returned ``z`` was evaluated by
    ``spent`` and meets the budget, and ``z / (1 + tolerance)`` would not (relative in
    ``z``; 3e-3 keeps epsilon within about 0.3 % below the target).

    Why: a DP-SGD trainer calibrating by Opacus's bisection asks its accountant about
    a dozen times (0.3-1 s each for PRV), for every branch, at every start. Epsilon is
    close to a power law in ``z`` (``log eps`` nearly linear in ``log z``), so secant
    steps in log-log space land within the tolerance in two or three evaluations, and
    one more confirms the bracket; the memoised search of :func:`noise_multiplier_for`
    finishes from there if they did not, by ITP, which needs at most one evaluation more
    than bisection whatever the curve. With ``prior`` releases eps levels off at their
    cost, not at 0; where the plain steps do not land, that level is evaluated once and
    the steps fit eps minus it (a target 1 % above the level took 17-25 evaluations).
    ``prior`` and ``sample_rate`` are in ``spent``; they are validated here so that a bad
    history is refused before any evaluation.

    A ``z`` that ``spent`` cannot evaluate (it raises :class:`AccountantCannotEvaluate`,
    e.g. :class:`PrvCannotEvaluate` below about z = 0.05) is no candidate: where the
    search's next step down is one, it stops at the least evaluated noise that meets the
    budget and says so with a :class:`NoiseFloorWarning` naming ``accountant`` (or,
    given ``floor_out``, appends it there instead: ``warnings.catch_warnings`` is no
    way to collect it from a thread). Any other failure of ``spent`` raises.
    """
    target = _positive("epsilon", epsilon)
    _delta(delta)
    _sample_rate(sample_rate)
    _count("steps", steps, 1)
    for entry in prior:
        if len(entry) != 3:
            raise ConfigurationError(f"a prior release is (z, q, steps), not {entry!r}")
    tol = _positive("tolerance", tolerance)
    if tol >= 0.5:
        raise ConfigurationError(f"tolerance is relative and must lie in (0, 0.5), not {tol!r}")
    seen: dict[float, float] = {}
    unevaluable: dict[float, AccountantCannotEvaluate] = {}

    def eps(z: float) -> float:
        if z not in seen:
            try:
                value = float(spent(z))
            except AccountantCannotEvaluate as exc:  # no candidate, as in _calibrate
                unevaluable[z] = exc
                value = math.inf
            seen[z] = value if math.isfinite(value) else math.inf
        return seen[z]

    z, slope = 1.0, 1.0  # eps ~ 1/z: the Gaussian's slope, a fair first guess
    while not math.isfinite(eps(z)) and z < MAX_NOISE_MULTIPLIER:
        z *= 4  # no usable value this close to zero noise
    # With prior releases, eps(z) levels off at what the prior alone spends, not at 0, and
    # a power law in z fits eps minus that level, not eps: near the level the plain secant
    # crept up in small steps (17-25 evaluations for a target within 1 % of the level).
    # So once three plain steps have not landed, the level is evaluated (one more call, at
    # the most noise there is) and the secant continues on eps - level.
    level = 0.0
    previous: tuple[float, float] | None = None
    miss = math.inf  # |log of eps - level over target - level| at the last step
    for step in range(10):  # secant steps on log(eps - level)(log z), aimed tol/2 above
        e = eps(z)
        if not (math.isfinite(e) and e > level):
            break
        if step == 3 and prior and level == 0.0:
            top = eps(MAX_NOISE_MULTIPLIER)
            if not (math.isfinite(top) and top < target):
                break  # unreachable (or unevaluable): _calibrate says which, by name
            level, previous, miss = top, None, math.inf  # measured without the level: moot
        if previous is not None and previous[0] != z and previous[1] != e:
            measured = -math.log((e - level) / (previous[1] - level)) / math.log(z / previous[0])
            if measured > 0:
                slope = measured
        # clamped before exp: the step is cut to [1/8, 8] below anyway, and a target of
        # 1e-300 made it exp(1600), an OverflowError instead of "unreachable"
        gap = min(max((math.log(e - level) - math.log(target - level)) / slope, -30.0), 30.0)
        ratio = math.exp(gap) * (1 + tol / 2)
        if e <= target and ratio >= 1 / (1 + tol / 2):
            break  # within the tolerance already: the bracket check below confirms it
        previous = (z, e)
        z = min(max(z * min(max(ratio, 1 / 8), 8), 1e-3), MAX_NOISE_MULTIPLIER)
        low, high = _bracket(seen, target)
        if low is not None and high is not None:
            # once the threshold is bracketed, a secant step must stay inside it and shrink
            # the miss (a power law's secant does so by far), or ITP takes over, which
            # needs no more than bisection's count plus one from there
            if not low < z < high or abs(gap) >= miss:
                z = high
                break
        miss = abs(gap)
    floor: list[tuple[float, float, float]] = []
    z = _calibrate(
        eps,
        target,
        guess=z,
        tol=tol,
        first_step=1 + tol,
        seen=seen,
        floor=floor,
        unevaluable=unevaluable,
        level=level,
    )
    warning = _floor_warning(z, target, floor, accountant)
    if warning is not None:
        if floor_out is None:
            warnings.warn(warning, stacklevel=2)
        else:
            floor_out.append(warning)
    return z


def _bracket(
    seen: dict[float, float], target: float, *, evaluated_only: bool = True
) -> tuple[float | None, float | None]:
    """``(infeasible, feasible)``: the least ``z`` in ``seen`` that meets ``target`` and the
    largest below it that does not; None for a side not seen yet. An unevaluable ``z``
    (memoised as inf) counts as infeasible only if not ``evaluated_only``: it says the
    accountant could not tell, which brackets nothing unless the search is inside an
    evaluated bracket already."""
    feasible = min((z for z, e in seen.items() if e <= target), default=None)
    if feasible is None:
        return None, None
    below = [
        z
        for z, e in seen.items()
        if e > target and z < feasible and (e < math.inf or not evaluated_only)
    ]
    return (max(below) if below else None), feasible


def _calibrate(
    eps_of: Callable[[float], float],
    target: float,
    *,
    guess: float,
    tol: float,
    first_step: float = 1.1,
    seen: dict[float, float] | None = None,
    floor: list[tuple[float, float, float]] | None = None,
    unevaluable: dict[float, AccountantCannotEvaluate] | None = None,
    level: float = 0.0,
) -> float:
    """Smallest evaluated ``z`` with ``eps_of(z) <= target``, within ``tol`` of the threshold.

    Every evaluation is memoised (in ``seen``, which may hold earlier ones) and sorted
    into the feasible (``<= target``) or infeasible side; the ITP method on
    ``log(eps - level)`` against ``log z`` narrows the gap (:func:`_narrow`), never with
    more evaluations than bisection plus one. ``level`` is what ``eps`` tends to at
    infinite noise (earlier releases' cost; 0 without). The feasible side is what is
    returned, so the budget is never exceeded. If the search stops at the least noise the
    accountant can evaluate instead, ``(z, eps_of(z), unevaluable z)`` is appended to ``floor``.
    ``unevaluable`` holds the ``z`` in ``seen`` that could not be evaluated (and gets
    those found here).
    """
    seen = {} if seen is None else seen
    unevaluable = {} if unevaluable is None else unevaluable

    def eps(z: float) -> float:
        if z not in seen:
            try:
                seen[z] = eps_of(z)
            except AccountantCannotEvaluate as exc:  # too little noise to hold: no candidate
                unevaluable[z] = exc
                seen[z] = math.inf
        return seen[z]

    hi = min(max(guess, 1e-3), MAX_NOISE_MULTIPLIER)
    step = 1.25
    while eps(hi) > target:
        if hi >= MAX_NOISE_MULTIPLIER and hi in unevaluable:
            raise unevaluable[hi]  # the accountant could not evaluate: not "unreachable ... inf"
        if hi >= MAX_NOISE_MULTIPLIER:
            raise BudgetUnreachable(
                f"epsilon {target:g} is unreachable: even noise_multiplier "
                f"{MAX_NOISE_MULTIPLIER:g} spends {shown(eps(hi), 4, significant=True)}; allow "
                "a larger epsilon or delta, or plan fewer rounds or a lower sample_rate",
                epsilon=target,
                noise_multiplier=hi,
                spent=eps(hi),
            )
        hi = min(hi * step, MAX_NOISE_MULTIPLIER)
        step *= step
    # an earlier (the secant's) infeasible evaluation below hi may bracket the threshold
    # already; unevaluable ones do not (inf says nothing of it; the floor check needs them)
    known, hi = _bracket(seen, target)
    assert hi is not None  # hi itself was evaluated and met the target
    lo = known if known is not None and known * first_step >= hi else hi / first_step
    while eps(lo) <= target:
        known, hi = _bracket(seen, target)
        assert hi is not None
        lo = known if known is not None else hi / 1.5
        if lo < 1e-6:
            return hi  # epsilon that generous needs (almost) no noise; never happens in practice
    if lo in unevaluable:
        # the accountant cannot evaluate lo: hi is the least evaluated noise that meets the
        # budget. The threshold lies below hi, under the floor or in (lo, hi): up to
        # hi / lo (1.5) more noise than needed, never less; the warning says by how much
        if floor is not None:
            floor.append((hi, eps(hi), lo))
        return hi

    log_tol = math.log1p(tol)
    if hi / lo - 1 <= tol * (1 + 1e-9):  # the starting bracket is already tight enough
        return hi
    return _narrow(eps, seen, target, log_tol, level)


def _narrow(
    eps: Callable[[float], float],
    seen: dict[float, float],
    target: float,
    log_tol: float,
    level: float = 0.0,
) -> float:
    """The smallest feasible ``z`` once ``eps`` (which memoises into ``seen``) has been
    evaluated on both sides of the threshold: narrowed until ``feasible / infeasible`` is within
    ``exp(log_tol)``, by the ITP method (Oliveira and Takahashi 2020) on
    ``log(eps - level)`` against ``log z``.

    Why ITP and not Brent's method: the accountant is the expensive part (up to a second
    for PRV), and ITP never needs more evaluations than bisection plus one, whatever the
    curve, while interpolating as fast as the secant where ``eps`` is the near power
    law it usually is. Brent's method took 14 evaluations where bisection needs 8 on a
    curve with a knee (a prior release that already spends nearly the whole target,
    or a handful of sparsely sampled steps).
    """

    if not target > level:
        level = 0.0  # no level to subtract from (callers never pass one): plain log eps

    def side(z: float) -> float:
        value = eps(z)
        if not math.isfinite(value):
            return math.inf
        return math.log(max(value - level, 1e-300)) - math.log(target - level)

    def bracket() -> tuple[float, float]:
        infeasible, feasible = _bracket(seen, target, evaluated_only=False)
        assert feasible is not None  # the caller evaluated both sides
        return (feasible if infeasible is None else infeasible), feasible

    infeasible, feasible = bracket()
    if infeasible == feasible:  # cannot happen for a monotone accountant; still safe
        return feasible
    a, b = math.log(infeasible), math.log(feasible)
    f_a, f_b = side(infeasible), side(feasible)
    half_tol = log_tol / 2
    most = max(math.ceil(math.log2((b - a) / log_tol)), 0) + 1  # bisection's count, plus one
    k1 = 0.2 / (b - a)
    for j in range(most + 1):
        if b - a <= log_tol * (1 + 1e-9):
            break
        middle = (a + b) / 2
        reach = half_tol * 2 ** (most - j) - (b - a) / 2
        if math.isfinite(f_a) and math.isfinite(f_b) and f_a != f_b:
            falsi = (f_b * a - f_a * b) / (f_b - f_a)
        else:
            falsi = middle  # an infinite side: no interpolation, bisect
        direction = math.copysign(1.0, middle - falsi)
        truncation = k1 * (b - a) ** 2
        trial = falsi + direction * truncation if truncation <= abs(middle - falsi) else middle
        x = trial if abs(trial - middle) <= reach else middle - direction * reach
        x = min(max(x, a), b)
        z = math.exp(x)
        value = eps(z)
        if value <= target:
            b, f_b = x, side(z)
        else:
            a, f_a = x, side(z)
    while True:  # ITP has met the tolerance by now; bisection is the proof, not the plan
        infeasible, feasible = bracket()
        if infeasible == feasible or feasible / infeasible - 1 <= math.expm1(log_tol) * (1 + 1e-9):
            return feasible
        eps(math.sqrt(feasible * infeasible))


# --- adaptive clipping -------------------------------------------------------


def adaptive_noise_split(noise_multiplier: float, count_noise_stddev: float) -> float:
    """The update's noise multiplier ``z_delta`` once the clip estimate takes its share.

    Andrew et al. 2021, Theorem 1: a round that noises the update sum with
    multiplier ``z_delta`` and the unclipped count (sensitivity 1/2) with std
    ``sigma_b`` is the Gaussian mechanism with ``z^-2 = z_delta^-2 + (2 sigma_b)^-2``.
    So one budgets the total ``z`` and this returns
    ``z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2``. ``z >= 2 sigma_b`` leaves nothing
    for the update and is refused; ``z_delta >= 2 z`` (the count eats most of the
    budget) only warns, as in TensorFlow Federated.
    """
    z = _positive("noise_multiplier", noise_multiplier)
    sigma_b = _positive("count_noise_stddev", count_noise_stddev)
    count_multiplier = sigma_b / DEFAULT_COUNT_SENSITIVITY
    if z >= count_multiplier:
        raise ConfigurationError(
            f"noise_multiplier {z:g} must be below 2 * count_noise_stddev = "
            f"{count_multiplier:g}, or the count alone exceeds the budget; raise "
            "count_noise_stddev or lower noise_multiplier"
        )
    z_delta = (z**-2 - count_multiplier**-2) ** -0.5
    if z_delta / z >= 2:
        warnings.warn(
            f"the clip estimate takes most of the privacy budget: the update's noise "
            f"multiplier is {z_delta:g}, {z_delta / z:.2f}x the total {z:g}; raise "
            "count_noise_stddev",
            stacklevel=2,
        )
    return z_delta


def _effective_multiplier(z_delta: float, count_multiplier: float) -> float:
    """The one Gaussian equivalent to update noise ``z_delta`` plus count noise."""
    return (z_delta**-2 + count_multiplier**-2) ** -0.5


# --- the running accountant --------------------------------------------------


@dataclass(frozen=True)
class _Round:
    """One kind of round; runs of identical rounds share one of these and a count."""

    noise_multiplier: float  # on the update sum (z_delta when adaptive)
    sample_rate: float
    count_noise_stddev: float | None = None
    count_sensitivity: float = DEFAULT_COUNT_SENSITIVITY

    @property
    def adaptive(self) -> bool:
        return self.count_noise_stddev is not None

    @property
    def effective_noise_multiplier(self) -> float:
        if self.count_noise_stddev is None:
            return self.noise_multiplier
        return _effective_multiplier(
            self.noise_multiplier, self.count_noise_stddev / self.count_sensitivity
        )

    def event(self, accountant: str) -> dp_accounting.DpEvent:
        if self.count_noise_stddev is None:
            inner: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(self.noise_multiplier)
        elif accountant == "rdp":
            inner = dp_accounting.ComposedDpEvent(
                [
                    dp_accounting.GaussianDpEvent(self.noise_multiplier),
                    dp_accounting.GaussianDpEvent(self.count_noise_stddev / self.count_sensitivity),
                ]
            )
        else:  # PLD 0.6.0 refuses Poisson-sampled composed events; same mechanism, one Gaussian
            inner = dp_accounting.GaussianDpEvent(self.effective_noise_multiplier)
        return _sampled(self.sample_rate, inner)


class _Composition:
    """The composed privacy loss of the rounds added so far; :meth:`add` extends it.

    Copies are shallow and safe to share: :meth:`add` rebinds, never mutates, what
    it holds (PLDs and arrays), so a trial copy cannot change its original.
    """

    def add(self, kind: _Round, count: int) -> None:
        raise NotImplementedError

    def epsilon(self, delta: float) -> float:
        raise NotImplementedError

    def copy(self) -> _Composition:
        return copy.copy(self)


class _RdpComposition(_Composition):
    """The sum of the rounds' RDP curves (each kind's curve computed once)."""

    def __init__(self) -> None:
        self.orders: np.ndarray | None = None
        self.total: np.ndarray | None = None

    def add(self, kind: _Round, count: int) -> None:
        orders, curve = _rdp_curve(kind)
        self.orders = orders
        self.total = count * curve if self.total is None else self.total + count * curve

    def epsilon(self, delta: float) -> float:
        if self.total is None:
            return 0.0
        eps, _ = rdp.rdp_privacy_accountant.compute_epsilon(self.orders, self.total, delta)
        return float(eps)


#: tail mass each composition may cut off the grid (dp_accounting's default), pessimistically
#: charged to the infinite loss
_TAIL_MASS = 1e-15


#: a round's pmf -> dp_accounting's Chernoff orders and its log moment generating function
_LOG_MGFS: weakref.WeakKeyDictionary[Any, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def _log_mgfs(pmf: Any) -> tuple[np.ndarray, np.ndarray]:
    """The orders ``compute_self_convolve_bounds`` uses for ``pmf`` and its log MGF at
    each (one pass over the grid per pmf, remembered while the pmf lives)."""
    found = _LOG_MGFS.get(pmf)
    if found is None:
        probs = np.asarray(pmf._probs, dtype=np.float64)
        orders = np.concatenate((np.arange(-20, 0), np.arange(1, 21))) / len(probs)
        grid = np.arange(len(probs))
        values = np.array([special.logsumexp(grid * order, b=probs) for order in orders])
        found = _LOG_MGFS[pmf] = (orders, values)
    return found


class _Power:
    """One side (remove or add) of ``prefix * base^k`` for a growing ``k``, kept as a
    spectrum: one more round is one multiplication and, when epsilon is asked, one
    inverse FFT. This is dp_accounting's own self-composition (``self_convolve``: the
    FFT of the base raised to the k-th power, read in the window its Chernoff bound
    gives, the tail beyond charged to the infinite loss), carried on from round to
    round instead of redone, with the prefix (the earlier runs' composed pmf)
    multiplied in. Immutable: :meth:`advanced` returns a new one."""

    def __init__(self, base: Any, prefix: Any = None) -> None:
        base, prefix = base.to_dense_pmf(), None if prefix is None else prefix.to_dense_pmf()
        self.base = np.asarray(base._probs, dtype=np.float64)
        self.base_lower, self.base_infinity = int(base._lower_loss), float(base._infinity_mass)
        self.step = float(base._discretization)
        self.prefix = None if prefix is None else np.asarray(prefix._probs, dtype=np.float64)
        self.prefix_lower = 0 if prefix is None else int(prefix._lower_loss)
        self.prefix_infinity = 0.0 if prefix is None else float(prefix._infinity_mass)
        self.orders, self.log_mgfs = _log_mgfs(base)
        self.count = 0
        self.length = 0
        self.base_spectrum: np.ndarray | None = None
        self.spectrum: np.ndarray | None = None  # rfft(prefix) * rfft(base)^count
        self._pmf: Any = None

    def _window(self, count: int) -> tuple[int, int]:
        """dp_accounting's ``compute_self_convolve_bounds`` for ``base^count``."""
        bounds = (count * self.log_mgfs + math.log(2 / _TAIL_MASS)) / self.orders
        upper, lower = (len(self.base) - 1) * count, 0
        finite = np.isfinite(bounds)
        above, below = finite & (self.orders > 0), finite & (self.orders < 0)
        if above.any():
            upper = min(upper, math.ceil(float(bounds[above].min())))
        if below.any():
            lower = max(lower, math.floor(float(bounds[below].max())))
        return lower, upper

    def points(self, count: int) -> int:
        """Grid points of ``prefix * base^count``: its window, from the tail bounds alone."""
        lower, upper = self._window(count)
        extra = 0 if self.prefix is None else len(self.prefix) - 1
        return max(upper - lower + 1 + extra, len(self.base), extra + 1)

    def advanced(self, count: int, kind: _Round | None = None) -> _Power:
        """This power with ``count`` more rounds of the base (``kind``: the round it is
        the PLD of, named in a refusal)."""
        out = copy.copy(self)
        out.count = self.count + count
        out._pmf = None
        need = out.points(out.count)
        if need > MAX_PLD_POINTS:  # checked before any array of that size exists
            raise PldTooLarge(
                f"{out.count} rounds compose to a PLD of {need} points (the limit is "
                f"{MAX_PLD_POINTS}): use accountant='rdp' (an upper bound) or more noise",
                points=need,
                noise_multiplier=math.nan if kind is None else kind.effective_noise_multiplier,
                sample_rate=math.nan if kind is None else kind.sample_rate,
                rounds=out.count,
            )
        if need > self.length or self.spectrum is None:  # (re)start at a longer length
            out.length = sp_fft.next_fast_len(int(need * 1.25), real=True)
            out.base_spectrum = sp_fft.rfft(self.base, out.length)
            out.spectrum = out.base_spectrum**out.count
            if self.prefix is not None:
                out.spectrum = out.spectrum * sp_fft.rfft(self.prefix, out.length)
        else:
            assert self.base_spectrum is not None
            factor = self.base_spectrum if count == 1 else self.base_spectrum**count
            out.spectrum = self.spectrum * factor
        return out

    def pmf(self) -> Any:
        """The pmf of ``prefix * base^count`` (computed once per power)."""
        if self._pmf is None:
            lower, upper = self._window(self.count)
            extra = 0 if self.prefix is None else len(self.prefix) - 1
            size = upper - lower + 1 + extra
            circular = sp_fft.irfft(self.spectrum, self.length)
            probs = np.roll(circular, -lower)[:size]
            infinity = _TAIL_MASS - math.expm1(
                math.log1p(-self.prefix_infinity) + self.count * math.log1p(-self.base_infinity)
            )
            self._pmf = pld.pld_pmf.DensePLDPmf(
                self.step,
                self.prefix_lower + self.count * self.base_lower + lower,
                probs,
                infinity,
                True,
            )
        return self._pmf


class _PldComposition(_Composition):
    """Unsampled rounds as one Gaussian's precision; sampled rounds as the PLD of the
    earlier runs (``prefix``) times the current run's power, kept per side."""

    def __init__(
        self,
        discretization: float = PLD_VALUE_DISCRETIZATION,
        build: Callable[[float, float, float], Any] | None = None,
    ) -> None:
        self.discretization = discretization
        self.build = build or _sampled_pld  # one round's PLD (calibration's: uncached)
        self.precision = 0.0  # sum of count / z^2 over the q == 1 rounds
        self.kind: _Round | None = None  # the current run of sampled rounds
        self.sides: tuple[_Power, ...] = ()  # (remove,) or (remove, add): prefix * base^k

    def add(self, kind: _Round, count: int) -> None:
        if kind.sample_rate == 1.0:
            self.precision += count / kind.effective_noise_multiplier**2
            return
        if kind != self.kind:  # a new run: what was composed so far becomes its prefix
            base = self.build(
                kind.effective_noise_multiplier, kind.sample_rate, self.discretization
            )
            prefix = self._sampled()
            pmfs = [base._pmf_remove] + ([] if base._symmetric else [base._pmf_add])
            earlier: list[Any] = [None] * len(pmfs)
            if prefix is not None:
                earlier = [prefix._pmf_remove, prefix._pmf_add]
                if base._symmetric:  # the earlier runs' add side cannot be dropped
                    pmfs = [base._pmf_remove, base._pmf_remove]
            self.kind = kind
            self.sides = tuple(_Power(pmf, first) for pmf, first in zip(pmfs, earlier, strict=True))
        self.sides = tuple(side.advanced(count, kind) for side in self.sides)

    def _sampled(self) -> Any:
        """The sampled rounds' PLD (None before the first)."""
        if not self.sides:
            return None
        pmfs = [side.pmf() for side in self.sides]
        return pld.privacy_loss_distribution.PrivacyLossDistribution(*pmfs)

    def epsilon(self, delta: float) -> float:
        sampled = self._sampled()
        if sampled is None:
            return 0.0 if self.precision == 0 else _gaussian_epsilon(self.precision**-0.5, delta)
        if self.precision > 0:  # a mixed history: the q == 1 rounds as one discretised PLD
            sampled = sampled.compose(_gaussian_pld(self.precision**-0.5, self.discretization))
        return _pld_epsilon(sampled, delta)


def _pld_epsilon(distribution: Any, delta: float) -> float:
    """``distribution.get_epsilon_for_delta(delta)``, vectorised.

    dp_accounting 0.6.0 walks the losses one by one in Python (0.2 s for the 600 000
    grid points of 1 000 sampled rounds); this is the same walk over cumulative sums
    (:func:`_dense_epsilon`), for the add and the remove side. A distribution whose
    internals are not the dense pmfs it has now falls back to the library's walk."""
    pmfs = [getattr(distribution, "_pmf_remove", None)]
    if not getattr(distribution, "_symmetric", True):
        pmfs.append(getattr(distribution, "_pmf_add", None))
    values = [_dense_epsilon(pmf, delta) for pmf in pmfs]
    if any(value is None for value in values):
        return float(distribution.get_epsilon_for_delta(delta))
    return float(max(value for value in values if value is not None))


def _dense_epsilon(pmf: Any, delta: float, chunk: int = 1 << 14) -> float | None:
    """The smallest epsilon whose hockey-stick divergence is at most ``delta`` for one
    dense pmf: dp_accounting's ``_get_epsilon_for_delta`` (pld_pmf.py), whose loop
    over descending losses becomes cumulative sums over chunks of ``chunk`` losses,
    stopping at the chunk where the loop would stop; None if ``pmf`` is not dense."""
    try:
        probs = np.asarray(pmf._probs, dtype=np.float64)
        lower, step, infinity = int(pmf._lower_loss), float(pmf._discretization), pmf._infinity_mass
    except AttributeError:
        return None
    if infinity > delta:
        return math.inf
    size = len(probs)
    mass_upper, mass_lower = float(infinity), 0.0  # the loop's running sums
    for top in range(size, 0, -chunk):  # losses from the highest down, a chunk at a time
        p = probs[max(0, top - chunk) : top][::-1]
        losses = (lower + np.arange(top - 1, top - 1 - len(p), -1)) * step
        upper = mass_upper + np.concatenate(([0.0], np.cumsum(p)))
        below = mass_lower + np.concatenate(([0.0], np.cumsum(np.exp(-losses) * p)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log((upper[:-1] - delta) / below[:-1])
        stops = np.flatnonzero((upper[:-1] > delta) & (below[:-1] > 0) & (ratio >= losses))
        flat = np.flatnonzero((upper[1:] >= delta) & (below[1:] == 0))  # exp(-loss) underflows
        stop = int(stops[0]) if stops.size else None
        if flat.size and (stop is None or int(flat[0]) < stop):
            return max(0.0, float(losses[int(flat[0])]))
        if stop is not None:
            mass_upper, mass_lower = float(upper[stop]), float(below[stop])
            break
        mass_upper, mass_lower = float(upper[-1]), float(below[-1])
    if mass_upper <= mass_lower + delta:
        return 0.0
    return math.log((mass_upper - delta) / mass_lower)


_ADD_OR_REMOVE = dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE


@functools.lru_cache(maxsize=64)
def _rdp_curve(kind: _Round) -> tuple[np.ndarray, np.ndarray]:
    """One round's RDP at dp_accounting's default orders (what its accountant adds)."""
    accountant = rdp.RdpAccountant()
    accountant.compose(kind.event("rdp"))
    return accountant.orders, accountant.rdp


def _build_sampled_pld(z: float, q: float, discretization: float) -> Any:
    """One Poisson-subsampled Gaussian round's PLD, as dp_accounting's accountant builds it,
    or :class:`PldTooLarge` before building one above :data:`MAX_PLD_POINTS`.

    Built by :func:`_subsampled_gaussian_pld`: the very pmfs ``from_gaussian_mechanism``
    returns, bit for bit, about 10x faster (a tenth of a second at the default
    discretisation, where the library took a second and a calibration builds a dozen)."""
    _check_pld_size(z, q, discretization)
    return _subsampled_gaussian_pld(
        standard_deviation=z, value_discretization_interval=discretization, sampling_prob=q
    )


class _GaussianLoss(privacy_loss_mechanism.GaussianPrivacyLoss):
    """dp_accounting's subsampled Gaussian privacy loss with ``get_delta_for_epsilon``
    vectorised.

    Why: the library's connect-the-dots construction asks the hockey-stick divergence at
    every grid point, and ``get_delta_for_epsilon`` inverts the privacy loss there one
    point at a time in Python (``inverse_privacy_loss``, about 7 us a call): 80 000 calls
    per side at z = 0.43, q = 1e-9, 90 % of a calibration's 22 s. The inversion below
    performs the same float64 operations in the same order on arrays (numpy's ufuncs give
    the same bits for an array as for each of its elements), so the deltas, and the PLD,
    are the library's exactly (``tests/dp/test_accounting.py`` compares them bit for bit).
    Points where the library takes a special branch (a loss at 0, at or beyond the
    subsampling bound ``log(1 - q)``, where it may raise) go through its own scalar code.
    """

    def _inverse_losses(self, losses: np.ndarray) -> np.ndarray:
        """``[self.inverse_privacy_loss(loss) for loss in losses]``, for ADD or REMOVE with
        ``sampling_prob < 1`` (what :meth:`get_delta_for_epsilon` inverts)."""
        q, s, variance = self.sampling_prob, self.sensitivity, self._standard_deviation**2
        add = self.adjacency_type == privacy_loss_mechanism.AdjacencyType.ADD
        a, c = 1 / q, 1 - 1 / q  # log_a_times_exp_b_plus_c(1/q, b, 1 - 1/q), c < 0
        bound = -math.log(1 - q) if add else math.log(1 - q)
        b = -losses if add else losses
        d = b + np.log(a)
        log_minus_c = np.log(-c)
        # the library's special cases: isclose to the bound (widened 1000-fold: those points
        # take the scalar path, which decides exactly), b == 0, and _log_sub's refusal
        special_case = (
            (np.abs(losses - bound) <= 1e-6 * np.maximum(np.abs(losses), abs(bound)))
            | (b == 0)
            | (log_minus_c >= d)
        )
        with np.errstate(all="ignore"):  # the special points are overwritten below
            without = d + np.log1p(-np.exp(log_minus_c - d))  # _log_sub(d, log(-c))
            if add:
                without = -without
            cutoffs = -0.5 * s - without * variance / s
            if add:
                cutoffs = s + cutoffs
        for i in np.flatnonzero(special_case):
            cutoffs[i] = self.inverse_privacy_loss(losses[i])
        return cutoffs

    def get_delta_for_epsilon(self, epsilon: float | Sequence[float]) -> float | Sequence[float]:
        """The library's ``get_delta_for_epsilon`` (0.6.0), with the cutoffs from
        :meth:`_inverse_losses` instead of a Python loop."""
        adjacency = privacy_loss_mechanism.AdjacencyType
        if (
            isinstance(epsilon, numbers.Number)
            or self.sampling_prob == 1.0
            or (self.adjacency_type not in (adjacency.ADD, adjacency.REMOVE))
        ):
            return super().get_delta_for_epsilon(epsilon)
        epsilons = np.asarray(epsilon)
        deltas = np.zeros_like(epsilons, dtype=float)
        if self.adjacency_type == adjacency.ADD:
            inverse = epsilons < -math.log1p(-self.sampling_prob)
        else:
            inverse = epsilons > math.log1p(-self.sampling_prob)
            deltas[~inverse] = -np.expm1(epsilons[~inverse])
        cutoffs = self._inverse_losses(epsilons[inverse])
        deltas[inverse] = self.mu_upper_cdf(cutoffs) - np.exp(
            epsilons[inverse] + self.mu_lower_log_cdf(cutoffs)
        )
        return np.clip(deltas, 0, 1)


def _subsampled_gaussian_pld(
    standard_deviation: float, value_discretization_interval: float, sampling_prob: float
) -> Any:
    """``pld.privacy_loss_distribution.from_gaussian_mechanism`` with the arguments the
    accountant gives it (sensitivity 1, pessimistic, connect the dots, add/remove), built
    through :class:`_GaussianLoss`: the same steps, with the slow one vectorised."""
    distributions = pld.privacy_loss_distribution

    def one_side(adjacency: Any) -> Any:
        loss = _GaussianLoss(
            standard_deviation,
            sensitivity=1,
            pessimistic_estimate=True,
            log_mass_truncation_bound=-50,
            sampling_prob=sampling_prob,
            adjacency_type=adjacency,
        )
        return distributions._create_pld_pmf_from_monotone_privacy_loss(
            loss,
            pessimistic_estimate=True,
            value_discretization_interval=value_discretization_interval,
            use_connect_dots=True,
        )

    return distributions._pld_for_subsampled_mechanism(one_side, sampling_prob)


@functools.lru_cache(maxsize=4)  # a mixed history's q == 1 part, unchanged in a sampled run
def _gaussian_pld(z: float, discretization: float) -> Any:
    """The PLD of one Gaussian round of multiplier ``z`` (the q == 1 rounds composed)."""
    _check_pld_size(z, 1.0, discretization)
    return pld.privacy_loss_distribution.from_gaussian_mechanism(
        standard_deviation=z,
        value_discretization_interval=discretization,
        neighboring_relation=_ADD_OR_REMOVE,
    )


#: the running accountants' rounds (a PLD is up to a few MB: only the kinds in use);
#: calibration builds its many trial PLDs uncached, so they do not evict these
_sampled_pld = functools.lru_cache(maxsize=16)(_build_sampled_pld)


class _Memo:
    """Results an accountant shares with its trial copies, by history (the last few)."""

    SIZE = 2

    def __init__(self) -> None:
        self.results: OrderedDict[Hashable, tuple[_Composition, float]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[_Composition, float] | None:
        found = self.results.get(key)
        if found is not None:
            self.results.move_to_end(key)
        return found

    def put(self, key: Hashable, composition: _Composition, value: float) -> None:
        self.results[key] = (composition, value)
        self.results.move_to_end(key)
        while len(self.results) > self.SIZE:
            self.results.popitem(last=False)


class PrivacyAccountant:
    """The engine's running accountant for client-level (or record-level) rounds.

    Call :meth:`step` once per *released* round, with the noise that was really
    added; :meth:`epsilon` is then the spend so far at the fixed ``delta``. The
    ``unit`` (``"client"`` or ``"record"``) travels into the ledger because an
    epsilon means nothing without what it protects.

    :meth:`epsilon` costs constant time per round: the rounds charged since the
    last call are composed onto what was composed before (see the module
    docstring); :meth:`reference_epsilon` recomputes from scratch.
    """

    def __init__(self, delta: float, accountant: str = "pld", unit: str = "client") -> None:
        self.delta = _delta(delta)
        self.accountant = _accountant(accountant)
        if unit not in _UNITS:
            raise ConfigurationError(
                f"unit must be one of {', '.join(map(repr, _UNITS))}, not {unit!r}"
            )
        self.unit = str(unit)
        self._runs: list[list[Any]] = []  # [_Round, count]; consecutive identical merged
        self._rounds = 0
        self._pending: list[list[Any]] = []  # [_Round, count] charged since the last epsilon
        self._composition: _Composition = (
            _RdpComposition() if self.accountant == "rdp" else _PldComposition()
        )
        self._memo = _Memo()  # shared with trial copies (see __deepcopy__)
        self._cached: float | None = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> PrivacyAccountant:
        """A trial copy: its own history, the same memo (so that the round it tries is
        not composed again when the original is charged with it)."""
        clone = copy.copy(self)
        clone._runs = [list(run) for run in self._runs]
        clone._pending = [list(run) for run in self._pending]
        clone._composition = self._composition.copy()
        memo[id(self)] = clone
        return clone

    def step(
        self,
        noise_multiplier: float,
        sample_rate: float,
        *,
        count_noise_stddev: float | None = None,
        count_sensitivity: float = DEFAULT_COUNT_SENSITIVITY,
    ) -> None:
        """Record one round.

        ``noise_multiplier`` is the multiplier applied to the update sum this
        round. For an adaptive-clipping round pass ``count_noise_stddev``
        (``sigma_b``): the multiplier is then ``z_delta``, and the round is
        charged as the composition of both releases.
        """
        z = _positive("noise_multiplier", noise_multiplier)
        q = _sample_rate(sample_rate)
        if count_noise_stddev is None:
            kind = _Round(z, q)
        else:
            kind = _Round(
                z,
                q,
                _positive("count_noise_stddev", count_noise_stddev),
                _positive("count_sensitivity", count_sensitivity),
            )
        if self.accountant == "pld" and q < 1.0:  # a round whose PLD cannot be built
            _check_pld_size(kind.effective_noise_multiplier, q, PLD_VALUE_DISCRETIZATION)
        self._append(kind, 1)

    def _append(self, kind: _Round, count: int) -> None:
        for runs in (self._runs, self._pending):
            if runs and runs[-1][0] == kind:
                runs[-1][1] += count
            else:
                runs.append([kind, count])
        self._rounds += count
        self._cached = None

    @property
    def rounds(self) -> int:
        """Rounds recorded so far."""
        return self._rounds

    def epsilon(self) -> float:
        """Epsilon spent so far at ``self.delta`` (0.0 before the first round).

        Composes only the rounds charged since the last call onto what was composed
        before; a trial copy's result for this same history is reused."""
        if self._cached is not None:
            return self._cached
        key = tuple((kind, count) for kind, count in self._runs)
        found = self._memo.get(key)
        if found is not None:
            self._composition, self._cached = found[0].copy(), found[1]
            self._pending.clear()
            return self._cached
        # composed on a copy and kept only when every pending run went in: a run refused
        # half way (PldTooLarge) would otherwise be composed again at the next call
        composition = self._composition.copy()
        for kind, count in self._pending:
            composition.add(kind, count)
        value = composition.epsilon(self.delta)
        self._composition, self._cached = composition, value
        self._pending.clear()
        self._memo.put(key, self._composition.copy(), self._cached)
        return self._cached

    def reference_epsilon(self) -> float:
        """Epsilon from scratch: the whole history as one dp_accounting event, through
        a fresh accountant (what :meth:`epsilon` computed before it was incremental).

        Slow (the cost grows with the rounds at ``q == 1``); the tests compare
        :meth:`epsilon` with it, and ``audit verify`` falls back to it for a claim
        written by that older code."""
        if not self._runs:
            return 0.0
        parts = [
            dp_accounting.SelfComposedDpEvent(kind.event(self.accountant), count)
            for kind, count in self._runs
        ]
        event = parts[0] if len(parts) == 1 else dp_accounting.ComposedDpEvent(parts)
        return _epsilon_of(event, self.delta, self.accountant)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The rounds as JSON-ready ledger entries, one per run of identical rounds.

        Each entry is self-describing (mechanism, sampling, multipliers, count,
        adjacency, unit, accountant and dp_accounting version) so an auditor can
        rebuild the exact dp_accounting events from the ledger alone.
        """
        version = dp_accounting_version()
        out = []
        for kind, count in self._runs:
            entry: dict[str, Any] = {
                "mechanism": "adaptive_clip_gaussian" if kind.adaptive else "gaussian",
                "sampling": "poisson" if kind.sample_rate < 1 else "none",
                "noise_multiplier": kind.noise_multiplier,
                "sample_rate": kind.sample_rate,
                "count": count,
            }
            if kind.adaptive:
                entry["count_noise_stddev"] = kind.count_noise_stddev
                entry["count_sensitivity"] = kind.count_sensitivity
                entry["effective_noise_multiplier"] = kind.effective_noise_multiplier
            entry.update(
                neighboring_relation=_NEIGHBOURING,
                unit=self.unit,
                accountant=self.accountant,
                dp_accounting_version=version,
            )
            out.append(entry)
        return out

    @classmethod
    def from_history(
        cls,
        history: Sequence[Mapping[str, Any]],
        delta: float,
        *,
        accountant: str | None = None,
    ) -> PrivacyAccountant:
        """Rebuild an accountant from :attr:`history` (e.g. parsed from the JSON ledger).

        By default the recorded accountant is used, so :meth:`epsilon` recomputes
        the recorded number; pass ``accountant`` to re-check with the other one.
        A different dp_accounting version only warns: the number may move in a
        late digit, which the auditor should know about but can still judge.
        """
        if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            raise ConfigurationError("history must be a list of ledger entries")
        recorded = {entry.get("accountant") for entry in history if isinstance(entry, Mapping)}
        units = {entry.get("unit") for entry in history if isinstance(entry, Mapping)}
        if len(recorded) > 1 or len(units) > 1:
            raise ConfigurationError(
                "history mixes accountants or privacy units; one ledger is one guarantee"
            )
        chosen = accountant if accountant is not None else (recorded.pop() if recorded else "pld")
        unit = units.pop() if units else "client"
        out = cls(delta, accountant=chosen, unit=unit)
        for i, entry in enumerate(history):
            if not isinstance(entry, Mapping):
                raise ConfigurationError(f"history entry {i} is not a mapping")
        if recorded - {None} != recorded or units - {None} != units:
            raise ConfigurationError("every history entry must name its accountant and unit")
        versions = {entry.get("dp_accounting_version") for entry in history}
        if versions - {dp_accounting_version(), None}:
            warnings.warn(
                f"history was accounted with dp_accounting {sorted(map(str, versions))}, "
                f"recomputing with {dp_accounting_version()}",
                stacklevel=2,
            )
        for i, entry in enumerate(history):
            out._append(*_parse_entry(i, entry))
        return out


def _parse_entry(index: int, entry: object) -> tuple[_Round, int]:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"history entry {index} is not a mapping")
    try:
        mechanism = entry["mechanism"]
        z = _positive("noise_multiplier", entry["noise_multiplier"])
        q = _sample_rate(entry["sample_rate"])
        count = _count("count", entry["count"], 1)
        if entry.get("neighboring_relation", _NEIGHBOURING) != _NEIGHBOURING:
            raise ConfigurationError("only add_or_remove_one adjacency is supported")
        if mechanism == "gaussian":
            return _Round(z, q), count
        if mechanism == "adaptive_clip_gaussian":
            sigma_b = _positive("count_noise_stddev", entry["count_noise_stddev"])
            sens = _positive("count_sensitivity", entry["count_sensitivity"])
            return _Round(z, q, sigma_b, sens), count
        raise ConfigurationError(f"unknown mechanism {mechanism!r}")
    except KeyError as exc:
        raise ConfigurationError(f"history entry {index} lacks {exc.args[0]!r}") from None
    except ConfigurationError as exc:
        raise ConfigurationError(f"history entry {index}: {exc}") from None


# The distributed discrete Gaussian's RDP bound lives in its own module (it does not
# use dp_accounting); its names stay importable from here.
from secagg.dp.ddg_accounting import (  # noqa: E402
    ddg_epsilon,
    inflated_l2_bound,
    poisson_subsampled_rdp_bound,
)
