"""An honest PRV branch refused by a replay cap as its history grows is told its way on.

A branch's history only grows, so a branch past a PRV cap is a dropout of every later
round: 50 000 rows at batch 256, 3 local epochs a round (the simulator's default) with
the feature statistics' release before, was refused from round 18 (2 runs of 10 584
steps, past 20 000 runs x steps, a cap replaced since by the grid's alone:
tests/dp/test_release_record_prv_honest_length.py). The warning named the cap but no way
on (2026-12-07); each PRV refusal now names the 'rdp' accountant, whose replay the server
takes for that history (its bound is looser: 3.33 at round 18 beside PRV's 2.98 at round
17, so the switch does not make the branch's epsilon go down). A branch of 100 000 rows
calibrated for the default 10 rounds that runs 30 passes the grid at round 22 (at its
calibrated noise 0.7398: 1.99 million points at round 21, 2.06 million at 22; at 0.73,
below it, at round 21: docs/privacy.md said 21 of the calibrated branch).
"""

from __future__ import annotations

import pytest

from secagg.dp import release as release_module
from secagg.dp.release import RecordRelease, RecordReport

DELTA = 1e-5
RATE = 1 / 391  # 100 000 rows at batch 256
STEPS_A_ROUND = 3 * 391
NOISE = 0.73  # below its calibration to epsilon 3 over 10 rounds (0.740)
STATISTICS = (5.773502691896258, 1.0, 1)  # the feature statistics' release
#: the noise :func:`~secagg.dp.dpsgd._planned_noise` calibrates that branch to (epsilon 3
#: over the default 10 rounds, 'prv'); a literal, as its search costs 5 s of CPU
CALIBRATED = 0.7398144024842395


def _history(rounds: int) -> tuple[tuple[float, float, int], ...]:
    return (STATISTICS, (NOISE, RATE, STEPS_A_ROUND * rounds))


def test_an_honest_prv_branch_refused_mid_federation_is_told_to_account_with_rdp() -> None:
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    problems = {
        rounds: release.report_problem("h-a", RecordReport("prv", DELTA, 1.0, _history(rounds)))
        for rounds in (20, 21)
    }
    assert problems[20] is None
    assert problems[21] is not None and "accountant='rdp'" in problems[21], problems[21]
    # the way named holds: by RDP the same history is inside every cap
    assert release.report_problem("h-b", RecordReport("rdp", DELTA, 1.0, _history(30))) is None


def test_a_branch_at_its_calibration_passes_the_grid_at_round_22() -> None:
    """docs/privacy.md said round 21; at its calibrated noise the branch is inside the
    grid there (1.99 million points) and past it at round 22 (2.06 million)."""
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)

    def problem(rounds: int) -> str | None:
        history = (STATISTICS, (CALIBRATED, RATE, STEPS_A_ROUND * rounds))
        return release.report_problem("h-a", RecordReport("prv", DELTA, 1.0, history))

    assert problem(21) is None
    refused = problem(22)
    assert refused is not None and "PRV grid" in refused, refused


@pytest.mark.parametrize(
    "history",
    [
        tuple((1.0 + i / 100, 0.01, 1) for i in range(9)),  # distinct pairs
        ((1.0, 0.01, 10**6),),  # huge steps: the grid
        ((0.7, 0.03, 15_000),),  # the grid
    ],
    ids=["pairs", "steps", "grid"],
)
def test_every_prv_cap_names_the_way_on(history: tuple[tuple[float, float, int], ...]) -> None:
    problem = release_module._replay_refusal(RecordReport("prv", DELTA, 1.0, history))
    assert problem is not None and "'prv' accountant" in problem, problem
    assert "accountant='rdp'" in problem, problem
