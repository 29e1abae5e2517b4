"""A look that raised between two replays leaves the record-level mechanism as it was
before the report it stopped at: a later read holds that branch as it would have.

Second review of e638f464 (2026-12-07): :meth:`RecordRelease._replay_pending` took a
restored branch's recorded figure (the largest its signed rows hold), its read-back
report and its background replay out of the mechanism, and only then looked
(``_hold_restored``'s first line). A look that raised there had dropped them: a later
read replayed that report as a report of a round, held at its bare replay, below the
figure its rows had signed (a claim that went down, which ``audit verify`` fails), and a
restored report past the replay caps was refused and dropped from the branch's latest.
A round's report lost its replay under way the same way (computed again by the reader).
Now the look comes before anything of that report is taken, and a report held is no
longer pending, so nothing is replayed twice.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _record_replays import DELTA, dpsgd_report, wrap_replays
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.release import RecordRelease, RecordReport

#: the figure every restored branch's rows signed: far above its history's replay
SIGNED = 50.0


class _Stopped(Exception):
    """What the test's look raises once (the server's raises its stop)."""


def _history(i: int) -> list[tuple[float, float, int]]:
    return [(1.0, 0.01, 100 * (i + 1))]


@settings(max_examples=20, deadline=None)
@given(reports=st.integers(min_value=1, max_value=5), data=st.data())
def test_a_restored_branch_stays_held_to_its_signed_figure_after_a_look_raised(
    reports: int, data: st.DataObject
) -> None:
    """``reports`` restored branches whose rows signed :data:`SIGNED`; the look raises
    once, at its ``stop_at``-th call; a later claim (the look quiet) holds every branch
    at :data:`SIGNED`, and no report is replayed twice. Before: the branch the look
    stopped at was held at its bare replay (about 1), below what its rows signed."""
    stop_at = data.draw(st.integers(min_value=1, max_value=reports), label="stop_at")
    identities = [f"id{i}" for i in range(reports)]
    looks: list[int] = []
    replayed: list[RecordReport] = []

    def look() -> None:
        looks.append(1)
        if len(looks) == stop_at:
            raise _Stopped

    def counted(report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        replayed.append(report)
        return real(report)

    with pytest.MonkeyPatch.context() as patched:
        wrap_replays(patched, counted)
        mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
        mechanism.stop_replays()  # every replay is the reader's: counted in order
        mechanism.look_between_replays(look)
        mechanism.restore_reports(
            {
                identity: dpsgd_report(_history(i), epsilon=SIGNED)
                for i, identity in enumerate(identities)
            }
        )
        mechanism.start_restored_replays()
        with pytest.raises(_Stopped):
            mechanism.ledger_claim(None)
        claim = mechanism.ledger_claim(None)
    held = {identity: mechanism.latest[identity].epsilon for identity in identities}
    assert held == dict.fromkeys(identities, SIGNED), "a branch's held figure went down"
    assert claim == SIGNED
    assert len(replayed) == reports, "a report was replayed twice (or not at all)"


def test_a_round_report_keeps_its_replay_under_way_across_a_look_that_raised() -> None:
    """Two reports of a round, their replays computed in the background; the look
    raises before the first one's figure is read. A later read uses the background's
    figures: two replays in all, none computed again by the reader. Before: the first
    report's future was taken out before the look, and the reader replayed it again."""
    replayed: list[RecordReport] = []
    looks: list[int] = []

    def look() -> None:
        looks.append(1)
        if len(looks) == 1:
            raise _Stopped

    def counted(report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        replayed.append(report)
        return real(report)

    with pytest.MonkeyPatch.context() as patched:
        wrap_replays(patched, counted)
        mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
        mechanism.look_between_replays(look)
        mechanism.begin_round(["a", "b"])
        for i, identity in enumerate(("a", "b")):
            mechanism.take_report(identity, RecordReport.from_dict(dpsgd_report(_history(i))))
        with pytest.raises(_Stopped):
            mechanism.require_reports(["a", "b"])
        mechanism.require_reports(["a", "b"])
    assert len(replayed) == 2, f"{len(replayed)} replays for 2 reports"
