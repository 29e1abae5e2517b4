"""A server process killed between its state's commit and its ledger's, in either order,
restarts: it resumes or records the round aborted, and never refuses to start.

Why: since 2026-12-06 the cross-check of state and ledger
(:func:`~secagg.runtime.launch.check_state_against_ledger`) refuses a state that holds
as running, or finished otherwise, a round its ledger recorded (a backup copied while
the round ran). A crash between two commits of one round must not look like that to
the next start, or a federation killed at the wrong moment would refuse to start again
for good, and its operator would be told to restore a backup that does not exist. The
server writes its state first and its ledger second for a round's end (so: state
finished, ledger without the row: rebuilt at the restart), and, while it recovers, the
ledger's rebuilt row first and the state's note of it second (so: ledger with the row,
state without the note). Each of those crashes, and a crash while the state still holds
the round running, is played here: the next process opens, the ledger holds each round
once, and the federation runs its next round.
(tests/runtime/test_crash_points.py walks every durable write the same way, marked
slow; these are the orders the cross-check reads, cheap enough for every run.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from secagg.ledger.chain import Ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import ServerState, build_server, open_server_state
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = ["b1", "b2", "b3"]


class Crash(BaseException):
    """The process dies here (no handler of the runtime's may take it for an error)."""


def _config(tmp_path: Path) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "restart-order", "clients": NAMES, "dimension": 4, "rounds": 5},
        "backend": {"name": "secagg+", "value_bound": 1.0},
        "server": {"state": str(tmp_path / "state.sqlite")},
    }
    return FederationConfig.from_dict(data)


def _start(config: FederationConfig) -> tuple[ServerState, FederationServer]:
    """A server process: its state opened and checked, the server built (and recovered).
    No branch connects: each round it runs aborts (fewer than 2 sampled) and is stored
    and ledgered as any round's end is."""
    state = open_server_state(config)
    try:
        return state, build_server(config, InProcessHub(), state.store, ledger=state.ledger)
    except BaseException:
        state.close()
        raise


def _die(state: ServerState) -> None:
    """The process is gone: its files stay as the last commit left them."""
    state.close()


def _crash_at(monkeypatch: pytest.MonkeyPatch, owner: type, method: str) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise Crash(f"killed before {owner.__name__}.{method}")

    monkeypatch.setattr(owner, method, crash)


def _files(config: FederationConfig) -> tuple[dict[int, str], list[int]]:
    """What the state holds (round -> status) and which rounds the ledger records, as
    the next process reads them (opened and cross-checked, nothing recovered)."""
    state = open_server_state(config)
    try:
        return state.store.round_numbers(), [int(e["round"]) for e in state.ledger.entries()]
    finally:
        state.close()


#: where the first process dies in round 2: the round's end stored, its ledger row not
#: yet written; or the round still running in the state
FIRST = {
    "state-then-ledger": (Ledger, "append"),
    "running": (ServerStore, "abort_round"),
}
#: where the restarted process dies while it recovers: after the state's commit of the
#: running round as aborted, before the ledger's rebuilt row (state, then ledger); after
#: the ledger's rebuilt row, before the state's note of it (ledger, then state)
RECOVERY = {
    "no second crash": None,
    "recovered-state-then-ledger": (Ledger, "append"),
    "rebuilt-ledger-then-state": (ServerStore, "note_ledger_rebuilt"),
}


@pytest.mark.parametrize("recovery", sorted(RECOVERY))
@pytest.mark.parametrize("first", sorted(FIRST))
def test_a_restart_after_a_crash_between_state_and_ledger_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str, recovery: str
) -> None:
    config = _config(tmp_path)
    state, server = _start(config)
    assert server.run_round().status == "aborted"  # round 1: stored, then ledgered
    with monkeypatch.context() as crashing:
        if first == "running":
            # killed inside round 2: the state holds it running, the ledger has no row
            _crash_at(crashing, type(server.mechanism), "begin_round")
        else:
            _crash_at(crashing, *FIRST[first])
        with pytest.raises(Crash):
            server.run_round()
    _die(state)
    held = {1: "aborted", 2: "running" if first == "running" else "aborted"}
    assert _files(config) == (held, [1])  # the crash left what it says
    crashed = RECOVERY[recovery]
    if crashed is not None:
        with monkeypatch.context() as crashing:
            _crash_at(crashing, *crashed)
            try:
                state, server = _start(config)
            except Crash:
                pass  # died while it recovered (no second crash point is reached otherwise)
            else:
                _die(state)
        if recovery == "recovered-state-then-ledger" and first == "running":
            assert _files(config) == ({1: "aborted", 2: "aborted"}, [1])
        elif recovery == "rebuilt-ledger-then-state":
            assert _files(config) == ({1: "aborted", 2: "aborted"}, [1, 2])
    # the next process: it opens, every finished round ledgered once, and it runs on
    state, server = _start(config)
    try:
        assert state.store.round_numbers() == {1: "aborted", 2: "aborted"}
        assert server.run_round().number == 3
    finally:
        _die(state)
    assert _files(config) == ({1: "aborted", 2: "aborted", 3: "aborted"}, [1, 2, 3])


def _report_of(config: FederationConfig, number: int) -> dict[str, Any]:
    """Round ``number``'s report as the state holds it (opened as the next process
    opens it, nothing recovered)."""
    state = open_server_state(config)
    try:
        (row,) = [r for r in state.store.rounds() if r["number"] == number]
        return dict(row["report"] or {})
    finally:
        state.close()


@pytest.mark.parametrize("first", sorted(FIRST))
def test_a_rebuilt_row_whose_note_a_crash_lost_is_noted_at_the_next_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """A restart rebuilds round 2's row (no ``ledger_row_missing`` note: the first
    process died before the append, or inside the round) and dies before its state
    records ``ledger_row_rebuilt``: the next restart finds the row marked
    ``reconstructed`` and records the note, as a restart that did not crash does.

    Why: the next restart mended only a round noted ``ledger_row_missing``; a round with
    no note kept none for good, so the state told its operator nothing of a ledger row
    an auditor reads as rebuilt, where the uncrashed restart recorded
    ``ledger_row_rebuilt: no cause recorded``."""
    config = _config(tmp_path)
    state, server = _start(config)
    assert server.run_round().status == "aborted"  # round 1: stored, then ledgered
    with monkeypatch.context() as crashing:
        if first == "running":
            _crash_at(crashing, type(server.mechanism), "begin_round")
        else:
            _crash_at(crashing, *FIRST[first])
        with pytest.raises(Crash):
            server.run_round()
    _die(state)
    assert "ledger_row_missing" not in _report_of(config, 2)  # died before any note
    with monkeypatch.context() as crashing:
        _crash_at(crashing, ServerStore, "note_ledger_rebuilt")
        with pytest.raises(Crash):
            _start(config)  # rebuilt the row, died before the note
    assert _files(config)[1] == [1, 2]
    assert "ledger_row_rebuilt" not in _report_of(config, 2)
    state, server = _start(config)
    _die(state)
    assert _report_of(config, 2).get("ledger_row_rebuilt") == "no cause recorded"
    assert _files(config)[1] == [1, 2]  # noted, not rebuilt a second time
