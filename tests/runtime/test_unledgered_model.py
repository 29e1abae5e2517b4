"""A round whose ledger append (or state write) failed leaves no model behind that its
rows do not vouch for, and its server runs no more rounds.

Finding (review of the server's error paths, 2026-12-07): the server adopted a round's
model (its ``model``, what the next round start sends, what the simulator, the Ray
engine and the empirical audit report) before the state stored the round and before
its ledger row was appended. When either write failed, the server stopped with the
error, but it held that model: a caller that ran it again (``run`` or ``run_round`` on
the same object; the error is an ordinary exception) released it in the next round's
start, with no ledger row of the round that made it (a failed append), or from a round
the state records aborted and uncharged (a failed state write), and went on numbering
and charging from memory that no longer matched its files. Now the model is adopted
only once the state and the ledger both hold the round, and a server stopped on an
error in a round refuses to run another (:class:`~secagg.runtime.server.ServerStopped`,
naming the round): a new server started on the state resumes from it, rebuilding the
missing row first, so every model a branch receives has its row.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from _ledgered_federation import NAMES, RecordingHub, ledger_path, ledgered_config, start_branches
from _threads import BOUND

from secagg.ledger.chain import Ledger, read_chain
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import ServerStopped
from secagg.runtime.wire import RoundStart, model_bytes


def _digest(model: np.ndarray) -> str:
    return hashlib.sha256(model_bytes(model)).hexdigest()


def _ledgered_models(path: Path) -> dict[int, str]:
    """Each ledger row's round and the model digest it records."""
    return {row.entry["round"]: row.entry["model_sha256"] for row in read_chain(path).rows}


def _end(parties: dict, hub: RecordingHub) -> None:
    """Wait for every branch to return on the federation's end, then close its session."""
    waiting = [name for name, party in parties.items() if not party.done.wait(BOUND)]
    for name in NAMES:
        hub.disconnect(name)
    assert not waiting, waiting
    failed = {name: repr(party.error) for name, party in parties.items() if party.error}
    assert not failed, failed


def test_a_failed_ledger_append_leaves_the_last_ledgered_model_and_no_later_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 2's append fails (no space left: nothing written). Before: the server held
    round 2's model, and a second ``run`` on it (fresh branches connected) started
    round 3 with that model while the ledger had no row of round 2 (it ran rounds 3 and
    4 and returned). Now it holds round 1's model, the one its last row records, and the
    second ``run`` (and ``run_round``) is refused, sending and writing nothing; a new
    server on the state rebuilds round 2's row and then sends round 2's model."""
    config = ledgered_config(tmp_path, rounds=4)
    full = OSError(28, "No space left on device")
    append = Ledger.append
    failed: list[int] = []

    def no_space_once_in_round_2(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2 and not failed:
            failed.append(2)
            raise full
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", no_space_once_in_round_2)
    hub = RecordingHub()
    _end_of_first = start_branches(hub, config, until_end=True)
    state = open_server_state(config, init=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with pytest.raises(OSError) as stopped:
            server.run(wait_for_clients=BOUND)
        assert stopped.value is full
        _end(_end_of_first, hub)
        rows = _ledgered_models(ledger_path(config))
        assert sorted(rows) == [1]
        assert state.store.checkpoint_digest(2) is not None  # the state has round 2
        assert _digest(server.model) == rows[1] == state.store.checkpoint_digest(1)

        branches = start_branches(hub, config, until_end=True)  # the disk has space again
        rounds, sent = state.store.round_numbers(), len(hub.sent)
        with pytest.raises(ServerStopped, match=r"round 2\b") as refused:
            server.run(wait_for_clients=BOUND)
        assert "\n" not in str(refused.value)
        with pytest.raises(ServerStopped, match=r"round 2\b"):
            server.run_round()
        assert state.store.round_numbers() == rounds
        assert hub.sent[sent:] == []
        assert sorted(_ledgered_models(ledger_path(config))) == [1]
    finally:
        state.close()

    again = open_server_state(config)
    try:
        results = build_server(config, hub, again.store, ledger=again.ledger).run(
            wait_for_clients=BOUND
        )
        checkpoint_2 = again.store.checkpoint_digest(2)
    finally:
        again.close()
    _end(branches, hub)
    assert [(r.number, r.status) for r in results] == [(3, "complete"), (4, "complete")]
    rows = _ledgered_models(ledger_path(config))
    assert sorted(rows) == [1, 2, 3, 4]
    assert rows[2] == checkpoint_2
    # the start of round 3 carried round 2's model, whose row the ledger now holds
    start_3 = next(m for _, m in hub.sent if isinstance(m, RoundStart) and m.round == 3)
    assert np.array_equal(start_3.model, _checkpoint(Path(config.server.state), 2))


def _checkpoint(state: Path, number: int) -> np.ndarray:
    """Round ``number``'s checkpoint as the state stores it, in the wire's float32."""
    db = sqlite3.connect(state)
    try:
        query = "SELECT model FROM checkpoints WHERE round = ?"
        (blob,) = db.execute(query, (number,)).fetchone()
    finally:
        db.close()
    return np.frombuffer(blob, dtype="<f8").astype(np.float32)


def test_a_failed_state_write_leaves_the_model_as_it_was_and_no_later_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 2's state write fails as the round completes (a full disk): the state
    records the round aborted, with no model and no charge. Before: the server held the
    round's model all the same (a model of a round its state calls aborted) and ran on
    when asked. Now it holds round 1's model and refuses to run another round."""
    config = ledgered_config(tmp_path, rounds=3)
    state = open_server_state(config, init=True)
    complete_round = state.store.complete_round
    full = sqlite3.OperationalError("database or disk is full")

    def full_in_round_2(number: int, *args: object, **kwargs: object) -> None:
        if number == 2:
            raise full
        complete_round(number, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state.store, "complete_round", full_in_round_2)
    hub = RecordingHub()
    parties = start_branches(hub, config, until_end=True)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        with pytest.raises(sqlite3.OperationalError) as stopped:
            server.run(wait_for_clients=BOUND)
        assert stopped.value is full
        _end(parties, hub)
        assert state.store.round_numbers() == {1: "complete", 2: "aborted"}
        assert _digest(server.model) == state.store.checkpoint_digest(1)
        with pytest.raises(ServerStopped, match=r"round 2\b"):
            server.run(wait_for_clients=0, quorum_wait=1)
        assert state.store.round_numbers() == {1: "complete", 2: "aborted"}
    finally:
        state.close()
