"""A PRV report inside the counting caps is refused as it arrives when its replay's grid is
too large, and a noise multiplier past a trainer's largest is refused for either accountant.

Within 8 runs and 20 000 runs x steps (the caps until 2026-12-07: the grid's is now the
bound, over the history's distinct pairs) a PRV replay still cost the server seconds in its
own thread as the noise fell and the rate rose (one run of 20 000 steps: z 0.7 3.0 s,
z 1 at q 0.03 4.4 s; z 0.5, q 0.1, 2 000 steps 8.2 s): Opacus's grid follows the
history's epsilon times the square root of its steps. The grid is now sized as the
report arrives (:func:`~secagg.dp.accountants.prv_replay_points`, RDP curves only) and
held to :data:`~secagg.dp.release.MAX_PRV_REPLAYED_POINTS`. Nothing here runs a PRV
replay: each refusal is checked to start none.
"""

from __future__ import annotations

import math

import pytest
from _replays_started import replays_started
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants import PRVAccountant
from opacus.accountants.analysis.prv import PoissonSubsampledGaussianPRV

from secagg.dp.accountants import distinct_runs, prv_replay_points
from secagg.dp.release import (
    MAX_PRV_REPLAYED_POINTS,
    RecordRelease,
    RecordReport,
    UnaccountedContribution,
)

DELTA = 1e-5
#: simulate's charged feature statistics (z = 10 / sqrt(3), every row), then DP-SGD
STATISTICS = (5.773502691896258, 1.0, 1)


@pytest.mark.parametrize(
    "history",
    [
        ((0.5, 0.1, 2000),),  # 8.2 s of PRV replay, 7.7 million points
        ((1.0, 0.03, 20000),),  # 4.4 s, 4.8 million
        ((0.7, 0.01, 20000),),  # 3.0 s, 3.0 million
    ],
)
def test_a_costly_prv_history_inside_the_counting_caps_is_refused_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch, history: tuple[tuple[float, float, int], ...]
) -> None:
    asked = replays_started(monkeypatch)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = RecordReport("prv", DELTA, 100.0, history, 1.0)
    problem = release.report_problem("h-a", report)
    assert problem is not None and "PRV grid" in problem, problem
    release.take_report("h-a", report)
    with pytest.raises(UnaccountedContribution, match="PRV grid"):
        release.require_reports(["h-a"])
    assert asked == []  # no replay was started


def test_a_history_prv_cannot_evaluate_is_refused_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """z 0.001 at q 0.5: PRV's domain passes where exp overflows, so its replay gives no
    finite figure. Refused only at the replay, after the sum, it aborted the round and
    excluded the branch; as it arrives the branch is a dropout of one round."""
    asked = replays_started(monkeypatch)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = RecordReport("prv", DELTA, 1.0, ((1e-3, 0.5, 10),), 1.0)
    problem = release.report_problem("h-a", report)
    assert problem is not None and "no finite epsilon" in problem, problem
    assert asked == []


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_a_noise_multiplier_past_a_trainers_largest_is_refused_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch, accountant: str
) -> None:
    """z 10^10 at q 0.5: Opacus's RDP curve of that one run cost 2.3 s (1.5 s at 10^6),
    where the RDP caps counted 9 ms a run (32 such runs: over a minute). No trainer of
    this engine takes z past 10^4. Refused by a look at the entries, no curve computed."""
    asked = replays_started(monkeypatch)
    from opacus.accountants.analysis import rdp

    curves: list[float] = []
    real_curve = rdp.compute_rdp

    def counted_curve(**kwargs: object) -> object:
        curves.append(kwargs["noise_multiplier"])  # type: ignore[arg-type]
        return real_curve(**kwargs)

    monkeypatch.setattr(rdp, "compute_rdp", counted_curve)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = RecordReport(accountant, DELTA, 0.1, ((1e10, 0.5, 10),), 1.0)
    problem = release.report_problem("h-a", report)
    assert problem is not None and "noise multiplier of 10000000000.0" in problem, problem
    assert asked == [] and curves == []


def test_a_noise_multiplier_whose_square_underflows_is_no_noise_on_arrival() -> None:
    """z 1e-200: no noise to any accountant (RDP's replay gives inf). It passed the
    arrival's look for z = 0 and was refused only at the replay, after the sum."""
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = RecordReport("rdp", DELTA, 1.0, ((1e-200, 0.01, 10),), 1.0)
    problem = release.report_problem("h-a", report)
    assert problem is not None and "without noise" in problem, problem


@pytest.mark.parametrize(
    "history",
    [
        # the default simulate branch's largest, at z 0.7 (below its calibration)
        (STATISTICS, (0.7, 256 / 4727, 555)),
        # 30 000 transaction rows at batch 256 over 30 epochs, z 1
        (STATISTICS, (1.0, 256 / 30_000, 3500)),
        # one run at the counting cap, z 1, q 0.01 (epsilon 9.3)
        ((1.0, 0.01, 20000),),
    ],
)
def test_honest_histories_are_inside_the_grid(
    history: tuple[tuple[float, float, int], ...],
) -> None:
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    assert release.report_problem("h-a", RecordReport("prv", DELTA, 1.0, history, 1.0)) is None
    assert prv_replay_points(list(history), DELTA) <= MAX_PRV_REPLAYED_POINTS


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.3, 50.0),
            st.sampled_from([0.001, 0.01, 0.05, 0.3, 1.0]),
            st.integers(1, 3000),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([1e-5, 1e-7, 1e-3]),
)
def test_the_points_are_opacuss_own_grid(
    runs: list[tuple[float, float, int]], delta: float
) -> None:
    """The count is the distinct runs times the domain Opacus's PRV accountant builds for
    them (``_get_domain``: its mesh and alignment): a drift on an Opacus upgrade fails
    here. PRV is asked the distinct runs (:func:`~secagg.dp.accountants.opacus_epsilon`)."""
    points = prv_replay_points(runs, delta)
    runs = distinct_runs(runs)
    domain = PRVAccountant()._get_domain(
        prvs=[PoissonSubsampledGaussianPRV(q, z) for z, q, _ in runs],
        num_self_compositions=[n for _, _, n in runs],
        eps_error=0.01,
        delta_error=delta / 1000,
    )
    if math.isfinite(points):
        assert points == len(runs) * domain.size
    else:  # only where PRV itself refuses: a domain past exp's range
        assert domain.t_max > 700


@settings(max_examples=25, deadline=None)
@given(
    st.floats(10.0, 1000.0),
    st.sampled_from([0.001, 0.01, 0.1, 0.3, 0.7, 1.0]),  # away from 0.5: cheap curves
    st.integers(1, 20000),
)
def test_the_arrival_grid_at_less_noise_is_never_smaller(z: float, q: float, steps: int) -> None:
    """The arrival check sizes the grid at no more than z 10 (a large z's RDP curve costs
    up to a second near q 0.5): sound only if less noise never shrinks the grid, so no
    history it lets through has a larger grid than it counted."""
    exact = prv_replay_points([(z, q, steps)], DELTA)
    assert prv_replay_points([(10.0, q, steps)], DELTA) >= exact
