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
happens, merging runs of identical rounds into one ``SelfComposedDpEvent`` (so
1000 rounds cost one PLD self-composition, not 1000 convolutions). Its
:attr:`~PrivacyAccountant.history` is plain JSON for the privacy ledger, with
the accountant and dp_accounting version, and
:meth:`PrivacyAccountant.from_history` recomputes the same epsilon from it: an
auditor needs nothing but the ledger to re-check the number.

*Distributed discrete Gaussian* (Kairouz, Liu and Steinke, ICML 2021). With
secure aggregation every client adds its own discrete Gaussian share in the
integer domain; the sum of ``n`` shares is *close to*, not equal to, a discrete
Gaussian, which the paper's ``tau`` term pays for. :func:`ddg_epsilon`
evaluates their per-round RDP bound, amplifies it by Poisson sampling with the
generic Zhu & Wang (2019) upper bound at integer orders, composes over rounds
and converts to ``(epsilon, delta)`` with dp_accounting's RDP conversion.
Everything there is in the *scaled integer* domain.

Size: about 550 lines: planning (calibration) and the running accountant share one
event model and one set of checks; the DDG analysis is :mod:`secagg.dp.ddg_accounting`.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import dp_accounting
from dp_accounting import pld, rdp
from scipy import optimize

from secagg.errors import ConfigurationError

__all__ = [
    "ACCOUNTANTS",
    "DDG_ORDERS",
    "PLD_VALUE_DISCRETIZATION",
    "PrivacyAccountant",
    "adaptive_noise_split",
    "ddg_epsilon",
    "dp_accounting_version",
    "epsilon",
    "inflated_l2_bound",
    "noise_multiplier_for",
    "poisson_subsampled_rdp_bound",
]

#: The accountants we trust for a guarantee; GDP/CLT is not one of them.
ACCOUNTANTS = ("pld", "rdp")
#: PLD discretisation: pessimistic, so a coarser value only loosens the bound.
PLD_VALUE_DISCRETIZATION = 1e-4
#: Integer Renyi orders of the DDG analysis (those of the paper's code).
from secagg.dp.ddg_accounting import DDG_ORDERS  # noqa: E402  (the DDG analysis owns it)

#: Upper end of the calibration bracket: beyond this "noise" is the signal's 10^4-fold.
MAX_NOISE_MULTIPLIER = 1e4
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
    """:func:`epsilon` without the checks (also reachable where ``epsilon`` is shadowed)."""
    if t == 0:
        return 0.0
    event = dp_accounting.SelfComposedDpEvent(_sampled(q, dp_accounting.GaussianDpEvent(z)), t)
    return _epsilon_of(event, delta, accountant, discretization)


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
    threshold, so noise below ``z / (1 + tolerance)`` would overspend.

    Why not ``dp_accounting.calibrate_dp_mechanism`` as is: its bracket search
    starts at ``z`` near 0, where PLD is slow and memory-hungry, and each PLD
    evaluation at 1e-4 costs up to seconds. So we go coarse to fine: RDP
    (milliseconds at any ``z``) to 5 %, then PLD at a 10x coarser discretisation,
    then the real accountant in a bracket of width ``tolerance`` around that,
    which is usually settled in two or three evaluations. Each stage only
    supplies a starting point: the last one is judged by the real accountant.
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
    return _calibrate(eps_fn(acc), target, guess=guess, tol=tol, first_step=1 + tol)


def _calibrate(
    eps_of: Callable[[float], float],
    target: float,
    *,
    guess: float,
    tol: float,
    first_step: float = 1.1,
) -> float:
    """Smallest evaluated ``z`` with ``eps_of(z) <= target``, within ``tol`` of the threshold.

    Every evaluation is memoised and sorted into the feasible (``<= target``)
    or infeasible side; Brent's method on ``log eps(log z)`` narrows the gap and
    a final bisection guarantees the tolerance even if Brent stops early. The
    feasible side is what is returned, so the budget is never exceeded.
    """
    seen: dict[float, float] = {}

    def eps(z: float) -> float:
        if z not in seen:
            seen[z] = eps_of(z)
        return seen[z]

    hi = min(max(guess, 1e-3), MAX_NOISE_MULTIPLIER)
    step = 1.25
    while eps(hi) > target:
        if hi >= MAX_NOISE_MULTIPLIER:
            raise ConfigurationError(
                f"epsilon {target:g} is unreachable: even noise_multiplier "
                f"{MAX_NOISE_MULTIPLIER:g} spends {eps(hi):.4g}; allow a larger epsilon or "
                "delta, or plan fewer rounds or a lower sample_rate"
            )
        hi = min(hi * step, MAX_NOISE_MULTIPLIER)
        step *= step
    lo = hi / first_step
    while eps(lo) <= target:
        hi, lo = lo, lo / 1.5
        if lo < 1e-6:
            return hi  # epsilon that generous needs (almost) no noise; never happens in practice

    def gap(log_z: float) -> float:
        value = eps(math.exp(log_z))
        return math.log(max(value, 1e-300) / target) if math.isfinite(value) else 1e300

    log_tol = math.log1p(tol)
    if hi / lo - 1 <= tol * (1 + 1e-9):  # the starting bracket is already tight enough
        return hi
    try:
        optimize.brentq(gap, math.log(lo), math.log(hi), xtol=log_tol / 4, maxiter=60)
    except (ValueError, RuntimeError):
        pass  # the bisection below finishes the job from whatever was evaluated
    while True:
        feasible = min(z for z, e in seen.items() if e <= target)
        below = [z for z, e in seen.items() if e > target and z < feasible]
        if not below:  # cannot happen for a monotone accountant; feasible is still safe
            return feasible
        infeasible = max(below)
        if feasible / infeasible - 1 <= tol * (1 + 1e-9):
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


class PrivacyAccountant:
    """The engine's running accountant for client-level (or record-level) rounds.

    Call :meth:`step` once per *released* round, with the noise that was really
    added; :meth:`epsilon` is then the spend so far at the fixed ``delta``. The
    ``unit`` (``"client"`` or ``"record"``) travels into the ledger because an
    epsilon means nothing without what it protects.
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
        self._cached: float | None = 0.0

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
        self._append(kind, 1)

    def _append(self, kind: _Round, count: int) -> None:
        if self._runs and self._runs[-1][0] == kind:
            self._runs[-1][1] += count
        else:
            self._runs.append([kind, count])
        self._cached = None

    @property
    def rounds(self) -> int:
        """Rounds recorded so far."""
        return sum(count for _, count in self._runs)

    def epsilon(self) -> float:
        """Epsilon spent so far at ``self.delta`` (0.0 before the first round)."""
        if self._cached is None:
            parts = [
                dp_accounting.SelfComposedDpEvent(kind.event(self.accountant), count)
                for kind, count in self._runs
            ]
            event = parts[0] if len(parts) == 1 else dp_accounting.ComposedDpEvent(parts)
            self._cached = _epsilon_of(event, self.delta, self.accountant)
        return self._cached

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
