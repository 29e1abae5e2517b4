"""Record-level replays: a report replaced before its background replay began is not
replayed.

Second review of the record-level replays (2026-12-07). Each report a
:class:`RecordRelease` keeps is queued for its one background replay thread, in order,
and the round's end waits for its contributors' figures. A branch's report of a round
that aborted before its figures were read (without a ledger, nothing reads them) stays
queued; when the branch reported anew the next round, the new report's replay was
queued behind the old one, which still ran (up to REPLAY_SECONDS_PER_REPORT of CPU for
a figure nobody reads), so the round's end waited for replays its deadline allowance
(one a contributor) does not count, one more a branch for each such abort. Now a
report replaced while its replay is still queued has that replay cancelled; one
already running finishes, unread.
"""

from __future__ import annotations

import threading

import pytest
from _record_replays import DELTA, record_report
from _threads import BOUND
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.dp.release as release_module
from secagg.dp.release import RecordRelease, RecordReport


@settings(max_examples=20, deadline=None)
@given(aborts=st.integers(1, 4), branches=st.integers(1, 4))
def test_a_report_replaced_while_its_replay_is_queued_is_not_replayed(
    aborts: int, branches: int
) -> None:
    """A first branch's replay holds the thread (gated); the others report in
    ``aborts`` rounds whose figures nobody reads, then once more: only the last report
    of each is replayed, each figure its own, and the round's check returns."""
    gate = threading.Event()
    replayed: list[int] = []  # each replay's steps, in the order run
    real = release_module._replayed_epsilon

    def gated(report: RecordReport) -> float:
        if report.history[0][2] == 1:  # the blocker
            assert gate.wait(BOUND)
        replayed.append(report.history[0][2])
        return real(report)

    mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    others = [f"id-{i}" for i in range(branches)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(release_module, "_replayed_epsilon", gated)
        mechanism.take_report("blocker", record_report(1))
        steps = 10
        for _ in range(aborts + 1):  # rounds that abort, then the one that reads
            mechanism.begin_round(["blocker", *others])
            steps += 10
            for index, identity in enumerate(others):
                mechanism.take_report(identity, record_report(steps + index))
        gate.set()
        mechanism.require_reports(others)
    last = {identity: steps + index for index, identity in enumerate(others)}
    assert sorted(replayed) == sorted([1, *last.values()]), (
        f"replays of replaced reports ran: {sorted(replayed)}"
    )
    for identity, count in last.items():
        assert mechanism.latest[identity].epsilon == record_report(count).epsilon
