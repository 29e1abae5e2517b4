"""The record-level mechanism's background replays stop when its owner stops them, and
a figure is the same replay's whether the thread or its reader computed it.

Second review of the record-level replays (2026-12-07): a server that stopped left its
mechanism's replay thread running through every queued report (up to seconds of CPU
each). :meth:`RecordRelease.stop_replays` drops the queued ones (the one under way ends
as it would) and starts none later; a dropped replay is computed by whoever reads its
figure (:func:`secagg.dp.release._figure_of`), also when it is dropped while that
reader waits for it (``Future.result`` then raised ``CancelledError``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

import pytest
from _record_replays import DELTA, GatedReplays, dpsgd_report, record_report
from _threads import BOUND, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.dp.release as release_module
from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import RecordRelease

IDENTITIES = [f"id{i}" for i in range(5)]


def _steps(identity: str) -> int:
    return 100 * (IDENTITIES.index(identity) + 1)


def test_stopped_replays_are_dropped_and_read_as_the_same_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replays = GatedReplays(monkeypatch)
    mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    mechanism.restore_reports(
        {identity: dpsgd_report([(1.0, 0.01, _steps(identity))]) for identity in IDENTITIES}
    )
    mechanism.start_restored_replays()
    try:
        assert replays.first.wait(BOUND)
        mechanism.stop_replays()
    finally:
        replays.gate.set()
    assert replays.background_ended()
    assert len(replays.threads) == 1, f"{len(replays.threads) - 1} replays after the stop"
    # a report kept after the stop is replayed by its reader, never by a new thread
    mechanism.take_report("id0", record_report(1_000))
    assert len(replays.threads) == 1
    mechanism.require_reports(["id0"])
    reader = threading.get_ident()
    assert replays.threads[1:] == [reader] * len(IDENTITIES)
    expected = max(
        RecordLevelAccountant("rdp", DELTA, [(1.0, 0.01, steps)]).epsilon()
        for steps in [1_000, *map(_steps, IDENTITIES)]
    )
    assert mechanism.ledger_claim(None) == expected


def test_a_replay_dropped_while_its_reader_waits_is_computed_by_the_reader() -> None:
    pending: Future[float] = Future()
    got: list[float] = []
    failed: list[BaseException] = []

    def read() -> None:
        try:
            got.append(release_module._figure_of(pending, lambda: 1.5))
        except BaseException as exc:  # the test reports it
            failed.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # the reader is inside Future.result's wait (CPython's Condition keeps its waiters)
    assert wait_until(lambda: bool(pending._condition._waiters))  # type: ignore[attr-defined]
    assert pending.cancel()
    reader.join(BOUND)
    assert (got, failed) == ([1.5], [])


@settings(max_examples=25, deadline=None)
@given(jobs=st.integers(min_value=1, max_value=10), stop_at=st.integers(min_value=0, max_value=9))
def test_stopped_at_any_replay_the_queue_is_dropped_and_each_figure_is_still_its_own(
    jobs: int, stop_at: int
) -> None:
    """However many replays are queued and whichever is under way when the stop comes,
    the ones before it and it run, every later one is cancelled (never run by the
    thread), no later one is started, and each figure read is its own job's."""
    stop_at = min(stop_at, jobs - 1)
    background = release_module._BackgroundReplays()
    under_way, gate = threading.Event(), threading.Event()
    ran: list[int] = []

    def job(i: int) -> Callable[[], float]:
        def replay() -> float:
            ran.append(i)
            if i == stop_at:
                under_way.set()
                gate.wait(BOUND)
            return float(i)

        return replay

    work = [job(i) for i in range(jobs)]
    futures = [background.submit(replay) for replay in work]
    try:
        assert under_way.wait(BOUND)
        background.stop()
    finally:
        gate.set()
    assert wait_until(lambda: all(future.done() for future in futures))
    assert ran == list(range(stop_at + 1))
    assert [f.cancelled() for f in futures] == [i > stop_at for i in range(jobs)]
    assert background.submit(job(jobs)).cancelled()  # nothing starts after the stop
    pairs = zip(futures, work, strict=True)
    figures = [release_module._figure_of(future, replay) for future, replay in pairs]
    assert figures == [float(i) for i in range(jobs)]
