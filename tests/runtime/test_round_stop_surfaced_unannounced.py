"""A stop that surfaced as another error in the middle of a round is announced to no
party, as a Ctrl-C there is not.

Finding (review of fd0284ec, 2026-12-07): the CLI's SIGINT/SIGTERM handlers record the
stop process-wide (:func:`~secagg.transport.waiting.ask_stop`) and a library may take
the interrupt and raise its own error (sqlite3's, an OS error). Raised from a state or
ledger write of a round, that error was handled as the write's failure: an ERROR line,
the round aborted in the state with "the server stopped on an error ...", and a
:class:`~secagg.runtime.wire.FederationEnd` "the server stopped on an error in round N"
to every party, which exits 1 at once: a server restarted by its service manager
(SIGTERM) found no branch. A plain Ctrl-C there announces nothing and writes nothing
more (the next start settles the round: aborts it, or rebuilds its missing ledger row);
a stop that surfaced as another error now does the same, and the error is raised
unchanged (the CLI says the stop, 143/130). The same failure with no stop recorded is
announced exactly as before.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
from _ledgered_federation import NAMES, RecordingHub, ledgered_config, start_branches
from _threads import BOUND

from secagg.ledger.chain import Ledger
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import ServerStopped
from secagg.runtime.store import ServerStore
from secagg.transport.waiting import ask_stop, forget_stop

#: the write that fails in round 1, and the error a library surfaces a stop as there
FAILURES = {
    "state": lambda: sqlite3.OperationalError("interrupted"),
    "ledger": lambda: OSError(4, "Interrupted system call"),
}


def _fail_round_1(
    monkeypatch: pytest.MonkeyPatch, where: str, error: BaseException, *, stop: bool
) -> None:
    """Make round 1's ``where`` write raise ``error``; ``stop``: record a SIGTERM first,
    as the CLI's handler does before the library swallows its interrupt."""

    def failing(*_args: object, **_kwargs: object) -> None:
        if stop:
            ask_stop(signal.SIGTERM)
        raise error

    if where == "state":
        monkeypatch.setattr(ServerStore, "complete_round", failing)
    else:
        monkeypatch.setattr(Ledger, "append", failing)


def _run_to_the_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, error: BaseException, stop: bool
) -> tuple[RecordingHub, str | None]:
    """Run a 2-round federation whose round 1 ``where`` write raises ``error``; the hub
    (what the server sent) and the server's ``stop_reason``. The exception ``run``
    raises must be ``error`` itself, and the server runs nothing after it."""
    config = ledgered_config(tmp_path, rounds=2)
    hub = RecordingHub()
    parties = start_branches(hub, config)
    state = open_server_state(config, init=True)
    try:
        with monkeypatch.context() as patched:
            _fail_round_1(patched, where, error, stop=stop)
            server = build_server(config, hub, state.store, ledger=state.ledger)
            with pytest.raises(BaseException) as raised:
                server.run(wait_for_clients=BOUND)
            assert raised.value is error, f"not raised unchanged: {raised.value!r}"
            with pytest.raises(ServerStopped):
                server.run(wait_for_clients=0.0)
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
        state.close()
        for name in NAMES:
            hub.disconnect(name)
    for name, party in parties.items():
        assert party.done.wait(BOUND), f"{name} still runs"
    return hub, server.stop_reason


def _settled_after_restart(tmp_path: Path) -> tuple[list[tuple[int, str, object]], list[int]]:
    """Start a server on the state again (as the service manager does): the state's
    rounds (number, status, reason) and the ledger's rounds, once the restart settled
    round 1."""
    config = ledgered_config(tmp_path, rounds=2)
    state = open_server_state(config)
    try:
        server = build_server(config, RecordingHub(), state.store, ledger=state.ledger)
        server.backfill_ledger()
        assert server.next_round == 2
        rounds = [
            (row["number"], row["status"], (row["report"] or {}).get("reason"))
            for row in state.store.rounds()
        ]
        return rounds, [entry["round"] for entry in state.ledger.entries()]
    finally:
        state.close()


@pytest.mark.parametrize("where", sorted(FAILURES))
def test_a_stop_that_surfaced_as_another_error_in_a_round_is_announced_to_no_party(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """Before: every branch was sent "the server stopped on an error in round 1" (they
    exit 1 at once) and the stop was an ERROR line of a failed write. Now: no end is
    sent, no stop reason is set, one WARNING line names the stop and what it surfaced as,
    and the state is what a Ctrl-C there leaves (the next start settles round 1)."""
    surfaced = FAILURES[where]()
    caplog.set_level(logging.DEBUG, logger="secagg")
    mine = threading.get_ident()
    hub, stop_reason = _run_to_the_failure(tmp_path, monkeypatch, where, surfaced, stop=True)
    assert hub.ends() == [], f"a stop was announced as an error: {hub.ends()}"
    assert stop_reason is None
    records = [r for r in caplog.records if r.thread == mine and r.name.startswith("secagg")]
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert errors == [], f"a stop was logged as a failed write: {errors}"
    said = [r.getMessage() for r in records if "stopped by SIGTERM" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in records]
    assert f"surfaced as {type(surfaced).__name__}" in said[0]
    assert _settled_after_restart(tmp_path) == _ctrl_c_settled(tmp_path / "ctrl-c", where)


def _ctrl_c_settled(tmp_path: Path, where: str) -> tuple[list[tuple[int, str, object]], list[int]]:
    """What a plain Ctrl-C at the same write leaves once a restart settled it (nothing
    announced either: checked here, as the reference the stop is held to)."""
    tmp_path.mkdir()
    with pytest.MonkeyPatch.context() as patched:
        hub, stop_reason = _run_to_the_failure(
            tmp_path, patched, where, KeyboardInterrupt(), stop=False
        )
    assert hub.ends() == [] and stop_reason is None
    return _settled_after_restart(tmp_path)


@pytest.mark.parametrize("where", sorted(FAILURES))
def test_the_same_failure_with_no_stop_recorded_is_announced_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A real failed write (no stop recorded): every branch is told that the server
    stopped on an error in round 1, naming the write, as before."""
    failed = FAILURES[where]()
    hub, stop_reason = _run_to_the_failure(tmp_path, monkeypatch, where, failed, stop=False)
    told = f"the server stopped on an error in round 1: its {where} write failed"
    assert stop_reason is not None and stop_reason.startswith(told)
    sent_to = sorted(name for name, message in hub.sent if message in hub.ends())
    assert sent_to == sorted(NAMES)
    assert all(end.reason == stop_reason and not end.finished for end in hub.ends())
