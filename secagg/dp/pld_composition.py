"""Privacy loss distributions: building one round's, composing rounds, reading epsilon.

What lives here
    Everything about the PLD grid: its size limit (:data:`MAX_PLD_POINTS`, refused
    with :class:`PldTooLarge` before anything that large is allocated, and
    :func:`check_pld_rounds` for a plan no noise can fit), one Poisson-subsampled
    Gaussian round's PLD built as dp_accounting builds it but vectorised
    (:func:`_build_sampled_pld`, :class:`_GaussianLoss`: the same pmfs, bit for bit,
    about 10x faster), the incremental composition of runs of identical rounds
    (:class:`_Power`: dp_accounting's FFT self-composition carried on from round to
    round, so a round costs constant time; :class:`_PldComposition`, the ``"pld"``
    accountant's running state, with the ``q == 1`` rounds in closed form), the
    vectorised epsilon of a dense PLD (:func:`_pld_epsilon`, :func:`_dense_epsilon`),
    the from-scratch figure through dp_accounting's own accountant with the sampled
    rounds' PLDs from the cache (:func:`_reference_pld_epsilon`), and the least noise
    PLD can evaluate for a plan (:func:`_least_pld_noise`).

Why a module of its own
    It is the numerics under the default accountant, and the part that costs time and
    memory; the planning and the running accountant only ask it for a composition and
    an epsilon. The theory (what is composed, and why it stays within 1e-8 relative of
    composing the whole history at once) is in :mod:`secagg.dp.accounting`.

    :data:`MAX_PLD_POINTS` is read from this module at the time of use, by
    :mod:`secagg.dp.plan_figures` too, so that a test (or a caller) that lowers the limit
    here lowers it everywhere.

Size: about 590 lines: the vectorised constructions (:class:`_GaussianLoss`,
:func:`_dense_epsilon`) replay dp_accounting's own steps and say so line by line.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import dp_accounting
import numpy as np
from dp_accounting import pld
from dp_accounting.pld import privacy_loss_mechanism
from scipy import fft as sp_fft
from scipy import special

from secagg.dp._checks import _count, _sample_rate
from secagg.dp.accounting_core import (
    LEAST_EVALUATED_RATE,
    PLD_VALUE_DISCRETIZATION,
    AccountantCannotEvaluate,
    _Composition,
    _Round,
    evaluated_rate,
)
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.dp.gaussian_closed_form import _gaussian_epsilon

__all__ = ["MAX_PLD_POINTS", "PldTooLarge", "check_pld_rounds"]

#: Most grid points a PLD (one round's, or a composition's FFT window) may have. Its size
#: grows like 1 / (2 z^2 * discretization): one round at z = 0.001, q = 0.1 is 5.1e9 points
#: (38 GiB; MemoryError), and a calibration toward a huge epsilon walked z that low and was
#: killed for memory. 2^22 points cost about 20 s and 0.8 GB for one round (z ~ 0.05 at
#: the default discretisation); every epsilon that small a z gives is in the hundreds.
MAX_PLD_POINTS = 1 << 22


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


def _pld_points(z: float, q: float, discretization: float) -> float:
    """Grid points of one round's PLD as dp_accounting builds it: the privacy loss over
    the noise's truncated range (its own tail bounds), over the discretisation. Exact to
    a point (the remove and add sides have the same range), and costs microseconds."""
    loss = pld.privacy_loss_mechanism.GaussianPrivacyLoss(z, sampling_prob=evaluated_rate(q))
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
            # z**2 underflows to 0 below z = 1.5e-162 (a ZeroDivisionError) and 1/z**2
            # overflows below 1e-154: both are a precision no float holds, so inf (and
            # epsilon inf, :func:`_gaussian_epsilon`), never an arithmetic traceback
            try:
                self.precision += count / kind.effective_noise_multiplier**2
            except ArithmeticError:
                self.precision = math.inf
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
        if math.isinf(self.precision):  # rounds of noise too small for a float: no bound
            return math.inf
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


def _build_sampled_pld(z: float, q: float, discretization: float) -> Any:
    """One Poisson-subsampled Gaussian round's PLD, as dp_accounting's accountant builds it,
    or :class:`PldTooLarge` before building one above :data:`MAX_PLD_POINTS`.

    Built by :func:`_subsampled_gaussian_pld`: the very pmfs ``from_gaussian_mechanism``
    returns, bit for bit, about 10x faster (a tenth of a second at the default
    discretisation, where the library took a second and a calibration builds a dozen).
    A subnormal ``q`` is charged at :data:`~secagg.dp.accounting_core.LEAST_EVALUATED_RATE`
    (an upper bound), where the library's own arithmetic failed (1 / q overflows)."""
    q = evaluated_rate(q)
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


class _RoundCachePldAccountant(pld.PLDAccountant):
    """dp_accounting's PLD accountant, taking each Poisson-sampled Gaussian round's PLD
    from the running accountants' cache (:data:`_sampled_pld`) instead of building it
    again through ``from_gaussian_mechanism``.

    Why: :meth:`~secagg.dp.running_accountant.PrivacyAccountant.reference_epsilon`, which
    ``audit verify`` falls back to for a central row whose claim lies above its replay,
    rebuilt that PLD on every call: 0.55 s of its 0.7-1.0 s of CPU at z = 1.1, q = 0.5,
    once per such row. The cached PLD holds the pmfs the library builds, bit for bit
    (:func:`_build_sampled_pld`), and all the rest (the walk over the events,
    ``self_compose(count)``, the composition onto the identity, the epsilon) is the
    library's own code, so the figure is the library's to the last bit
    (tests/dp/test_reference_epsilon_cached_pld.py keeps the old computation as its
    oracle). An event the cache would not build the same way (not add/remove, a rate of
    0, 1 or below :data:`~secagg.dp.accounting_core.LEAST_EVALUATED_RATE`, no noise, a PLD
    above :data:`MAX_PLD_POINTS`) takes the library's own branch, as before."""

    def _maybe_compose(self, event: dp_accounting.DpEvent, count: int, do_compose: bool) -> Any:
        if do_compose and self._is_cached_round(event):
            base = _sampled_pld(
                event.event.noise_multiplier,
                event.sampling_probability,
                self._value_discretization_interval,
            )
            self._pld = self._pld.compose(base.self_compose(count))
            return None
        return super()._maybe_compose(event, count, do_compose)

    def _is_cached_round(self, event: dp_accounting.DpEvent) -> bool:
        """Whether ``event`` is a round whose PLD :data:`_sampled_pld` builds as the
        library's branch for it would (same rate, same noise, same relation)."""
        if not (
            isinstance(event, dp_accounting.PoissonSampledDpEvent)
            and isinstance(event.event, dp_accounting.GaussianDpEvent)
            and self.neighboring_relation == _ADD_OR_REMOVE
        ):
            return False
        z, q = event.event.noise_multiplier, event.sampling_probability
        return (
            isinstance(z, float)
            and isinstance(q, float)
            and math.isfinite(z)
            and z > 0
            and LEAST_EVALUATED_RATE <= q < 1.0
            and _pld_points(z, q, self._value_discretization_interval) <= MAX_PLD_POINTS
        )


def _reference_pld_epsilon(
    event: dp_accounting.DpEvent,
    delta: float,
    discretization: float = PLD_VALUE_DISCRETIZATION,
) -> float:
    """``event``'s epsilon at ``delta`` through a fresh dp_accounting PLD accountant
    (:func:`~secagg.dp.accounting_core._epsilon_of`'s figure, bit for bit), its sampled
    rounds' PLDs from the cache (:class:`_RoundCachePldAccountant`)."""
    accountant = _RoundCachePldAccountant(value_discretization_interval=discretization)
    return float(accountant.compose(event).get_epsilon(delta))


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
