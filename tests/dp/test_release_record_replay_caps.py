"""A PRV report inside the replay caps replays in bounded time (2026-12-07).

The caps of 32 runs and 10^6 steps let a report of one run (z 1, q 0.01, 10^6 steps)
cost the server over 500 s of Opacus's PRV replay in its own thread (32 runs of 1 000
steps: 52.9 s of CPU), while the branches wait ROUND_GRACE_SECONDS (30 s) past the
deadline. PRV histories now have caps of their own (:data:`MAX_PRV_REPLAYED_RUNS` of
distinct pairs, :data:`MAX_PRV_REPLAYED_POINTS` of its grid; a cap of 20 000 runs x steps
until 2026-12-07), checked as the report arrives, no accountant asked; an honest
branch's history (the default ``secagg simulate`` branch's) stays inside.
"""

from __future__ import annotations

import pytest
from _replays_started import replays_started

from secagg.dp.release import RecordRelease, RecordReport, UnaccountedContribution

DELTA = 1e-5


@pytest.mark.parametrize(
    "history",
    [
        ((1.0, 0.01, 10**5),),  # one run: 6.1 s of PRV replay (10^6 steps: over 500 s)
        tuple((1.0 + i / 100, 0.01, 1000) for i in range(32)),  # 52.9 s
        tuple((1.0 + i / 100, 0.01, 1) for i in range(9)),  # runs past the PRV cap
    ],
)
def test_a_prv_history_past_its_caps_is_refused_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch, history: tuple[tuple[float, float, int], ...]
) -> None:
    asked = replays_started(monkeypatch)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    release.take_report("h-a", RecordReport("prv", DELTA, 100.0, history, 1.0))
    with pytest.raises(UnaccountedContribution, match="'prv' accountant"):
        release.require_reports(["h-a"])
    assert asked == []  # no replay was started


def test_an_honest_simulated_branch_history_is_inside_the_caps() -> None:
    """The default ``secagg simulate`` branch: the feature statistics' release, then 30
    epochs of DP-SGD (its largest branch: 555 steps at q = 256 / 4 727; its replay at
    z 0.7, a smaller noise than its calibration to epsilon 3 gives: 1.0 s of CPU)."""
    history = ((5.773502691896258, 1.0, 1), (0.7, 256 / 4727, 555))
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    assert release.report_problem("h-a", RecordReport("prv", DELTA, 1.0, history, 1.0)) is None
