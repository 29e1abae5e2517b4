"""An honest PRV branch of up to 100 000 rows finishes 30 rounds; a costly history is still
refused as it arrives (2026-12-07).

The server held a PRV history to 20 000 runs x steps, a stand-in for the grid Opacus's PRV
works through, and so refused an honest branch of 50 000 rows at batch 256 and 3 local
epochs a round (the simulator's defaults), after its feature statistics' release, from
round 18 (2 runs of 10 584 steps: a grid of 1.2 million points, 0.8 s of CPU to replay),
and one of 100 000 rows from round 9, inside the simulator's default 10. The grid itself
(:data:`~secagg.dp.release.MAX_PRV_REPLAYED_POINTS`, 2 million points: at most 1.7 s of
CPU measured) is now the bound, over the history's distinct ``(z, q)`` pairs, which is
what PRV is asked (:func:`~secagg.dp.accountants.distinct_runs`).

Each branch's noise is below its calibration to the simulator's epsilon 3 over its rounds
(:func:`~secagg.dp.dpsgd._planned_noise` gives 0.868, 1.193, 0.740 and 0.953): less noise
only grows the grid, and the grid grows with the rounds, so the last round bounds them all.
"""

from __future__ import annotations

import pytest
from _replays_started import replays_started

from secagg.dp.accountants import prv_replay_points
from secagg.dp.dpsgd import _batches
from secagg.dp.release import (
    MAX_PRV_REPLAYED_POINTS,
    RecordRelease,
    RecordReport,
    UnaccountedContribution,
    history_replay_refusal,
)

DELTA = 1e-5  # the simulator's
BATCH, LOCAL_EPOCHS = 256, 3  # the simulator's
STATISTICS = (5.773502691896258, 1.0, 1)  # the feature statistics' release (z 10 / sqrt 3)


def _honest_history(rows: int, noise: float, rounds: int) -> list[tuple[float, float, int]]:
    """What a branch of ``rows`` reports after ``rounds``: the statistics' release, then
    its DP-SGD at ``q = 1 / batches`` and ``int(1 / q)`` steps an epoch (the trainer's)."""
    rate = 1 / _batches(rows, BATCH)
    return [STATISTICS, (noise, rate, LOCAL_EPOCHS * int(1 / rate) * rounds)]


@pytest.mark.parametrize(
    ("rows", "noise", "rounds"),
    [
        (50_000, 0.86, 10),  # the default rounds
        (50_000, 1.19, 18),  # refused from here
        (50_000, 1.19, 30),  # 3x the default rounds
        (100_000, 0.73, 10),  # refused from round 9
        (100_000, 0.95, 30),  # 1.81 million points, the most of these
    ],
)
def test_an_honest_prv_branch_finishes_its_rounds(rows: int, noise: float, rounds: int) -> None:
    history = _honest_history(rows, noise, rounds)
    assert history_replay_refusal(history, "prv", DELTA) is None
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    assert release.report_problem("h-a", RecordReport("prv", DELTA, 3.0, history, 1.0)) is None


@pytest.mark.parametrize(
    ("history", "says"),
    [
        # 9 distinct pairs: a grid and a mean integral each
        (tuple((1.0 + i / 100, 0.01, 10) for i in range(9)), "distinct noise multipliers"),
        # two pairs in 40 alternating runs: past the runs either accountant replays
        (((1.0, 0.01, 10), (1.5, 0.02, 10)) * 20, "runs the server replays"),
        # two pairs, huge step counts: the grid (one run of 10^6 steps took over 500 s)
        (((1.0, 0.01, 400_000), (1.5, 0.02, 400_000), (1.0, 0.01, 200_000)), "PRV grid"),
        # three costly curves (z past 30 at a rate of 0.5): past the curve units
        (tuple((40.0 + i, 0.5, 1) for i in range(3)), "RDP curves"),
        # 8 pairs past z 10 at one rate: the arrival check sizes the domain at z 10, where
        # they are one pair, but the replay works through 8 grids (9.6 million points;
        # 21 million at 60 000 steps each took 16.6 s of CPU): counted as 1.4 million
        (tuple((11.0 + i, 0.01, 20_000) for i in range(8)), "PRV grid"),
    ],
    ids=["pairs", "runs", "steps", "curves", "clamped"],
)
def test_a_costly_history_is_still_refused_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch, history: tuple[tuple[float, float, int], ...], says: str
) -> None:
    asked = replays_started(monkeypatch)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = RecordReport("prv", DELTA, 3.0, history, 1.0)
    problem = release.report_problem("h-a", report)
    assert problem is not None and says in problem, problem
    release.take_report("h-a", report)
    with pytest.raises(UnaccountedContribution):
        release.require_reports(["h-a"])
    assert asked == []  # no replay was started


def test_alternating_runs_are_counted_as_their_distinct_pairs() -> None:
    """12 runs alternating between two pairs were refused as 12 runs (past 8); PRV is
    asked their 2 distinct pairs, a grid each, so the grid cap counts those."""
    history = ((1.0, 0.01, 50), (1.5, 0.02, 50)) * 6
    assert history_replay_refusal(history, "prv", DELTA) is None
    merged = [(1.0, 0.01, 300), (1.5, 0.02, 300)]
    assert prv_replay_points(history, DELTA) == prv_replay_points(merged, DELTA)
    assert prv_replay_points(merged, DELTA) <= MAX_PRV_REPLAYED_POINTS
