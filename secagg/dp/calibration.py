"""Calibration: the least noise multiplier whose epsilon stays within a budget.

What lives here
    :func:`noise_multiplier_for` (DP-FedAvg: coarse to fine, RDP, then a 10x coarser
    PLD, then the real accountant in a bracket of the tolerance), its federation form
    :func:`federation_noise_multiplier`, :func:`noise_multiplier_after` (DP-SGD after
    earlier releases, against any accountant's ``spent(z)``, e.g. Opacus's PRV),
    :func:`noise_for_budget` (the answer as a person copies it: rounded up to its printed
    digits, with that ``z``'s own epsilon), the shared search (:func:`_calibrate`, and
    :func:`_narrow`, the ITP method: never more evaluations than bisection plus one),
    and :class:`NoiseFloorWarning`, said when the budget is met only from above because
    the accountant cannot evaluate less noise.

Why a module of its own
    A search is not a figure: it asks :mod:`secagg.dp.plan_figures` (or a caller's
    accountant) for many, memoises them, and always returns a ``z`` that was itself
    evaluated and meets the budget, rounded up. Its floor handling (PLD cannot evaluate
    too little noise, and is not monotone close to that floor) is most of its length.

Size: about 660 lines: the search and its floor cases, each with the run that showed
why it is needed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from secagg.dp._checks import _count, _delta, _positive, _sample_rate
from secagg.dp.accounting_core import (
    PLD_VALUE_DISCRETIZATION,
    AccountantCannotEvaluate,
    _accountant,
)
from secagg.dp.config import MAX_NOISE_MULTIPLIER, PrivacyCostWarning
from secagg.dp.display import shown
from secagg.dp.gaussian_closed_form import subsampled_epsilon_bound
from secagg.dp.plan_figures import (
    PlanCharge,
    _fedavg_epsilon,
    _federation_delta,
    likely_most_rounds,
    plan_charge,
    plan_epsilon,
)
from secagg.dp.pld_composition import _least_pld_noise, check_pld_rounds
from secagg.errors import BudgetUnreachable, ConfigurationError

__all__ = [
    "BudgetNoise",
    "NoiseFloorWarning",
    "federation_noise_multiplier",
    "noise_for_budget",
    "noise_multiplier_after",
    "noise_multiplier_for",
    "printed_noise_multiplier",
]


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

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by its fields (its constructor takes keywords only, which an
        exception's default pickling cannot call), so that a calibration's memo, its
        warnings included, can go to another process (a Ray client host)."""
        fields = {
            "noise_multiplier": self.noise_multiplier,
            "epsilon": self.epsilon,
            "target_epsilon": self.target_epsilon,
            "unevaluable": self.unevaluable,
            "accountant": self.accountant,
            "pld_above_rdp": self.pld_above_rdp,
        }
        return (_rebuilt_warning, (type(self), fields))


def _rebuilt_warning(kind: type[NoiseFloorWarning], fields: dict[str, Any]) -> NoiseFloorWarning:
    """A :class:`NoiseFloorWarning` from its fields (its unpickling)."""
    return kind(**fields)


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
