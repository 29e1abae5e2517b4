"""State that cannot be lost silently (reliability review D4, D5, D8).

Each test drives a real federation over the in-process transport (five branches,
SecAgg+) through :func:`~secagg.runtime.launch.open_server_state` and
:func:`~secagg.runtime.launch.build_server`, as ``secagg server`` does, then
damages the state the way an operator or a disk would: a second server on the same
files, a state emptied, deleted or restored from an older copy, a state deleted or
replaced under the running server, a read-only or corrupt file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _state import read_only_state

from secagg.aggregation.policy import BranchPolicy
from secagg.ledger import verify_ledger
from secagg.ledger.chain import Ledger, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import ServerState, build_server, open_server_state
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import (
    ServerStore,
    StateError,
    StateInUse,
    StateLock,
    StateLost,
    StateMissing,
    StoreCorrupted,
    lock_path,
    rounds_in_flight,
)
from secagg.transport.inprocess import InProcessHub

D = 16
NAMES = [f"branch-{i}" for i in range(5)]
#: generous: the clients only wait this long when a test stops the server on purpose
IDLE = 60.0


def _config(tmp_path: Path, rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "safety", "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )


def _clients(hub: InProcessHub, rounds: int) -> None:
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.01 * (i + 1))
        client = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": IDLE, "rounds": rounds}, daemon=True
        ).start()


def _server(
    config: FederationConfig,
    state: ServerState,
    observer: Callable[[RoundResult, np.ndarray], None] | None = None,
) -> FederationServer:
    hub = InProcessHub()
    _clients(hub, config.rounds)
    return build_server(config, hub, state.store, ledger=state.ledger, observer=observer)


def _run(config: FederationConfig, *, init: bool | None = None) -> list[RoundResult]:
    """A whole federation (all of ``config.rounds``), its state closed afterwards."""
    state = open_server_state(config, init=init)
    try:
        results = _server(config, state).run(wait_for_clients=60)
    finally:
        state.close()
    assert [r.status for r in results] == ["complete"] * len(results), results
    return results


def _digests(tmp_path: Path) -> dict[str, str]:
    """Every file of the state (store, WAL, ledger, key) by name, as SHA-256."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tmp_path.glob("state.sqlite*"))
        if not p.name.endswith(".lock")
    }


def _paths(config: FederationConfig) -> tuple[Path, Path]:
    state = Path(config.server.state)
    return state, Path(str(state) + ".ledger")


# --- D5: one server per state ---------------------------------------------------------------


def test_a_second_server_on_the_same_state_is_refused_and_the_first_goes_on(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, rounds=2)
    first = open_server_state(config, init=True)
    refusals: list[str] = []
    untouched: list[bool] = []

    def second_server_starts(result: RoundResult, _model: np.ndarray) -> None:
        if result.number != 1:
            return
        before = _digests(tmp_path)
        with pytest.raises(StateInUse) as refused:
            open_server_state(config)  # the same state, from another server
        refusals.append(str(refused.value))
        untouched.append(_digests(tmp_path) == before)

    try:
        server = _server(config, first, observer=second_server_starts)
        results = server.run(wait_for_clients=60)
    finally:
        first.close()
    assert refusals == [
        f"state {config.server.state} is in use by PID {os.getpid()} "
        f"(lock {lock_path(config.server.state)}): one server per state"
    ]
    assert untouched == [True]  # the refused server touched nothing
    assert [r.status for r in results] == ["complete", "complete"]  # the first went on
    state, ledger = _paths(config)
    assert [r["status"] for r in ServerStore(state).rounds()] == ["complete", "complete"]
    assert verify_ledger(ledger).ok
    # released with the store: the next server gets it
    open_server_state(config).close()


def test_the_lock_holder_is_named_across_processes(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from secagg.runtime.store import StateLock; "
            "lock = StateLock(sys.argv[1]); print('locked', flush=True); sys.stdin.read()",
            str(state),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"  # returns when it holds the lock
        with pytest.raises(StateInUse, match=f"in use by PID {holder.pid} "):
            StateLock(state)
    finally:
        holder.communicate(input="", timeout=120)  # EOF on stdin: it exits, the kernel unlocks
    StateLock(state).release()  # a dead holder leaves no stale lock


def test_a_deleted_lock_file_stops_the_server_before_its_next_write(tmp_path: Path) -> None:
    config = _config(tmp_path, rounds=1)
    state = open_server_state(config, init=True)
    try:
        os.remove(lock_path(config.server.state))  # a second server could now lock a new one
        with pytest.raises(StateLost, match="lock"):
            state.store.begin_round(1, NAMES)
    finally:
        state.close()


# --- D4: no silent new federation -------------------------------------------------------------


def test_a_missing_state_needs_init_and_init_starts_a_new_federation(tmp_path: Path) -> None:
    config = _config(tmp_path, rounds=1)
    state, ledger = _paths(config)
    with pytest.raises(StateMissing, match="pass --init to start a new federation"):
        open_server_state(config, init=False)
    assert not state.exists() and not ledger.exists()  # nothing made without --init
    _run(config, init=True)
    assert [r["status"] for r in ServerStore(state).rounds()] == ["complete"]
    # --init again would start over a federation that has rounds: refused, untouched
    before = _digests(tmp_path)
    with pytest.raises(StateError, match="already holds a federation"):
        open_server_state(config, init=True)
    assert _digests(tmp_path) == before


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_an_emptied_or_deleted_state_beside_its_ledger_is_refused(
    tmp_path: Path, damage: str
) -> None:
    config = _config(tmp_path, rounds=2)
    _run(config, init=True)
    state, ledger = _paths(config)
    before = hashlib.sha256(ledger.read_bytes()).hexdigest()
    if damage == "truncated":
        os.truncate(state, 0)  # what a failed restore or a full disk leaves
    else:
        state.unlink()
    for init in (None, False, True):  # not even --init starts over a ledger with rows
        with pytest.raises(StateMissing, match=r"ledger .* has 2 rows: the state was lost"):
            open_server_state(config, init=init)
    assert hashlib.sha256(ledger.read_bytes()).hexdigest() == before
    assert state.exists() == (damage == "truncated")  # not recreated
    assert not state.exists() or state.stat().st_size == 0


def test_a_state_older_than_its_ledger_is_refused_naming_both_counts(tmp_path: Path) -> None:
    config = _config(tmp_path, rounds=1)
    _run(config, init=True)
    state, _ = _paths(config)
    backup = tmp_path / "backup.sqlite"
    shutil.copy(state, backup)  # closed: the WAL is folded into the file
    _run(_config(tmp_path, rounds=3))  # two more rounds, in the ledger too
    shutil.copy(backup, state)  # an old copy restored over the live state
    with pytest.raises(StateError, match=r"records 3 rounds .* holds 1 \(up to round 1\)"):
        open_server_state(config)


def test_a_missing_ledger_beside_finished_rounds_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, rounds=1)
    _run(config, init=True)
    _, ledger = _paths(config)
    ledger.unlink()
    with pytest.raises(StateMissing, match=r"its ledger .*state.sqlite.ledger is missing"):
        open_server_state(config)
    assert not ledger.exists()


@pytest.mark.parametrize("damage", ["deleted", "replaced"])
def test_a_state_deleted_or_replaced_mid_run_stops_the_server(tmp_path: Path, damage: str) -> None:
    config = _config(tmp_path, rounds=3)
    state_path, ledger = _paths(config)
    state = open_server_state(config, init=True)

    def damage_after_round_1(result: RoundResult, _model: np.ndarray) -> None:
        if result.number != 1:
            return
        if damage == "deleted":
            state_path.unlink()
        else:
            other = tmp_path / "other.sqlite"
            ServerStore(other).close()
            os.replace(other, state_path)

    try:
        server = _server(config, state, observer=damage_after_round_1)
        with pytest.raises(StateLost, match=f"was {damage}"):
            server.run(wait_for_clients=60)
    finally:
        state.close()
    rows = verify_ledger(ledger).chain.rows
    assert [row.entry["round"] for row in rows] == [1]  # round 2 never began
    if damage == "deleted":
        with pytest.raises(StateMissing):  # and a restart does not start over
            open_server_state(config)


# --- D8: every check before the port is bound ---------------------------------------------------


def test_a_missing_state_directory_is_one_clear_error(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "safety", "clients": NAMES, "dimension": D},
            "server": {"state": str(tmp_path / "nodir" / "state.sqlite")},
        }
    )
    with pytest.raises(StateMissing, match=r"state directory .*nodir does not exist"):
        open_server_state(config, init=True)
    assert not (tmp_path / "nodir").exists()


def test_a_corrupt_state_is_refused_at_start(tmp_path: Path) -> None:
    config = _config(tmp_path, rounds=1)
    state, _ = _paths(config)
    state.write_bytes(b"not a database at all " * 300)
    with pytest.raises(StoreCorrupted, match="cannot be read"):
        open_server_state(config)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    _run(_config(damaged, rounds=2), init=True)
    half = damaged / "state.sqlite"
    os.truncate(half, half.stat().st_size // 2)  # a copy cut short
    with pytest.raises(StoreCorrupted):
        open_server_state(_config(damaged, rounds=2))


def test_a_read_only_state_is_refused_at_start_not_at_the_first_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, rounds=1)
    _run(config, init=True)
    state, _ = _paths(config)
    read_only_state(monkeypatch, state)
    with pytest.raises(StateError, match=r"not writable|cannot be opened"):
        open_server_state(_config(tmp_path, rounds=2))


# --- D8: a state write failing mid-run names its cause -------------------------------------------


def _serve_until_a_write_fails(
    config: FederationConfig,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    **failing: Callable[..., None],
) -> None:
    """Run a new federation with ``ServerStore`` methods replaced by ``failing`` until
    ``error`` stops the server (it must propagate); the state is closed and the
    replacements undone afterwards."""
    state = open_server_state(config, init=True)
    for name, method in failing.items():
        monkeypatch.setattr(ServerStore, name, method)
    try:
        with pytest.raises(type(error)) as stopped:
            _server(config, state).run(wait_for_clients=60)
    finally:
        state.close()
    monkeypatch.undo()
    assert stopped.value is error


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database or disk is full"),
        OSError(28, "No space left on device"),
    ],
)
def test_a_state_write_failing_mid_round_records_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The review's 4c: a disk that filled up during round 2 was recorded, after the
    restart, only as "server restarted mid-round". The round now says what stopped it,
    the error still stops the server, and the restart continues from round 1's model."""
    config = _config(tmp_path, rounds=3)
    complete_round = ServerStore.complete_round

    def disk_fills_in_round_2(store: ServerStore, number: int, *args: object) -> None:
        if number == 2:
            raise error
        complete_round(store, number, *args)  # type: ignore[arg-type]

    _serve_until_a_write_fails(config, monkeypatch, error, complete_round=disk_fills_in_round_2)
    again = open_server_state(config)
    try:
        rounds = again.store.rounds()
        assert [r["status"] for r in rounds] == ["complete", "aborted"]
        reason = rounds[1]["report"]["reason"]
        assert reason.startswith("state write failed:") and str(error).split("] ")[-1] in reason
        results = _server(config, again).run(wait_for_clients=60)
        assert [r.status for r in results] == ["complete", "complete"]
        assert [r.number for r in results] == [3, 4]
    finally:
        again.close()
    audit = verify_ledger(_paths(config)[1])
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2, 3, 4]


def test_when_even_the_abort_cannot_be_written_the_restart_still_aborts_the_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, rounds=2)
    full = sqlite3.OperationalError("database or disk is full")

    def no_space(store: ServerStore, number: int, *args: object) -> None:
        raise full

    _serve_until_a_write_fails(
        config, monkeypatch, full, complete_round=no_space, abort_round=no_space
    )
    again = open_server_state(config)
    try:
        assert [r["status"] for r in again.store.rounds()] == ["running"]
        _server(config, again)  # the restarted server recovers its state
        (round_1,) = again.store.rounds()
        assert round_1["status"] == "aborted"
        assert round_1["report"]["reason"] == "server restarted mid-round"
    finally:
        again.close()


def test_a_ledger_append_failing_says_it_was_the_ledger_not_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk at round 2's ledger append (after the state committed the round)
    was logged as "the server could not write its state": the operator looked at the
    wrong file and doubted a round the state has. The line names the failing write."""
    config = _config(tmp_path, rounds=3)
    full = OSError(28, "No space left on device")
    append = Ledger.append

    def disk_fills_at_round_2(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2:
            raise full
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", disk_fills_at_round_2)
    with caplog.at_level(logging.ERROR, logger="secagg.server"):
        _serve_until_a_write_fails(config, monkeypatch, full)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round 2:")]
    assert "could not append the round's ledger row" in line, line
    assert "(the state has recorded the round)" in line and "No space left" in line
    assert "could not write its state" not in line
    again = open_server_state(config)
    try:
        assert [r["status"] for r in again.store.rounds()] == ["complete", "complete"]
    finally:
        again.close()


def test_a_failed_ledger_append_is_stored_with_its_round_and_the_restart_rebuilds_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The abort reason "ledger write failed: ..." was never stored: ``abort_round``
    refuses a round the state has finished, so only the log line said why round 2 had
    no ledger row. The state now records, with the round, that its row is missing and
    why; the restart rebuilds the row (marked reconstructed), says why it was missing,
    and the state then records it as rebuilt."""
    config = _config(tmp_path, rounds=3)
    full = OSError(28, "No space left on device")
    append = Ledger.append

    def disk_fills_at_round_2(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2:
            raise full
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", disk_fills_at_round_2)
    _serve_until_a_write_fails(config, monkeypatch, full)
    cause = "ledger write failed: [Errno 28] No space left on device"
    store = ServerStore(_paths(config)[0], create=False)
    try:
        round_1, round_2 = store.rounds()
    finally:
        store.close()
    assert round_2["status"] == "complete"
    assert round_2["report"]["ledger_row_missing"] == cause
    assert "ledger_row_missing" not in round_1["report"]
    again = open_server_state(config)
    try:
        with caplog.at_level(logging.WARNING, logger="secagg.server"):
            results = _server(config, again).run(wait_for_clients=60)
        assert [(r.number, r.status) for r in results] == [(3, "complete")]
        round_2 = again.store.rounds()[1]
        assert "ledger_row_missing" not in round_2["report"]
        assert round_2["report"]["ledger_row_rebuilt"] == cause
    finally:
        again.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ledger:")]
    assert lines == [
        f"ledger: round 2 was missing ({cause}) and has been reconstructed from the store"
    ]
    audit = verify_ledger(_paths(config)[1])
    assert audit.ok, audit.first_failure
    rows = {row.entry["round"]: row.entry for row in audit.chain.rows}
    assert sorted(rows) == [1, 2, 3]
    assert rows[2]["reconstructed"] is True and rows[2]["status"] == "complete"
    # and the row says why it was rebuilt, from what, and which fields the state lacked
    provenance = rows[2]["reconstruction"]
    assert provenance["source"] == "state"
    assert provenance["cause"] == (
        f"the ledger append failed after the state recorded the round ({cause})"
    )
    assert {"participants", "finished_at", "model_sha256", "privacy.epsilon"} <= set(
        provenance["recovered"]
    )
    assert {"backend", "dropouts"} <= set(provenance["not_recovered"])
    assert rows[2]["finished_at"] == round_2["finished_at"]  # the round's, not the rebuild's
    assert [number for _, number, _ in audit.rebuilt] == [2]


# --- a ledger append that wrote its row and then failed ------------------------------------------


def test_an_append_that_wrote_its_row_then_failed_is_not_recorded_as_a_missing_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The append of round 2 writes its row, then fails (an fsync or a commit that
    raises once the row is in): the state recorded ``ledger_row_missing`` for a row the
    ledger holds, and the restart, finding the row, left that note for good, so an
    auditor read a missing row that was not missing. The server now reads the ledger
    again after a failed append: the state records that the append raised
    (``ledger_append_error``, the cause) and no missing row, and the restart rebuilds
    nothing (no second row 2)."""
    config = _config(tmp_path, rounds=3)
    fsync_failed = OSError(5, "Input/output error")
    append = Ledger.append

    def row_written_then_fsync_fails(ledger: Ledger, entry: dict[str, object]) -> int:
        seq = append(ledger, entry)
        if entry.get("round") == 2:
            raise fsync_failed
        return seq

    monkeypatch.setattr(Ledger, "append", row_written_then_fsync_fails)
    with caplog.at_level(logging.WARNING, logger="secagg.server"):
        _serve_until_a_write_fails(config, monkeypatch, fsync_failed)
    cause = "ledger write failed: [Errno 5] Input/output error"
    store = ServerStore(_paths(config)[0], create=False)
    try:
        round_2 = store.rounds()[1]["report"]
    finally:
        store.close()
    assert "ledger_row_missing" not in round_2
    assert round_2["ledger_append_error"] == cause
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round 2:")]
    assert any("the ledger holds the round's row all the same" in line for line in lines), lines
    again = open_server_state(config)
    try:
        results = _server(config, again).run(wait_for_clients=60)
        assert [(r.number, r.status) for r in results] == [(3, "complete")]
        round_2 = again.store.rounds()[1]["report"]
        assert "ledger_row_missing" not in round_2 and "ledger_row_rebuilt" not in round_2
        assert round_2["ledger_append_error"] == cause
    finally:
        again.close()
    audit = verify_ledger(_paths(config)[1])
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2, 3]
    assert not any(row.entry.get("reconstructed") for row in audit.chain.rows)


def test_a_row_found_in_the_ledger_at_restart_clears_the_missing_row_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The row a failed append wrote may be seen only later: a commit whose WAL sync
    failed leaves its frames in the log, which the next open of the ledger replays.
    The server, re-reading the ledger at the failure, did not see it and recorded the
    row missing; the restart found the row and skipped the round, the note staying
    wrong for good. The restart now says the row is there: the note becomes
    ``ledger_append_error`` (the cause kept), and nothing is rebuilt."""
    config = _config(tmp_path, rounds=3)
    fsync_failed = OSError(5, "Input/output error")
    append = Ledger.append
    unsynced: list[dict[str, object]] = []

    def sync_fails_at_round_2(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2:
            unsynced.append(entry)  # in the WAL, not yet seen by any reader
            raise fsync_failed
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", sync_fails_at_round_2)
    _serve_until_a_write_fails(config, monkeypatch, fsync_failed)
    cause = "ledger write failed: [Errno 5] Input/output error"
    state_path, ledger_path = _paths(config)
    store = ServerStore(state_path, create=False)
    try:
        assert store.rounds()[1]["report"]["ledger_row_missing"] == cause
    finally:
        store.close()
    # the WAL's recovery at the next open: the row the failed commit wrote is there
    key = LedgerKey.load(Path(config.server.state + ".ledger-key"))
    recovered = Ledger(ledger_path, key)
    try:
        append(recovered, unsynced[0])
    finally:
        recovered.close()
    again = open_server_state(config)
    try:
        with caplog.at_level(logging.WARNING, logger="secagg.server"):
            results = _server(config, again).run(wait_for_clients=60)
        assert [(r.number, r.status) for r in results] == [(3, "complete")]
        round_2 = again.store.rounds()[1]["report"]
        assert "ledger_row_missing" not in round_2 and "ledger_row_rebuilt" not in round_2
        assert round_2["ledger_append_error"] == cause
    finally:
        again.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ledger:")]
    assert lines == [
        f"ledger: round 2 was recorded missing ({cause}), but the ledger holds its row: "
        "the append wrote it before it failed; nothing rebuilt"
    ]
    audit = verify_ledger(ledger_path)
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2, 3]
    assert not any(row.entry.get("reconstructed") for row in audit.chain.rows)


def test_a_row_rebuilt_by_a_restart_that_stopped_before_its_note_is_recorded_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart rebuilt round 2's missing row and stopped before the state's note
    said so: the next restart found the row and left ``ledger_row_missing`` (or, reading
    the found row as the failed append's own, called it ``ledger_append_error``). The
    row found is marked reconstructed, so the note becomes ``ledger_row_rebuilt``, the
    cause kept, and nothing is rebuilt twice."""
    config = _config(tmp_path, rounds=3)
    full = OSError(28, "No space left on device")
    append = Ledger.append

    def disk_fills_at_round_2(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 2:
            raise full
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", disk_fills_at_round_2)
    _serve_until_a_write_fails(config, monkeypatch, full)
    cause = "ledger write failed: [Errno 28] No space left on device"
    stopped = OSError(5, "Input/output error")

    def note_not_written(store: ServerStore, number: int) -> None:
        raise stopped

    monkeypatch.setattr(ServerStore, "note_ledger_rebuilt", note_not_written)
    state = open_server_state(config)
    try:
        with pytest.raises(OSError) as raised:
            _server(config, state)  # rebuilds row 2, then its note fails: it stops
        assert raised.value is stopped
    finally:
        state.close()
    monkeypatch.undo()
    caplog.clear()  # the first restart's line (the rebuild) is not this restart's
    again = open_server_state(config)
    try:
        with caplog.at_level(logging.WARNING, logger="secagg.server"):
            results = _server(config, again).run(wait_for_clients=60)
        assert [(r.number, r.status) for r in results] == [(3, "complete")]
        round_2 = again.store.rounds()[1]["report"]
        assert "ledger_row_missing" not in round_2 and "ledger_append_error" not in round_2
        assert round_2["ledger_row_rebuilt"] == cause
    finally:
        again.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ledger:")]
    assert lines == [
        f"ledger: round 2 was recorded missing ({cause}); an earlier restart rebuilt its "
        "row and stopped before it recorded so"
    ]
    audit = verify_ledger(_paths(config)[1])
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2, 3]


def test_the_ledger_notes_go_only_on_finished_rounds_and_keep_the_cause(tmp_path: Path) -> None:
    """``note_ledger_missing`` refuses a round the state has not finished (its failure
    is an abort, not a note) and changes nothing then; ``note_ledger_rebuilt`` keeps the
    cause, or says none was recorded (a crash between the two commits)."""
    path = tmp_path / "state.sqlite"
    store = ServerStore(path)
    try:
        store.begin_round(1, ["a", "b"])
        before = store.rounds()
        with pytest.raises(StoreCorrupted, match="round 1 is not finished"):
            store.note_ledger_missing(1, "ledger write failed: disk full")
        assert store.rounds() == before
        store.complete_round(1, {"epsilon": 1.5}, np.zeros(2))
        store.note_ledger_missing(1, "ledger write failed: disk full")
        store.begin_round(2, ["a", "b"])
        store.abort_round(2, {"reason": "too few"})
        store.note_ledger_rebuilt(1)
        store.note_ledger_rebuilt(2)
        one, two = store.rounds()
    finally:
        store.close()
    assert one["report"] == {"epsilon": 1.5, "ledger_row_rebuilt": "ledger write failed: disk full"}
    assert two["report"] == {"reason": "too few", "ledger_row_rebuilt": "no cause recorded"}


def test_rounds_in_flight_reads_the_running_rows_and_says_when_it_cannot(tmp_path: Path) -> None:
    """What a stopped server's line is built from: the rounds left running (the next
    start records them aborted), none without a state, None for a file that is no
    state (the line then hedges), and the state itself unchanged by the read."""
    path = tmp_path / "state.sqlite"
    assert rounds_in_flight(path) == []
    store = ServerStore(path)
    try:
        store.begin_round(1, ["a", "b"])
        store.complete_round(1, {}, np.zeros(2))
        store.begin_round(2, ["a", "b"])
    finally:
        store.close()
    before = _digests(tmp_path)
    assert rounds_in_flight(path) == [2]
    assert _digests(tmp_path) == before
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all " * 300)
    assert rounds_in_flight(junk) is None
