"""After a round a stop ended, the server's ``ServerStopped`` says it was stopped (and by
what), not that it stopped on an error; and a Ctrl-C that a library turned into its own
error (the interrupt in the error's chain, nothing recorded: the library used without
the CLI's signal handlers) is that stop, not a failed write.

Findings (reviewer's leftovers, 2026-12-07):

1. After a Ctrl-C or SIGTERM in the middle of a round, ``run`` (or ``run_round``) on the
   same server raised ``ServerStopped("this server stopped on an error in round N ...")``
   although nothing had failed: the operator went looking for an error that never was.
   It now names the stop and says that a new start settles round N; a real error keeps
   its wording.
2. The server told a stop from a failure of its round by the process's stop record only
   (:func:`~secagg.transport.waiting.stop_asked`). A ``sqlite3.OperationalError`` raised
   while handling a ``KeyboardInterrupt`` with nothing recorded was a failed state write:
   an ERROR line, round 1 aborted with "state write failed", and every branch told "the
   server stopped on an error in round 1" (they exit 1 at once). The branch's and the key
   holder's catch-alls already looked at the chain
   (:func:`~secagg.transport.waiting.stop_within`); the server now does too, through one
   helper (:func:`~secagg.transport.waiting.stop_behind`).
"""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _ledgered_federation import NAMES, RecordingHub, ledgered_config, start_branches
from _record_replays import crash_mid_round_2, dpsgd_report, record_config
from _threads import BOUND

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop, stop_behind


def _chained_ctrl_c() -> BaseException:
    """A library's own error raised while it handled a Ctrl-C (its ``__context__``)."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        try:
            raise sqlite3.OperationalError("interrupted")
        except sqlite3.OperationalError as exc:
            return exc


def _wrapped_ctrl_c() -> BaseException:
    """A library's own error raised *from* a Ctrl-C (its ``__cause__``), context hidden."""
    error = RuntimeError("the worker was interrupted")
    error.__cause__ = KeyboardInterrupt()
    error.__suppress_context__ = True
    return error


#: how round 1's state write ends: (the exception, whether a SIGTERM is recorded first,
#: what the later ServerStopped names: the stop, or None for an error)
ENDINGS: dict[str, tuple[Callable[[], BaseException], bool, str | None]] = {
    "ctrl-c": (KeyboardInterrupt, False, "Ctrl-C (SIGINT)"),
    "sigterm": (lambda: StopAsked(signal.SIGTERM), True, "SIGTERM"),
    "sigterm-surfaced": (lambda: sqlite3.OperationalError("interrupted"), True, "SIGTERM"),
    "ctrl-c-in-context": (_chained_ctrl_c, False, "Ctrl-C (SIGINT)"),
    "ctrl-c-as-cause": (_wrapped_ctrl_c, False, "Ctrl-C (SIGINT)"),
    "error": (lambda: OSError(28, "No space left on device"), False, None),
}


def _run_round_1_ending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> tuple[RecordingHub, str, BaseException, str]:
    """A 2-round federation whose round 1 state write (its completion) ends as
    ``ending`` says; the hub, the ServerStopped's message a later ``run`` raised, the
    exception the first ``run`` raised, and round 1's status in the state."""
    make, record, _ = ENDINGS[ending]
    error = make()
    config = ledgered_config(tmp_path, rounds=2)
    hub = RecordingHub()
    parties = start_branches(hub, config)
    state = open_server_state(config, init=True)

    def failing(*_args: object, **_kwargs: object) -> None:
        if record:
            ask_stop(signal.SIGTERM)  # as the CLI's handler does before it raises
        raise error

    try:
        with monkeypatch.context() as patched:
            patched.setattr(ServerStore, "complete_round", failing)
            server = build_server(config, hub, state.store, ledger=state.ledger)
            with pytest.raises(BaseException) as raised:
                server.run(wait_for_clients=BOUND)
            forget_stop()  # as the CLI does once the stop is its line
            with pytest.raises(ServerStopped) as stopped:
                server.run(wait_for_clients=0.0)
            with pytest.raises(ServerStopped) as again:
                server.run_round()
            assert str(again.value) == str(stopped.value)
        status = next(row["status"] for row in state.store.rounds() if row["number"] == 1)
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
        state.close()
        for name in NAMES:
            hub.disconnect(name)
    for name, party in parties.items():
        assert party.done.wait(BOUND), f"{name} still runs"
    return hub, str(stopped.value), raised.value, status


@pytest.mark.parametrize("ending", [e for e in ENDINGS if ENDINGS[e][2] is not None])
def test_a_server_a_stop_ended_in_a_round_says_it_was_stopped(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    ending: str,
) -> None:
    """Before: "this server stopped on an error in round 1" (and, for a Ctrl-C only in
    the chain, an ERROR line, round 1 aborted as a failed write, and every branch told
    to exit). Now: the stop named, round 1 left for the next start to settle (still
    running in the state, as a Ctrl-C leaves it), nothing announced, no ERROR."""
    caplog.set_level(logging.DEBUG, logger="secagg")
    mine = threading.get_ident()
    hub, message, _, status = _run_round_1_ending(tmp_path, monkeypatch, ending)
    named = ENDINGS[ending][2]
    assert "on an error" not in message, message
    assert message.startswith(f"this server was stopped by {named} in round 1 "), message
    assert "it settles round 1 first" in message, message
    assert hub.ends() == [], f"a stop was announced as an error: {hub.ends()}"
    assert status == "running", "a stop was recorded as the round's failure"
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.thread == mine and r.name.startswith("secagg") and r.levelno >= logging.ERROR
    ]
    assert errors == [], f"a stop was logged as a failure: {errors}"


def test_a_real_error_in_a_round_keeps_its_wording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed state write with no stop anywhere: "stopped on an error in round 1", the
    round aborted with the write's reason, and every branch told, as before."""
    hub, message, raised, status = _run_round_1_ending(tmp_path, monkeypatch, "error")
    assert isinstance(raised, OSError)
    assert message.startswith("this server stopped on an error in round 1 "), message
    assert status == "aborted"
    assert sorted(name for name, sent in hub.sent if sent in hub.ends()) == sorted(NAMES)


def test_stop_behind_prefers_the_record_then_the_chain() -> None:
    """The helper the server, the branch and the key holder share: the first stop
    recorded counts; else a KeyboardInterrupt in the chain (a StopAsked's own signal,
    SIGINT for a plain one); else None."""
    try:
        assert stop_behind(ValueError("nothing")) is None
        assert stop_behind(_chained_ctrl_c()) == signal.SIGINT
        assert stop_behind(_wrapped_ctrl_c()) == signal.SIGINT
        wrapped = OSError("wrapped")
        wrapped.__cause__ = StopAsked(signal.SIGTERM)
        assert stop_behind(wrapped) == signal.SIGTERM
        ask_stop(signal.SIGTERM)
        assert stop_behind(ValueError("while a stop is recorded")) == signal.SIGTERM
        assert stop_behind(KeyboardInterrupt()) == signal.SIGTERM  # the first stop counts
    finally:
        forget_stop()


def test_a_ctrl_c_in_the_chain_during_the_ledger_rebuild_is_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The deferred ledger rebuild (record level) told a stop from a failure by the
    record too: a library's error raised while it handled a Ctrl-C, nothing recorded,
    was the ERROR line "could not rebuild its ledger's missing rows", every party was
    told so, and the ServerStopped read "could not rebuild". Now it is the stop's
    WARNING line, announced to nobody, and the next start rebuilds the row."""
    names = [f"b{i}" for i in range(3)]

    def report(name: str) -> dict[str, Any]:
        return dpsgd_report([(1.0, 0.01, 100 * (names.index(name) + 1))])

    def config(rounds: int) -> FederationConfig:
        return record_config(names, name="records", rounds=rounds)

    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, config(1), report)
    surfaced = _chained_ctrl_c()
    told: list[tuple[bool, str]] = []

    def stopped(ledger: Ledger, entry: dict[str, object]) -> int:
        raise surfaced

    def announce_end(server: FederationServer, finished: bool, reason: str) -> None:
        told.append((finished, reason))

    caplog.set_level(logging.DEBUG, logger="secagg")
    mine = threading.get_ident()
    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "append", stopped)
        patched.setattr(FederationServer, "_announce_end", announce_end)
        ledger = Ledger(tmp_path / "ledger.sqlite", key)
        store = ServerStore(tmp_path / "state.sqlite")
        try:
            server = FederationServer(config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(sqlite3.OperationalError) as caught:
                server.run(wait_for_clients=0.0)
            assert caught.value is surfaced, "not raised unchanged"
            with pytest.raises(ServerStopped, match=re.escape("stopped by Ctrl-C (SIGINT) while")):
                server.run_round()
        finally:
            ledger.close()
            store.close()
    assert told == [], f"a stop was announced to the parties as a failure: {told}"
    records = [r for r in caplog.records if r.thread == mine and r.name.startswith("secagg")]
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert errors == [], f"a stop was logged as a failure of the ledger: {errors}"
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:  # the next start rebuilds the row the stop left missing
        FederationServer(config(3), InProcessHub(), store, ledger=ledger).backfill_ledger()
    finally:
        ledger.close()
        store.close()
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    assert [(row.entry["round"], row.entry.get("reconstructed")) for row in audit.chain.rows] == [
        (1, None),
        (2, True),
    ]
