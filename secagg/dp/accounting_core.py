"""What every part of the epsilon accounting shares: one round as a dp_accounting event.

What lives here
    The accountants offered (:data:`ACCOUNTANTS`; GDP/CLT is not one, it
    *under*-estimates epsilon), the PLD discretisation, the refusal type of an
    accountant that cannot evaluate so little noise (:class:`AccountantCannotEvaluate`,
    and Opacus's PRV case), the dp_accounting version the ledger records, and
    :class:`_Round`: one kind of round (noise multiplier, sampling rate, and for
    adaptive clipping the count's noise) with the event dp_accounting composes,
    ``PoissonSampledDpEvent(q, GaussianDpEvent(z))`` (no sampling event at ``q == 1``:
    sampling everyone amplifies nothing). :func:`adaptive_noise_split` is here too,
    because a round's effective multiplier is that rule read the other way (Andrew
    et al. 2021, Theorem 1: two Gaussians on one sample are one Gaussian of the summed
    precision).

Why a module of its own
    The RDP and PLD compositions (:mod:`secagg.dp.rdp_composition`,
    :mod:`secagg.dp.pld_composition`), a plan's figures (:mod:`secagg.dp.plan_figures`),
    the calibration (:mod:`secagg.dp.calibration`) and the running accountant
    (:mod:`secagg.dp.running_accountant`) all speak of these rounds and refusals; here
    they depend on nothing of one another. :mod:`secagg.dp.accounting` re-exports every
    name, and its docstring is the theory of operation of the whole.
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

import dp_accounting
from dp_accounting import pld, rdp

from secagg.dp._checks import _positive
from secagg.errors import ConfigurationError

__all__ = [
    "ACCOUNTANTS",
    "DEFAULT_COUNT_SENSITIVITY",
    "PLD_VALUE_DISCRETIZATION",
    "AccountantCannotEvaluate",
    "PrvCannotEvaluate",
    "adaptive_noise_split",
    "dp_accounting_version",
]

#: The accountants we trust for a guarantee; GDP/CLT is not one of them.
ACCOUNTANTS = ("pld", "rdp")
#: PLD discretisation: pessimistic, so a coarser value only loosens the bound.
PLD_VALUE_DISCRETIZATION = 1e-4


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


def _accountant(value: object) -> str:
    if value not in ACCOUNTANTS:
        raise ConfigurationError(
            f"accountant must be one of {', '.join(map(repr, ACCOUNTANTS))}, not {value!r} "
            "(GDP/CLT accounting underestimates epsilon and is not offered)"
        )
    return str(value)


def _fresh_accountant(
    accountant: str, discretization: float = PLD_VALUE_DISCRETIZATION
) -> dp_accounting.PrivacyAccountant:
    if accountant == "rdp":
        return rdp.RdpAccountant()
    return pld.PLDAccountant(value_discretization_interval=discretization)


#: The least Poisson sampling rate the accountants evaluate: the least normal float
#: (about 2.2e-308). Below about 5.6e-309 ``1 / q`` overflows and dp_accounting's
#: subsampled Gaussian privacy loss fails inside the library (``ValueError: a must be
#: greater than b`` from ``_log_sub``), a raw exception of a dependency for a library
#: caller. A round at a lower rate is charged at this one (:func:`evaluated_rate`): the
#: subsampled Gaussian's privacy profile grows with the rate (sampling at ``q`` is
#: sampling at ``q / q'``, then a round at ``q'``, and subsampling adds no privacy
#: loss), so the figure bounds the one at the rate that ran: the safe side. At any delta
#: above the rounds' total rate it is 0, as the library gives at this rate.
LEAST_EVALUATED_RATE = sys.float_info.min


def evaluated_rate(q: float) -> float:
    """The sampling rate a round at ``q`` is charged at: ``q``, or
    :data:`LEAST_EVALUATED_RATE` for a (subnormal) rate below it."""
    return max(q, LEAST_EVALUATED_RATE)


def _sampled(q: float, event: dp_accounting.DpEvent) -> dp_accounting.DpEvent:
    # q == 1 is no sampling at all; wrapping it would only cost accuracy in PLD.
    return event if q == 1.0 else dp_accounting.PoissonSampledDpEvent(evaluated_rate(q), event)


def _epsilon_of(
    event: dp_accounting.DpEvent,
    delta: float,
    accountant: str,
    discretization: float = PLD_VALUE_DISCRETIZATION,
) -> float:
    acc = _fresh_accountant(accountant, discretization)
    return float(acc.compose(event).get_epsilon(delta))


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
    try:
        z_delta = (z**-2 - count_multiplier**-2) ** -0.5
    except OverflowError:
        # z**-2 past the floats (z below about 1e-154): the same quantity with z
        # factored out, which has no overflow (z < count_multiplier); the form above
        # stays for every other z, so recorded rounds replay float for float. Before,
        # Python's OverflowError "Numerical result out of range" escaped, from
        # AdaptiveClipping too (tests/dp/test_adaptive_tiny_noise.py)
        z_delta = z / math.sqrt(1 - (z / count_multiplier) ** 2)
    if z_delta / z >= 2:
        warnings.warn(
            f"the clip estimate takes most of the privacy budget: the update's noise "
            f"multiplier is {z_delta:g}, {z_delta / z:.2f}x the total {z:g}; raise "
            "count_noise_stddev",
            stacklevel=2,
        )
    return z_delta


def _effective_multiplier(z_delta: float, count_multiplier: float) -> float:
    """The one Gaussian equivalent to update noise ``z_delta`` plus count noise (with
    ``z_delta`` factored out where its ``**-2`` overflows, as in
    :func:`adaptive_noise_split`)."""
    try:
        return (z_delta**-2 + count_multiplier**-2) ** -0.5
    except OverflowError:
        return z_delta / math.sqrt(1 + (z_delta / count_multiplier) ** 2)


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
