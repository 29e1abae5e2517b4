"""How many times the noise calibration asks its accountant, and that it still rounds up.

A DP-SGD trainer calibrates its noise by asking its accountant (Opacus's PRV: 0.3-1 s a
call) for the epsilon of the whole history at a trial noise multiplier, for every branch
at every start. ``noise_multiplier_after`` aims secant steps in log-log space and leaves
what they do not settle to ITP (``_narrow``), which never needs more than one evaluation
beyond bisection. These tests pin both: few evaluations on the schedules DP-SGD runs, a
bounded count on any schedule, and the bisection-plus-one bound on any monotone curve.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accounting import MAX_NOISE_MULTIPLIER, _narrow, noise_multiplier_after
from secagg.errors import BudgetUnreachable

TOLERANCE = 3e-3  # noise_multiplier_after's default, relative in z
DELTA = 1e-5

Release = tuple[float, float, int]  # (noise multiplier, sample rate, steps)


@pytest.fixture(autouse=True)
def _quiet_rdp_orders(caplog: pytest.LogCaptureFixture) -> None:
    # dp_accounting logs one warning per RDP order it cannot evaluate at tiny noise.
    # caplog puts the level back after each test: setting it by hand leaked into every
    # later test, and one that counts absl's warnings failed when run after this file.
    caplog.set_level(logging.ERROR, logger="absl")


@functools.lru_cache(maxsize=4096)
def _rdp_of_one_release(noise: float, rate: float) -> np.ndarray:
    """The RDP curve (at dp_accounting's default orders) of one Gaussian release of
    ``noise`` sampled at ``rate``: what ``RdpAccountant`` adds ``count`` times for a
    ``SelfComposedDpEvent`` of it.

    Why cached: a calibration asks about the same prior releases (and the largest noise)
    at every trial noise multiplier, and the sampled Gaussian's RDP at ~150 orders was
    nearly all of this file's time. The sum below adds the curves in the order the
    accountant composed the events, so every epsilon is the accountant's, to the bit."""
    return rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(
        q=rate, noise_multiplier=noise, orders=_ORDERS
    )


_ORDERS = np.array(rdp_privacy_accountant.DEFAULT_RDP_ORDERS)


def recording_accountant(
    q: float, steps: int, prior: list[Release]
) -> tuple[Callable[[float], float], list[float]]:
    """An RDP ``spent(z)`` for ``steps`` releases at rate ``q`` after ``prior``, and the
    list of every ``z`` it was asked about (each ask, a repeated one too)."""
    calls: list[float] = []

    def spent(z: float) -> float:
        calls.append(z)
        composed = np.zeros_like(_ORDERS, dtype=np.float64)
        for noise, rate, count in [(z, q, steps), *prior]:
            composed += count * _rdp_of_one_release(noise, rate)
        return float(rdp_privacy_accountant.compute_epsilon(_ORDERS, composed, DELTA)[0])

    return spent, calls


def calibrate_and_check(q: float, steps: int, prior: list[Release], target: float) -> int | None:
    """Calibrate, check the answer rounds up within the tolerance, and return how many
    evaluations the search made (None if even the most noise there is cannot meet the
    target: refused by name)."""
    spent, calls = recording_accountant(q, steps, prior)
    if spent(MAX_NOISE_MULTIPLIER) > target:
        with pytest.raises(BudgetUnreachable):
            noise_multiplier_after(prior, target, DELTA, q, steps, spent=spent)
        return None
    calls.clear()
    z = noise_multiplier_after(prior, target, DELTA, q, steps, spent=spent)
    evaluations = len(calls)
    assert spent(z) <= target  # the budget holds by the accountant given
    assert spent(z / (1 + 2 * TOLERANCE)) > target  # and a bit less noise would not
    return evaluations


priors = st.lists(
    st.tuples(st.floats(2.0, 50.0), st.sampled_from([0.1, 1.0]), st.integers(1, 3)), max_size=2
)


@settings(max_examples=12, deadline=None)
@given(
    target=st.floats(0.5, 12.0),
    q=st.sampled_from([0.005, 0.05, 0.3, 1.0]),
    epochs=st.floats(1.0, 15.0),
    prior=priors,
    near_level=st.sampled_from([None, 1e-3, 1e-2, 0.1]),
)
def test_a_dpsgd_schedule_is_calibrated_in_a_dozen_evaluations(
    target: float, q: float, epochs: float, prior: list[Release], near_level: float | None
) -> None:
    """At least one epoch of steps, as DP-SGD runs: no more evaluations than Opacus's
    bisection would make (about a dozen), also for a target just above what the prior
    releases alone spend (before: 17-25 there), when that is a budget one would set
    (at least 0.5: a run left 1e-4 of a prior's 0.05 needs z in the thousands)."""
    steps = min(max(1, math.ceil(epochs / q)), 3000)
    if near_level is not None and prior:
        spent, _ = recording_accountant(q, steps, prior)
        level = spent(MAX_NOISE_MULTIPLIER)
        if level >= 0.5:
            target = level * (1 + near_level)
    evaluations = calibrate_and_check(q, steps, prior, target)
    assert evaluations is None or evaluations <= 12


@settings(max_examples=12, deadline=None)
@given(
    target=st.floats(0.5, 12.0),
    q=st.sampled_from([0.005, 0.05, 0.3, 1.0]),
    steps=st.integers(1, 3000),
    prior=priors,
    near_level=st.sampled_from([None, 1e-3, 1e-2, 0.1]),
)
def test_any_schedule_rounds_up_in_a_bounded_number_of_evaluations(
    target: float, q: float, steps: int, prior: list[Release], near_level: float | None
) -> None:
    """A handful of sparsely sampled steps gives eps a knee (flat, then steep) that no
    secant follows; ITP then finishes within bisection's count, so the whole search stays
    bounded (Brent's method took up to 25 on these)."""
    if near_level is not None and prior:
        spent, _ = recording_accountant(q, steps, prior)
        target = spent(MAX_NOISE_MULTIPLIER) * (1 + near_level)
    evaluations = calibrate_and_check(q, steps, prior, target)
    assert evaluations is None or evaluations <= 20


@pytest.mark.parametrize(
    ("q", "steps", "prior", "above_level"),
    [
        (0.3, 222, [(2.0, 1.0, 2)], 0.01),  # found by Hypothesis: 20 evaluations before
        (0.3, 222, [(2.0, 1.0, 2)], 0.001),
        (0.05, 2000, [(2.0, 1.0, 3)], 0.01),
        (1.0, 500, [(4.0, 1.0, 1), (2.0, 0.1, 2)], 0.005),
    ],
)
def test_a_target_just_above_the_prior_s_cost_takes_few_evaluations(
    q: float, steps: int, prior: list[Release], above_level: float
) -> None:
    """eps levels off at the prior's cost, not at 0, so a power law fits eps minus that
    level: the search measures the level once and steps on the difference."""
    spent, _ = recording_accountant(q, steps, prior)
    evaluations = calibrate_and_check(
        q, steps, prior, spent(MAX_NOISE_MULTIPLIER) * (1 + above_level)
    )
    assert evaluations is not None and evaluations <= 12


# --- ITP on any monotone curve -------------------------------------------------------


def curve(kind: str, knee: float, power: float, level: float) -> Callable[[float], float]:
    """A decreasing eps(z) with value ``level`` at infinite noise: a power law, a knee
    (steep below ``knee``, nearly flat above), or a staircase (the worst for any secant)."""
    if kind == "power":
        return lambda z: level + z**-power
    if kind == "knee":
        return lambda z: level + (z / knee) ** (-power * (8 if z < knee else 0.1))
    return lambda z: level + 2.0 ** -math.floor(power * math.log(z / knee))


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["power", "knee", "stairs"]),
    knee=st.floats(0.05, 50.0),
    power=st.floats(0.3, 6.0),
    level=st.sampled_from([0.0, 0.5, 3.0]),
    low=st.floats(1e-3, 100.0),
    ratio=st.floats(1.01, 1e4),
    share=st.floats(0.0, 1.0, exclude_max=True),
)
def test_itp_never_needs_more_than_bisection_plus_one(
    kind: str, knee: float, power: float, level: float, low: float, ratio: float, share: float
) -> None:
    """From a bracket (the threshold lies between ``low`` and ``low * ratio``), on any
    decreasing curve: a feasible answer within the tolerance, in no more evaluations than
    bisection would make plus one."""
    eps_of = curve(kind, knee, power, level)
    high = low * ratio
    top, bottom = eps_of(low), eps_of(high)
    if not top > bottom:
        return  # flat across the bracket (a stair, or below float resolution)
    target = bottom + share * (top - bottom)
    if not top > target:
        return  # rounding put the target on the upper end
    seen: dict[float, float] = {}

    def eps(z: float) -> float:
        if z not in seen:
            seen[z] = eps_of(z)
        return seen[z]

    eps(low), eps(high)
    log_tol = math.log1p(TOLERANCE)
    z = _narrow(eps, seen, target, log_tol, level)
    bisection = max(math.ceil(math.log2(math.log(ratio) / log_tol)), 0)
    assert len(seen) - 2 <= bisection + 1
    assert eps(z) <= target
    below = max(x for x, e in seen.items() if e > target and x < z)
    assert z / below - 1 <= TOLERANCE * (1 + 1e-9)  # within the tolerance, from above
