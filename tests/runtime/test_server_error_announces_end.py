"""A server that stops on a write failure it reports still ends the federation for its
parties.

Finding (review, 2026-12-06): :meth:`FederationServer.run` sent the
:class:`~secagg.runtime.wire.FederationEnd` only after its rounds returned. A failed
state or ledger write (a full disk, the ledger file deleted or replaced under the
server) raises out of the rounds, so no end was sent: every branch and the key holder
sat in their idle wait (``--idle``, minutes in a deployment) and then gave up saying
the server had gone quiet, although the server had logged why it stopped. Now such a
failure is announced as a stop (never as a finished federation: the failed round's
result reaches nobody), with a reason that names the failed write and not the server's
files; the error the server raises is the same; and a crash the server did not report
(any other exception) announces nothing, as before.

The branches here wait ten times :data:`BOUND` before their idle timer would end them,
so only an announced end stops them within the bound.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from _ledgered_federation import IDLE, NAMES, ledger_path, ledgered_config
from _threads import BOUND, Party

from secagg.aggregation.policy import BranchPolicy
from secagg.ledger.chain import Ledger, LedgerError, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import FederationEnd, decode_message
from secagg.transport.inprocess import InProcessHub

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

#: seconds a branch waits in silence before giving up: far beyond any bound below
PATIENT = 10 * BOUND
assert PATIENT > IDLE


def _branches(hub: InProcessHub, config: FederationConfig) -> dict[str, FederationClient]:
    """The federation's branches on ``hub``, each toward its own constant target."""
    clients = {}
    for i, name in enumerate(NAMES):
        target = np.full(config.dimension, 0.01 * (i + 1))
        clients[name] = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
    return clients


def _start(clients: dict[str, FederationClient], rounds: int) -> dict[str, Party]:
    return {
        name: Party(lambda c=client: c.run(idle_timeout=PATIENT, rounds=rounds))
        for name, client in clients.items()
    }


def _federation_ends_sent(hub: InProcessHub, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every party ``hub`` is asked to send a federation end to."""
    sent: list[str] = []
    send = hub.send

    def recording_send(name: str, payload: bytes) -> None:
        if isinstance(decode_message(payload), FederationEnd):
            sent.append(name)
        send(name, payload)

    monkeypatch.setattr(hub, "send", recording_send)
    return sent


def _end_after_the_error(
    hub: InProcessHub, clients: dict[str, FederationClient], parties: dict[str, Party]
) -> dict[str, tuple[str | None, str]]:
    """Wait (one deadline of :data:`BOUND` for all) for every branch to return; each
    one's outcome and end reason. Closes the sessions only afterwards: the hub drops an
    end still in a closed session's inbox."""
    deadline = time.monotonic() + BOUND
    still_waiting = [n for n, p in parties.items() if not p.done.wait(deadline - time.monotonic())]
    for name in clients:
        hub.disconnect(name)
    assert not still_waiting, f"no federation end reached {still_waiting}: they wait out --idle"
    failed = {n: repr(p.error) for n, p in parties.items() if p.error is not None}
    assert not failed, failed
    return {n: (c.stats.outcome, c.stats.end_reason) for n, c in clients.items()}


def test_branches_are_told_the_federation_stopped_when_a_ledger_append_is_refused(
    tmp_path: Path,
) -> None:
    """The ledger file deleted after round 1: round 2's append is refused and the server
    stops with its LedgerError (unchanged). Before, no branch heard anything more (0 of
    5 ended within the bound); now each one returns at once, told the server stopped on
    its ledger write, not that the federation finished."""
    config = ledgered_config(tmp_path, rounds=3)
    path = ledger_path(config)

    def delete_the_ledger_after_round_1(result: RoundResult, _model: np.ndarray) -> None:
        if result.number == 1:
            path.unlink()

    hub = InProcessHub()
    clients = _branches(hub, config)
    parties = _start(clients, config.rounds)
    state = open_server_state(config, init=True)
    try:
        server = build_server(
            config, hub, state.store, ledger=state.ledger, observer=delete_the_ledger_after_round_1
        )
        with pytest.raises(LedgerError, match=r"^round 2 could not be ledgered: .*was deleted"):
            server.run(wait_for_clients=BOUND)
    finally:
        state.close()
    ended = _end_after_the_error(hub, clients, parties)
    for name, (outcome, reason) in ended.items():
        assert outcome == "stopped", (name, outcome, reason)
        assert reason.startswith("the server stopped on an error in round 2: its ledger write"), (
            reason
        )
        assert str(tmp_path) not in reason  # the server's files are its own
    assert server.stop_reason == ended[NAMES[0]][1]


def test_a_failed_state_write_ends_the_federation_for_the_branches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state write that fails as round 1 finishes (a full disk: sqlite's error): the
    server raises that very error, and every branch is told the server stopped."""
    config = ledgered_config(tmp_path, rounds=2)
    full = sqlite3.OperationalError("database or disk is full")
    state = open_server_state(config, init=True)

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise full

    monkeypatch.setattr(state.store, "complete_round", disk_full)
    hub = InProcessHub()
    clients = _branches(hub, config)
    parties = _start(clients, config.rounds)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with pytest.raises(sqlite3.OperationalError) as stopped:
            server.run(wait_for_clients=BOUND)
    finally:
        monkeypatch.undo()
        state.close()
    assert stopped.value is full
    for name, (outcome, reason) in _end_after_the_error(hub, clients, parties).items():
        assert outcome == "stopped", (name, outcome, reason)
        assert reason.startswith("the server stopped on an error in round 1: its state write"), (
            reason
        )


def test_a_crash_the_server_did_not_report_announces_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (any exception the server's write handling does not take) is no stop the
    server can vouch for: it sends no federation end (the branches see the session end,
    as after a dead process), and the exception is raised as it was."""
    config = ledgered_config(tmp_path, rounds=2)
    bug = RuntimeError("a bug in round 1")

    def broken_round(*_args: object) -> RoundResult:
        raise bug

    monkeypatch.setattr(FederationServer, "_round", broken_round)
    hub = InProcessHub()
    sent = _federation_ends_sent(hub, monkeypatch)
    clients = _branches(hub, config)
    parties = _start(clients, config.rounds)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with pytest.raises(RuntimeError) as crashed:
            server.run(wait_for_clients=BOUND)
    finally:
        state.close()
        for name in clients:
            hub.disconnect(name)
    assert crashed.value is bug
    assert sent == []
    for name, party in parties.items():
        assert party.done.wait(BOUND), name


def test_an_announcement_that_fails_leaves_the_servers_error_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end is told on the way out of an error: a send that fails unexpectedly is
    logged, and the error raised is still the failed write's, not the announcement's."""
    config = ledgered_config(tmp_path, rounds=2)
    fsync_failed = OSError(5, "Input/output error")

    def append_fails(_ledger: Ledger, _entry: dict[str, object]) -> int:
        raise fsync_failed

    monkeypatch.setattr(Ledger, "append", append_fails)
    hub = InProcessHub()
    send = hub.send

    def send_breaks_at_the_end(name: str, payload: bytes) -> None:
        if isinstance(decode_message(payload), FederationEnd):
            raise RuntimeError("the transport broke")
        send(name, payload)

    monkeypatch.setattr(hub, "send", send_breaks_at_the_end)
    clients = _branches(hub, config)
    parties = _start(clients, config.rounds)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with pytest.raises(OSError) as stopped:
            server.run(wait_for_clients=BOUND)
    finally:
        state.close()
        for name in clients:
            hub.disconnect(name)
    assert stopped.value is fsync_failed
    for name, party in parties.items():
        assert party.done.wait(BOUND), name


def test_the_key_holder_is_told_the_federation_stopped_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CKKS federation whose round 1 ledger append fails (a sync reported failed):
    before, the key holder (and the branches) waited out their idle timers; now the key
    holder returns "stopped" with the server's reason, as every branch does."""
    pytest.importorskip("tenseal")
    from _keyholder_federation import ckks_config, wrapped_holder_federation

    from secagg.runtime.keyholder import KeyHolderService

    names, holder = ["b1", "b2", "b3"], "compliance"
    config = ckks_config(names, holder, dimension=4)
    fsync_failed = OSError(5, "Input/output error")

    def append_fails(_ledger: Ledger, _entry: dict[str, object]) -> int:
        raise fsync_failed

    def serve(party: FederationClient | KeyHolderService) -> object:
        return party.run(idle_timeout=PATIENT)

    hub = InProcessHub()
    _, parties = wrapped_holder_federation(
        config, hub, tmp_path / "keyholder.key", names, holder, 4, lambda s: s, serve
    )
    parties.start()
    store = ServerStore(tmp_path / "he.sqlite")
    ledger = Ledger(tmp_path / "he.ledger", LedgerKey.generate())
    monkeypatch.setattr(Ledger, "append", append_fails)
    try:
        with pytest.raises(OSError) as stopped:
            FederationServer(config, hub, store, ledger=ledger).run(wait_for_clients=BOUND)
    finally:
        store.close()
        ledger.close()
    assert stopped.value is fsync_failed
    parties.end_announced(BOUND)
    key_holder = parties.processes[holder]
    assert isinstance(key_holder, KeyHolderService)
    assert key_holder.outcome == "stopped"
    assert key_holder.end_reason.startswith(
        "the server stopped on an error in round 1: its ledger write failed"
    )
