"""A report's replay is bounded by the RDP curves it needs, by either accountant (2026-12-07).

Each distinct ``(noise multiplier, sample rate)`` run is one Opacus RDP curve, and its
fractional orders' series grows long as the rate nears 0.5 and the noise grows: up to
0.13 s of CPU a curve at z <= 10, 0.67 s at z 10^4 and q 0.5, where the counting caps
assumed 9 ms a run. Within those caps an RDP report of 32 runs at z 10^4, rates within
1e-7 of 0.5, replayed in 20.2 s of CPU (32 runs at z 3, rates 0.468-0.499: 2.35 s), and a
PRV report of 8 such runs in seconds. :data:`MAX_REPLAYED_CURVE_UNITS` refuses them as
they arrive, by a count (no curve computed): a curve at a rate up to 0.1 one unit (32
such runs replay in about 1 s, as before), another 4, one past z 30 within 0.02 of a
rate of 0.5 16; an honest history's few curves stay inside.
"""

from __future__ import annotations

import pytest

from secagg.dp import release as release_module
from secagg.dp.release import (
    MAX_REPLAYED_CURVE_UNITS,
    RecordRelease,
    RecordReport,
    UnaccountedContribution,
)

DELTA = 1e-5

#: 32 runs at the most noise a trainer takes, each rate its own, all near 0.5: 20.2 s
COSTLY_RDP = tuple((1e4, 0.5 - 1e-9 * (i + 1), 1) for i in range(32))
#: 32 runs at a noise a trainer may well use, rates 0.468 to 0.499: 2.35 s
MANY_RDP = tuple((3.0, 0.5 - 1e-3 * (i + 1), 1) for i in range(32))
#: 8 runs, within every PRV cap that counts runs and steps: its curves cost seconds
COSTLY_PRV = tuple((1e4, 0.5 - 1e-9 * (i + 1), 1) for i in range(8))


def _no_accountant_asked(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every RDP curve and replay asked for (a refusal by count asks for none)."""
    asked: list[object] = []
    real_epsilon = release_module.RecordLevelAccountant.epsilon
    real_points = release_module.prv_replay_points

    def epsilon(self: object) -> float:
        asked.append("replay")
        return real_epsilon(self)  # type: ignore[arg-type]

    def points(*args: object) -> float:
        asked.append("grid")
        return real_points(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(release_module.RecordLevelAccountant, "epsilon", epsilon)
    monkeypatch.setattr(release_module, "prv_replay_points", points)
    return asked


@pytest.mark.parametrize(
    ("accountant", "history"),
    [("rdp", COSTLY_RDP), ("rdp", MANY_RDP), ("prv", COSTLY_PRV)],
    ids=["rdp-z1e4-near-half", "rdp-z3-32-rates", "prv-z1e4-near-half"],
)
def test_a_history_of_too_many_costly_curves_is_refused_as_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
    accountant: str,
    history: tuple[tuple[float, float, int], ...],
) -> None:
    asked = _no_accountant_asked(monkeypatch)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = RecordReport(accountant, DELTA, 1.0, history, 1.0)
    problem = release.report_problem("h-a", report)
    assert problem is not None and "RDP curves" in problem, problem
    release.take_report("h-a", report)
    with pytest.raises(UnaccountedContribution, match="RDP curves"):
        release.require_reports(["h-a"])
    assert asked == []  # refused by a count: no curve, no grid, no replay


@pytest.mark.parametrize(
    "history",
    [
        # the default ``secagg simulate`` branch: the statistics' release, then DP-SGD
        ((5.773502691896258, 1.0, 1), (0.7, 256 / 4727, 555)),
        # a trainer switching between two settings round after round: 2 curves, 32 runs
        tuple((1.0 + (i % 2) / 10, 0.6, 10) for i in range(32)),
        # 32 settings at a bank's rates: the run cap, as before the curve cap
        tuple((0.8 + i / 50, 256 / 50_000 + i / 1000, 100) for i in range(32)),
        # 8 settings at a rate near 0.5 (noise a trainer uses): 32 units
        tuple((0.8 + i / 10, 0.5, 10) for i in range(8)),
        # one run at a rate of 0.5 and much noise (16 units) beside 16 light ones
        ((100.0, 0.5, 1), *((1.0 + i / 10, 0.01, 10) for i in range(16))),
    ],
    ids=["simulate", "alternating", "thirty-two-light", "eight-near-half", "one-costly"],
)
def test_an_honest_history_is_inside_the_curve_cap(
    history: tuple[tuple[float, float, int], ...],
) -> None:
    assert release_module._past_replay_caps(history, "rdp") is None
    assert release_module._curve_units(history) <= MAX_REPLAYED_CURVE_UNITS


def test_one_curve_past_the_cap_is_refused() -> None:
    """The cap's edge: a ninth setting at a rate past 0.1, or a light run beside two
    costly ones."""
    ordinary = tuple((0.8 + i / 20, 0.3, 10) for i in range(9))
    costly = ((100.0, 0.49, 1), (1e3, 0.51, 1), (1.0, 0.01, 1))
    for history in (ordinary, costly):
        assert "RDP curves" in str(release_module._past_replay_caps(history, "rdp"))
