"""``serve`` stops its record-level server's background replays whenever it returns,
not only when it raises.

Second review of the record-level restart changes (2026-12-07). 85a458cc gave
:class:`~secagg.runtime.server.FederationServer` a ``close()`` that drops the DP-SGD
replays still queued (restored from the ledger on a restart, up to seconds of CPU a
report), and ``serve`` called it on its error path only. A restart of a federation
that is already finished (``serve`` returns without binding) or whose run stops early
(no quorum) reads none of the restored reports' figures, so after ``serve`` returned
with its transport stopped, the server's replay thread went on replaying every queued
report for a server nobody can run again. Now ``serve`` closes the server on every
exit: the replay under way ends as it would, the queued ones are dropped, and no
replay thread is left once it has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _record_replays import RecordBranches, served, start_branches, wrap_replays
from _threads import BOUND

from secagg.dp.release import RecordReport
from secagg.ledger import LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime import launch
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.transport.inprocess import InProcessHub

BRANCHES = RecordBranches.numbered(4)
NAMES = list(BRANCHES.names)
THREAD = "secagg-record-replays"  # the background replays' thread (_BackgroundReplays)


def _config(folder: Path, rounds: int) -> FederationConfig:
    """The federation ``serve`` runs on ``folder`` (its no-quorum stop half a second)."""
    return BRANCHES.served_config(folder, rounds, quorum_wait_seconds=0.5)


def _one_round_on_the_state(folder: Path) -> None:
    """Round 1 complete on the state ``serve`` opens, each branch's report in its row."""
    config = _config(folder, 1)
    state = launch.open_server_state(config, init=True)
    hub = InProcessHub()
    start_branches(hub, NAMES, BRANCHES.report, idle=BOUND)
    try:
        results = FederationServer(config, hub, state.store, ledger=state.ledger).run(
            wait_for_clients=BOUND
        )
    finally:
        state.close()
    assert [r.status for r in results] == ["complete"], [r.reason for r in results]


class _HeldReplays:
    """Each background replay recorded as it begins; the first one held at ``gate``
    until the test opens it (so the others are still queued when ``serve`` returns)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.began: list[str] = []  # the thread's name, per replay
        self.gate = threading.Event()
        wrap_replays(monkeypatch, self._replay)

    def _replay(self, report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        self.began.append(threading.current_thread().name)
        if len(self.began) == 1:
            self.gate.wait(BOUND)
        return real(report)

    def in_background(self) -> int:
        return sum(1 for name in self.began if name == THREAD)

    def assert_none_after_serve(self, why: str) -> None:
        """No replay thread is left, and none but the held one ran in the background:
        the queued reports were dropped (``why`` none is wanted, for the message)."""
        assert _replay_threads_end(), "a replay thread outlived serve"
        assert self.in_background() <= 1, (
            f"{self.in_background() - 1} restored reports replayed after serve returned ({why})"
        )


def _replay_threads_end() -> bool:
    """Wait (bounded) for every background replay thread to end; whether they did."""
    for thread in threading.enumerate():
        if thread.name == THREAD:
            thread.join(BOUND)
    return not any(t.name == THREAD and t.is_alive() for t in threading.enumerate())


@pytest.fixture
def finished_once(tmp_path: Path) -> Iterator[Path]:
    _one_round_on_the_state(tmp_path)
    # an earlier test's replay thread (of this worker) is not this test's
    assert _replay_threads_end()
    yield tmp_path


def test_serve_on_a_finished_federation_leaves_no_replay_running(
    finished_once: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replays = _HeldReplays(monkeypatch)
    try:
        server, results, finished = served(_config(finished_once, 1))
        assert results == [] and finished
    finally:
        replays.gate.set()
    replays.assert_none_after_serve("a finished federation: nobody reads them")
    with pytest.raises(ServerStopped, match="closed"):
        server.run_round()


def test_serve_that_stops_without_a_quorum_leaves_no_replay_running(
    finished_once: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumable federation (2 rounds, 1 complete) that nobody joins: ``run`` stops
    for want of a quorum, with the restored reports' replays still queued."""
    replays = _HeldReplays(monkeypatch)
    config = _config(finished_once, 2)
    try:
        server, results, finished = served(config, wait_for_clients=0.0)
        assert results == [] and not finished
        assert server.stop_reason is not None and "no quorum" in server.stop_reason
    finally:
        replays.gate.set()
    replays.assert_none_after_serve("its run stopped early: nobody reads them")
    # nothing half recorded: the ledger is as round 1 left it, and it verifies
    public = LedgerKey.load(Path(config.server.state + ".ledger-key")).public_key
    audit = verify_ledger(Path(config.server.state + ".ledger"), public)
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1]
