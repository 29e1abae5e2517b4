"""The server's ledger error paths: a ledger tampered with (a signed row that is not a
JSON object), or replaced or deleted under a running server.

Each test drives a real federation over the in-process transport (five branches,
SecAgg+: tests/_ledgered_federation.py) through :func:`~secagg.runtime.launch.open_server_state` and
:func:`~secagg.runtime.launch.build_server`, as ``secagg server`` does, and damages the
ledger the way an intruder holding the ledger key or an operator would. What
must hold: a typed one-line error (:class:`~secagg.ledger.chain.LedgerError`) naming
what is wrong, a truthful note with the round in the state, and no model handed out
for a round the ledger does not record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from _ledgered_federation import (
    ledger_path,
    ledgered_config,
    ledgered_server,
    stored_reports,
)

from secagg.ledger.chain import Ledger, LedgerError, LedgerKey, read_chain
from secagg.runtime.launch import open_server_state
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

# --- a signed ledger row that is not a JSON object -------------------------------------------


def test_a_non_object_row_found_after_a_failed_append_is_noted_and_the_restart_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Round 2's append fails (a sync reported failed) with a signed row that is a JSON
    list where round 2's row would be (written by someone holding the ledger key).
    Reading the ledger again ended in ``'list' object has no attribute 'get'``, caught
    only by the last-resort handler: no note of the failed append was stored with the
    round. Now the note says the append failed and why the ledger could not be read
    again, naming the row; the restart refuses the ledger in one line."""
    config = ledgered_config(tmp_path, rounds=3)
    fsync_failed = OSError(5, "Input/output error")
    append = Ledger.append

    def forged_row_then_fsync_fails(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2:  # the forged row stands where round 2's would
            append(ledger, [1, 2])  # type: ignore[arg-type]
            raise fsync_failed
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", forged_row_then_fsync_fails)
    state = open_server_state(config, init=True)
    try:
        with caplog.at_level(logging.ERROR, logger="secagg.server"):
            with pytest.raises(OSError) as stopped:
                ledgered_server(config, state).run(wait_for_clients=60)
    finally:
        state.close()
    monkeypatch.undo()
    assert stopped.value is fsync_failed
    lines = [r.getMessage() for r in caplog.records]
    assert not any("could not be recorded either" in line for line in lines), lines
    round_2 = stored_reports(config)[1]
    note = round_2.get("ledger_row_missing")
    assert note is not None, round_2
    assert note.startswith("ledger write failed: [Errno 5] Input/output error")
    assert "row 2 is not a JSON object" in note, note
    with pytest.raises(LedgerError, match=r"row 2 is not a JSON object but list") as refused:
        open_server_state(config)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("forged", [7, [1, 2], "text"], ids=["number", "list", "string"])
def test_a_server_given_a_ledger_with_a_non_object_row_refuses_it_naming_the_row(
    tmp_path: Path, forged: object
) -> None:
    """A server built on a ledger holding a signed row that is not a JSON object (its
    chain verifies: the row was signed with the ledger key) ended in an AttributeError
    as it read the rows back (``entry.get``), before any check could name the row."""
    config = ledgered_config(tmp_path, rounds=1)
    ledger = Ledger(ledger_path(config), LedgerKey.generate())
    ledger.append(forged)  # type: ignore[arg-type]
    store = ServerStore(config.server.state)
    try:
        with pytest.raises(LedgerError, match=r"row 1 is not a JSON object") as refused:
            FederationServer(config, InProcessHub(), store, ledger=ledger)
        assert "\n" not in str(refused.value)
        assert [row.seq for row in read_chain(ledger.path, ledger.key.public_key).rows] == [1]
    finally:
        store.close()
        ledger.close()


# --- the ledger file deleted or replaced under the running server ----------------------------


@pytest.mark.parametrize("damage", ["deleted", "replaced"])
def test_a_ledger_deleted_or_replaced_mid_run_is_noted_and_stops_the_server(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The ledger file deleted (or another file moved over it) after round 1: round 2's
    append is refused (:meth:`Ledger.check_file`), but its LedgerError went past the
    failed-write handler, so the state kept round 2 complete with no word of its row
    missing. Now the state notes why the row is missing, the log names the ledger write,
    the server stops with the one-line LedgerError, and round 2's model reaches nobody:
    the observer (the simulator's report) never sees it and no branch hears its end."""
    config = ledgered_config(tmp_path, rounds=3)
    path = ledger_path(config)
    seen: list[int] = []

    def damage_after_round_1(result: RoundResult, _model: np.ndarray) -> None:
        seen.append(result.number)
        if result.number != 1:
            return
        if damage == "deleted":
            path.unlink()
        else:
            other = tmp_path / "other.ledger"
            Ledger(other, LedgerKey.generate()).close()
            os.replace(other, path)

    state = open_server_state(config, init=True)
    try:
        with caplog.at_level(logging.ERROR, logger="secagg.server"):
            with pytest.raises(LedgerError, match=f"round 2 .*was {damage}") as stopped:
                ledgered_server(config, state, observer=damage_after_round_1).run(
                    wait_for_clients=60
                )
    finally:
        state.close()
    assert "\n" not in str(stopped.value)
    assert seen == [1]  # round 2's result was handed to no one
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round 2:")]
    assert any("could not append the round's ledger row" in line for line in lines), lines
    round_1, round_2 = stored_reports(config)
    assert "ledger_row_missing" not in round_1
    assert round_2["ledger_row_missing"].startswith(
        f"ledger write failed: the ledger {path} was {damage}"
    )
    assert "released to no branch" in str(stopped.value)


def test_a_ledger_replaced_by_its_own_copy_is_rebuilt_at_the_restart_with_the_cause(
    tmp_path: Path,
) -> None:
    """What the one line promises: the ledger put back (here a copy of itself taken
    after round 1, moved over the file while the server ran), the next start rebuilds
    round 2's row from the state, saying why it was missing, and goes on."""
    config = ledgered_config(tmp_path, rounds=3)
    path = ledger_path(config)

    def copy_moved_over_after_round_1(result: RoundResult, _model: np.ndarray) -> None:
        if result.number == 1:
            copy = tmp_path / "copy.ledger"
            copy.write_bytes(path.read_bytes())
            os.replace(copy, path)

    state = open_server_state(config, init=True)
    try:
        with pytest.raises(LedgerError, match="round 2 could not be ledgered"):
            ledgered_server(config, state, observer=copy_moved_over_after_round_1).run(
                wait_for_clients=60
            )
    finally:
        state.close()
    again = open_server_state(config)
    try:
        results = ledgered_server(config, again).run(wait_for_clients=60)
    finally:
        again.close()
    assert [(r.number, r.status) for r in results] == [(3, "complete")]
    report = read_chain(path)
    assert report.ok, report.failure
    rows = {row.entry["round"]: row.entry for row in report.rows}
    assert sorted(rows) == [1, 2, 3]
    assert rows[2]["reconstructed"] is True
    assert "was replaced by another file" in rows[2]["reconstruction"]["cause"]
    assert stored_reports(config)[1]["ledger_row_rebuilt"].startswith(
        f"ledger write failed: the ledger {path} was replaced"
    )
