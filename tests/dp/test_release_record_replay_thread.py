"""Record-level replays when the background replay thread cannot be started.

Second review of the record-level replays (2026-12-07). :class:`RecordRelease` hands
each report it keeps to one background thread (``_BackgroundReplays``), started at the
first report and again after each idle spell. ``Thread.start`` can fail (``RuntimeError:
can't start new thread``: a process at its thread limit, ``ulimit -u`` or a container's
pids limit, or one shutting down). It failed inside ``submit`` with the queue's flag
already set to "running": the ``RuntimeError`` came out of
:meth:`RecordRelease.take_report`, which the server calls after the message's protocol
step where nothing handles it, and no thread was ever started again, so every later
replay's figure was waited for forever at the round's end (the server hung with no
deadline). Now a report whose thread could not start is replayed where its figure is
read (the server's thread, as before the background replays), with the same figure, and
the next report starts a thread again.
"""

from __future__ import annotations

import threading
import types
from typing import Any

import pytest
from _record_replays import DELTA, record_report
from _threads import BOUND
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.dp.release as release_module
from secagg.dp.release import RecordRelease


class _Starts:
    """``threading`` as release.py sees it, whose threads fail to start ``failing``
    times (then start as usual)."""

    def __init__(self, failing: int) -> None:
        self.failing = failing
        self.started = 0
        starts = self

        class Thread(threading.Thread):
            def start(self) -> None:
                if starts.failing > 0:
                    starts.failing -= 1
                    raise RuntimeError("can't start new thread")
                starts.started += 1
                super().start()

        self.module = types.SimpleNamespace(Thread=Thread, Lock=threading.Lock)


def _within_bound(call: Any) -> Any:
    """``call()`` in a thread, failing the test (not hanging it) past :data:`BOUND`."""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(BOUND), "waited past the bound for a replay no thread runs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@settings(max_examples=15, deadline=None)
@given(
    steps=st.lists(st.integers(1, 3_000), min_size=1, max_size=5),
    failing=st.integers(1, 6),
)
def test_reports_whose_replay_thread_cannot_start_are_kept_and_replayed(
    steps: list[int], failing: int
) -> None:
    """Each branch's report is kept although the thread failed to start (nothing raised
    out of take_report), the round's check returns, and every figure held is the
    report's own replay, as a sequential replay gives it; a later round's reports, with
    threads starting again, are replayed in the background again."""
    starts = _Starts(failing)
    mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    identities = [f"id-{i}" for i in range(len(steps))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(release_module, "threading", starts.module)
        for identity, count in zip(identities, steps, strict=True):
            mechanism.take_report(identity, record_report(count))
        _within_bound(lambda: mechanism.require_reports(identities))
        for identity, count in zip(identities, steps, strict=True):
            assert mechanism.latest[identity].epsilon == record_report(count).epsilon
        assert mechanism.ledger_claim(None) == max(record_report(c).epsilon for c in steps)
        # the next round: threads start again (or still fail) and nothing waits forever
        mechanism.begin_round(identities)
        for identity, count in zip(identities, steps, strict=True):
            mechanism.take_report(identity, record_report(count + 1))
        _within_bound(lambda: mechanism.require_reports(identities))
        for identity, count in zip(identities, steps, strict=True):
            assert mechanism.latest[identity].epsilon == record_report(count + 1).epsilon
    if failing <= len(steps):  # a start was tried again after the failures, and held
        assert starts.started >= 1


def test_a_restart_whose_replay_thread_cannot_start_holds_the_read_back_reports() -> None:
    """The restored reports (a restart, start_restored_replays) with no thread: the
    constructor's call raises nothing, and the first claim replays them itself."""
    mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    reports = {f"id-{i}": record_report(100 * (i + 1)) for i in range(3)}
    mechanism.restore_reports({k: r.as_dict() for k, r in reports.items()})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(release_module, "threading", _Starts(10).module)
        mechanism.start_restored_replays()
        claim = _within_bound(lambda: mechanism.ledger_claim(None))
    assert claim == max(r.epsilon for r in reports.values())
    assert mechanism.replay_backlog() == 0
