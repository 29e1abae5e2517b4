"""A stop during the deferred ledger rebuild of a record-level restart
(``FederationServer.backfill_ledger``) is told as a stop, and the next start rebuilds.

Review of the deferred rebuild (2026-12-07, after 8abce84d): a Ctrl-C or SIGTERM (a
``KeyboardInterrupt``, ``StopAsked`` included) that arrived while the rebuild ran was
logged at ERROR as "the server could not rebuild its ledger's missing rows:
KeyboardInterrupt" (or ": 15" for a SIGTERM's StopAsked), which reads as a failure of
the ledger. A stop is now one WARNING line naming it, no traceback; it is still raised
unchanged, and the next start rebuilds the row.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _record_replays import GatedReplays, crash_mid_round_2, dpsgd_report, record_config
from _threads import BOUND

import secagg.dp.release as release_module
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

NAMES = [f"b{i}" for i in range(3)]


def _report(name: str) -> dict[str, Any]:
    return dpsgd_report([(1.0, 0.01, 100 * (NAMES.index(name) + 1))])


def _config(rounds: int) -> FederationConfig:
    return record_config(NAMES, name="records", rounds=rounds)


def _rows(folder: Path, key: LedgerKey) -> list[tuple[Any, Any, Any]]:
    """The verified ledger's rows: (round, status, reconstructed)."""
    audit = verify_ledger(folder / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    return [
        (row.entry["round"], row.entry["status"], row.entry.get("reconstructed"))
        for row in audit.chain.rows
    ]


def _restart(folder: Path, key: LedgerKey, then: Callable[[FederationServer], object]) -> None:
    """A server built on ``folder``'s state and ledger, ``then(server)``, both closed."""
    ledger = Ledger(folder / "ledger.sqlite", key)
    store = ServerStore(folder / "state.sqlite")
    try:
        then(FederationServer(_config(3), InProcessHub(), store, ledger=ledger))
    finally:
        ledger.close()
        store.close()


@pytest.mark.parametrize(
    ("stop", "named"),
    [
        (KeyboardInterrupt, "Ctrl-C (SIGINT)"),
        (lambda: StopAsked(signal.SIGTERM), "SIGTERM"),
    ],
    ids=["ctrl-c", "stop-asked-sigterm"],
)
def test_a_stop_during_the_rebuild_is_logged_as_a_stop_and_the_next_start_rebuilds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stop: Callable[[], KeyboardInterrupt],
    named: str,
) -> None:
    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, _config(1), _report)
    raised = stop()

    def stopped(ledger: Ledger, entry: dict[str, object]) -> int:
        raise raised  # the stop arrives as the rebuilt row is appended

    caplog.set_level(logging.DEBUG, logger="secagg")
    mine = threading.get_ident()
    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "append", stopped)
        ledger = Ledger(tmp_path / "ledger.sqlite", key)
        store = ServerStore(tmp_path / "state.sqlite")
        try:
            server = FederationServer(_config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(KeyboardInterrupt) as caught:
                server.run_round()
            assert caught.value is raised, "the stop was not raised unchanged"
            with pytest.raises(ServerStopped, match=re.escape(f"stopped by {named} while")):
                server.run_round()
        finally:
            ledger.close()
            store.close()
    # this thread's records only: a party thread of another test may log meanwhile
    records = [r for r in caplog.records if r.thread == mine and r.name.startswith("secagg")]
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert errors == [], f"a stop was logged as a failure: {errors}"
    lines = [r for r in records if "rebuilt its ledger's missing rows" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in records]
    (line,) = lines
    assert line.levelno == logging.WARNING
    assert line.exc_info is None, "a stop's line carries no traceback"
    assert f"stopped by {named}" in line.getMessage()
    assert "the next start rebuilds" in line.getMessage()
    assert _rows(tmp_path, key) == [(1, "complete", None)]  # nothing half written
    # the next start rebuilds the row
    _restart(tmp_path, key, then=lambda server: server.backfill_ledger())
    assert _rows(tmp_path, key) == [(1, "complete", None), (2, "aborted", True)]


@pytest.mark.parametrize(
    ("signum", "named"),
    [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C (SIGINT)")],
    ids=["sigterm", "sigint"],
)
def test_a_stop_that_surfaced_as_another_error_during_the_rebuild_is_logged_as_the_stop(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    signum: int,
    named: str,
) -> None:
    """Second review of d9f95a08: a stop recorded for the process (the CLI's handler
    records it, then raises) that surfaced as another exception in the rebuild (the
    signal cut short a wait on a replay's future: ``RuntimeError: cannot release
    un-acquired lock``, as the project's CI saw it in a queue's wait) was logged at
    ERROR as "the server could not rebuild its ledger's missing rows", a failure of the
    ledger, beside the command's own "stopped by SIGTERM" line."""
    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, _config(1), _report)
    surfaced = RuntimeError("cannot release un-acquired lock")

    def stopped(ledger: Ledger, entry: dict[str, object]) -> int:
        ask_stop(signum)  # as the CLI's handler records the signal before it raises
        raise surfaced

    caplog.set_level(logging.DEBUG, logger="secagg")
    mine = threading.get_ident()
    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "append", stopped)
        ledger = Ledger(tmp_path / "ledger.sqlite", key)
        store = ServerStore(tmp_path / "state.sqlite")
        try:
            server = FederationServer(_config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(RuntimeError) as caught:
                server.run_round()
            assert caught.value is surfaced, "the exception was not raised unchanged"
            with pytest.raises(ServerStopped, match=re.escape(f"stopped by {named} while")):
                server.run_round()
        finally:
            forget_stop()  # the record is the process's: no later test may inherit it
            ledger.close()
            store.close()
    records = [r for r in caplog.records if r.thread == mine and r.name.startswith("secagg")]
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert errors == [], f"a stop was logged as a failure of the ledger: {errors}"
    lines = [r for r in records if "rebuilt its ledger's missing rows" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in records]
    (line,) = lines
    assert line.levelno == logging.WARNING
    assert line.exc_info is None, "a stop's line carries no traceback"
    assert f"stopped by {named} while" in line.getMessage()
    assert "surfaced as RuntimeError: cannot release un-acquired lock" in line.getMessage()
    assert _rows(tmp_path, key) == [(1, "complete", None)]  # nothing half written
    _restart(tmp_path, key, then=lambda server: server.backfill_ledger())
    assert _rows(tmp_path, key) == [(1, "complete", None), (2, "aborted", True)]


def test_a_stop_while_the_rebuild_waits_for_a_replay_leaves_no_replay_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop comes where a rebuild spends its time: waiting for a restored report's
    replay, the first under way in the background and the others queued. The replays
    stop with the server: the one under way ends as it would (its thread then ends,
    joined with the house bound), no queued one is replayed after, and the next start
    rebuilds the row (second review of d9f95a08: checked, it holds)."""
    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, _config(1), _report)
    replays = GatedReplays(monkeypatch)
    read = release_module._figure_of

    def cut_short(pending: Any, job: Callable[[], Any]) -> Any:
        if replays.first.wait(BOUND):  # the first replay is under way, the rest queued
            raise KeyboardInterrupt  # the Ctrl-C arrives while its figure is waited for
        return read(pending, job)

    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:
        with monkeypatch.context() as patched:
            patched.setattr(release_module, "_figure_of", cut_short)
            server = FederationServer(_config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(KeyboardInterrupt):
                server.run_round()
        replays.gate.set()
        assert replays.background_ended(), "the replay thread is still alive"
        assert len(replays.threads) == 1, (
            f"{len(replays.threads) - 1} queued replays ran after the stop"
        )
        with pytest.raises(ServerStopped, match=re.escape("stopped by Ctrl-C (SIGINT) while")):
            server.run_round()
    finally:
        replays.gate.set()
        ledger.close()
        store.close()
    assert _rows(tmp_path, key) == [(1, "complete", None)]
    _restart(tmp_path, key, then=lambda server: server.backfill_ledger())
    assert _rows(tmp_path, key) == [(1, "complete", None), (2, "aborted", True)]


def test_a_stop_that_surfaced_as_another_error_in_the_rebuild_is_announced_to_no_party(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` tells its parties that the server stopped when its deferred rebuild
    fails (they exit at once). A stop that surfaced as another error there (a SIGTERM
    from a service manager restarting the server) was told them as "it could not
    rebuild its ledger's missing rows": every branch left, and the restarted server
    found none. A stop is announced to nobody, as a Ctrl-C's KeyboardInterrupt is not:
    the parties see their sessions end and redial."""
    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, _config(1), _report)
    told: list[tuple[bool, str]] = []

    def stopped(ledger: Ledger, entry: dict[str, object]) -> int:
        ask_stop(signal.SIGTERM)
        raise RuntimeError("cannot release un-acquired lock")

    def announce_end(server: FederationServer, finished: bool, reason: str) -> None:
        told.append((finished, reason))

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "append", stopped)
        patched.setattr(FederationServer, "_announce_end", announce_end)
        ledger = Ledger(tmp_path / "ledger.sqlite", key)
        store = ServerStore(tmp_path / "state.sqlite")
        try:
            server = FederationServer(_config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(RuntimeError, match="un-acquired lock"):
                server.run(wait_for_clients=0.0)
        finally:
            forget_stop()
            ledger.close()
            store.close()
    assert told == [], f"a stop was announced to the parties as a failure: {told}"
    assert server.stop_reason is None
