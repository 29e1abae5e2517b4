"""An error in a round that is no state or ledger write is not reported as one.

Finding (review of the server's error paths, 2026-12-07): :meth:`FederationServer._run_round`
took every :class:`OSError` out of a round for a failed write, and named the write by a
marker that stood at "state" for the whole round but the ledger append. So an OSError
from anywhere else (the transport's receive or a send, an OS random source, a file a
backend reads) was logged "the server could not write its state", stored as the round's
abort reason ("state write failed: ...") and told to every party in the federation's end
("its state write failed"): the operator was sent to check a disk that was fine. Now the
marker stands at a write only while that write runs; an error outside the writes is
named as such, in the log, the stored reason and the end the parties hear; and an
OSError that a send to one party raises is that party's failure, as a lost connection
is (:meth:`FederationServer._send`), never the round's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from _ledgered_federation import (
    NAMES,
    RecordingHub,
    ledger_path,
    ledgered_config,
    start_branches,
    stored_reports,
)
from _threads import BOUND

from secagg.ledger.chain import read_chain
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore, StateLost
from secagg.runtime.wire import RoundStart, decode_message
from secagg.transport.inprocess import InProcessHub


class _ReceiveFailsInRound2(RecordingHub):
    """A transport whose receive raises an OSError once round 2's start went out: an
    endpoint failing under the server, which is no write of its state or ledger."""

    failure = OSError(5, "Input/output error")

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        if self.round_started(2):
            raise self.failure
        return super().receive(timeout)


class _SendTimesOutOnce(RecordingHub):
    """A transport whose send to branch-0 of round 1's start raises a TimeoutError (an
    OSError, no ConnectionError), once."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = False

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        message = decode_message(b"".join(parts))
        if not self.raised and name == NAMES[0] and isinstance(message, RoundStart):
            self.raised = True
            raise TimeoutError("send timed out")
        super().send_to_session(name, session, parts)


def test_a_transport_error_mid_round_is_not_called_a_state_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The transport's receive raises OSError(EIO) in round 2. Before: logged "could not
    write its state", round 2 stored aborted with "state write failed: [Errno 5] ...",
    and the parties told "its state write failed", and the restart signed that reason
    into round 2's rebuilt ledger row. Now each names an error outside the server's
    state and ledger writes, with its type; the error raised is the same, and round 2 is
    still recorded aborted (its restart continues from round 1)."""
    config = ledgered_config(tmp_path, rounds=3)
    hub = _ReceiveFailsInRound2()
    start_branches(hub, config)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with caplog.at_level(logging.ERROR, logger="secagg.server"):
            with pytest.raises(OSError) as stopped:
                server.run(wait_for_clients=60)
    finally:
        state.close()
    assert stopped.value is _ReceiveFailsInRound2.failure
    lines = [r.getMessage() for r in caplog.records]
    assert not any("could not write its state" in line for line in lines), lines
    assert any(
        "round 2: the server stopped on an error outside its state and ledger writes: "
        "OSError: [Errno 5] Input/output error" in line
        for line in lines
    ), lines
    round_1, round_2 = stored_reports(config)
    assert "reason" not in round_1
    assert round_2["reason"] == (
        "the server stopped on an error outside its state and ledger writes: "
        "OSError: [Errno 5] Input/output error"
    )
    told = {end.reason for end in hub.ends()}
    assert told == {
        "the server stopped on an error in round 2 outside its state and ledger writes "
        "(the server's log has the cause)"
    }, told
    assert server.stop_reason in told
    assert [row.entry["round"] for row in read_chain(ledger_path(config)).rows] == [1]
    # the restart rebuilds round 2's signed row from the state: its reason is the true one
    again = open_server_state(config)
    try:
        build_server(config, InProcessHub(), again.store, ledger=again.ledger)
    finally:
        again.close()
    rows = {row.entry["round"]: row.entry for row in read_chain(ledger_path(config)).rows}
    assert rows[2]["status"] == "aborted"
    assert rows[2]["reason"] == round_2["reason"]


def test_a_send_that_raises_an_os_error_is_that_partys_failure(tmp_path: Path) -> None:
    """Round 1's start to branch-0 raises TimeoutError. Before: the server stopped, saying
    its state write failed (no round of 2 complete). Now branch-0 is a dropout of round 1,
    as for a lost connection (told the round runs without it; with the whole cohort as
    threshold the round aborts on it), and the federation goes on to finish."""
    config = ledgered_config(tmp_path, rounds=2)
    hub = _SendTimesOutOnce()
    start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=True)
    try:
        server: FederationServer = build_server(config, hub, state.store, ledger=state.ledger)
        results = server.run(wait_for_clients=60)
        finished = server.finished
    finally:
        state.close()
    assert hub.raised
    statuses = [(r.number, r.status) for r in results]
    assert statuses == [(1, "aborted"), (2, "complete"), (3, "complete")], statuses
    assert "write" not in (results[0].reason or ""), results[0].reason
    assert "below the threshold" in (results[0].reason or ""), results[0].reason
    assert set(results[1].contributed) == set(NAMES)
    assert finished and server.stop_reason is None


class _HolderSendTimesOutOnce(RecordingHub):
    """A transport whose first send of a request to the key holder raises TimeoutError."""

    def __init__(self, holder: str) -> None:
        super().__init__()
        self.holder = holder
        self.raised = False

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        if not self.raised and name == self.holder:
            self.raised = True
            raise TimeoutError("send timed out")
        super().send_to_session(name, session, parts)


def test_a_request_to_the_key_holder_that_raises_an_os_error_aborts_only_its_round(
    tmp_path: Path,
) -> None:
    """A CKKS round whose first request to the key holder raises TimeoutError. Before: the
    server stopped on it, saying its state write failed. Now the round aborts naming the
    key holder and the error, as for any send to it that fails while it is connected, and
    the next round completes."""
    pytest.importorskip("tenseal")
    from _keyholder_federation import ckks_config, wrapped_holder_federation

    names, holder = ["b1", "b2", "b3"], "compliance"
    config = ckks_config(names, holder, dimension=4)
    hub = _HolderSendTimesOutOnce(holder)
    _, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        names,
        holder,
        4,
        lambda s: s,
        lambda party: party.run(idle_timeout=60),
    )
    parties.start()
    store = ServerStore(tmp_path / "he.sqlite")
    try:
        results = FederationServer(config, hub, store).run(wait_for_clients=60)
    finally:
        store.close()
    parties.end_announced()
    assert hub.raised
    assert [(r.number, r.status) for r in results] == [(1, "aborted"), (2, "complete")]
    assert results[0].reason is not None
    assert f"could not send to the key holder {holder} in phase key" in results[0].reason
    assert "TimeoutError: send timed out" in results[0].reason


@pytest.mark.parametrize("damage", ["deleted", "replaced"])
def test_a_state_file_lost_mid_run_is_a_failed_state_write_told_to_the_parties(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The state file deleted (or another moved over it) after round 1: round 2's first
    write is refused (:class:`~secagg.runtime.store.StateLost`) and the server stops
    with it, as before. Before, that refusal went past the failed-write handler (it is
    no sqlite3 or OS error): the server logged nothing of it and told no party (every
    branch waited out its ``--idle``), where a ledger deleted the same way is announced.
    Now it is a failed state write: logged, and every branch is told the server stopped
    on its state write."""
    config = ledgered_config(tmp_path, rounds=3)
    path = Path(config.server.state)

    def damage_after_round_1(result: RoundResult, _model: np.ndarray) -> None:
        if result.number != 1:
            return
        if damage == "deleted":
            path.unlink()
        else:
            other = tmp_path / "other.sqlite"
            ServerStore(other).close()
            os.replace(other, path)

    hub = RecordingHub()
    parties = start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=True)
    try:
        server = build_server(
            config, hub, state.store, ledger=state.ledger, observer=damage_after_round_1
        )
        with caplog.at_level(logging.ERROR, logger="secagg.server"):
            with pytest.raises(StateLost, match=f"was {damage}"):
                server.run(wait_for_clients=60)
    finally:
        state.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("round 2: the server could not write its state: the state ")
        and f"was {damage}" in line
        for line in lines
    ), lines
    told = {end.reason for end in hub.ends()}
    assert told == {
        "the server stopped on an error in round 2: its state write failed (the server's log "
        "has the cause)"
    }, told
    for name, party in parties.items():  # each returns on the end, not on its --idle
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
