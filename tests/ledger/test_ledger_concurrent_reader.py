"""The ledger's writer and its readers, each in its own connection, at the same time.

A server restarted while another program (an auditor's ``sqlite3`` shell, an audit)
held a read transaction on its ledger waited 5 s and stopped on sqlite3's bare
"database is locked"; an audit read a ledger its writer had closed as an immutable
file, so a server that restarted and appended during the audit made an honest ledger
read FAILED (the head read before the append, the rows after it). Readers here are
second connections in the same process, and the writer runs inside the reader's
transaction through a hook on the chain check: no thread, no sleep.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fifo import in_thread, needs_fifos
from _ledgers import as_another_process, ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.audit.cli import audit
from secagg.ledger import Ledger, LedgerKey, chain
from secagg.ledger.chain import LedgerBusy, LedgerError, export_public_key, read_chain


def _closed_ledger(tmp_path: Path, rows: int = 1) -> tuple[Path, LedgerKey]:
    """A ledger its writer closed (rollback-journal mode, no log beside it)."""
    return write_ledger(
        tmp_path / "fed.ledger", [ledger_row(n, None, None) for n in range(1, rows + 1)]
    )


def _reading(path: Path) -> sqlite3.Connection:
    """Another program's connection, inside a read transaction on the ledger."""
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM ledger").fetchone()
    return reader


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that waits 20 ms for a lock, not 30 s: the test's reader never lets go."""
    monkeypatch.setattr(chain, "BUSY_TIMEOUT_MS", 20)


def test_a_restart_while_another_program_reads_the_ledger_opens_it(tmp_path: Path) -> None:
    path, key = _closed_ledger(tmp_path)
    reader = _reading(path)
    try:
        ledger = Ledger(path, key)  # was: 5 s, then OperationalError "database is locked"
        try:
            assert ledger.head()[0] == 1
        finally:
            ledger.close()
    finally:
        reader.close()


def test_an_append_a_reader_holds_back_is_a_ledger_busy_naming_the_file(
    tmp_path: Path, short_wait: None
) -> None:
    path, key = _closed_ledger(tmp_path)
    reader = _reading(path)
    ledger = Ledger(path, key)
    try:
        with pytest.raises(LedgerBusy) as refused:
            ledger.append(ledger_row(2, None, None))
        message = str(refused.value)
        assert str(path) in message and "another process holds the ledger" in message
        assert "nothing was written" in message and "\n" not in message
        reader.close()
        assert [e["round"] for e in ledger.committed_entries()] == [1]  # nothing half-written
        assert ledger.append(ledger_row(2, None, None)) == 2  # the reader gone: it goes on
    finally:
        reader.close()
        ledger.close()
    assert read_chain(path, key.public_key).ok


def test_an_append_a_reader_holds_back_says_so_before_it_waits(
    tmp_path: Path, short_wait: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The round's append waits up to the busy timeout (30 s) for another program's
    read: a WARNING naming the file and the wait comes before the wait, so the operator
    can close that program while the server still waits (was: 30 s of silence, then
    LedgerBusy)."""
    path, key = _closed_ledger(tmp_path)
    reader = _reading(path)
    ledger = Ledger(path, key)
    try:
        with caplog.at_level(logging.WARNING, logger="secagg.ledger"):
            with pytest.raises(LedgerBusy):
                ledger.append(ledger_row(2, None, None))
        (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
        said = warning.getMessage()
        assert str(path) in said and "another program holds it open" in said
        assert "waits up to 0.02 s" in said
        reader.close()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="secagg.ledger"):
            assert ledger.append(ledger_row(2, None, None)) == 2
        assert caplog.records == []  # nothing held it: no wait, nothing said
    finally:
        reader.close()
        ledger.close()


def test_an_open_that_must_write_while_a_reader_holds_the_file_is_a_ledger_busy(
    tmp_path: Path, short_wait: None
) -> None:
    """A ledger of an older version (no signed genesis head): its open signs one."""
    path, key = _closed_ledger(tmp_path, rows=0)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM ledger_head")
    db.close()
    before = path.read_bytes()
    reader = _reading(path)
    try:
        with pytest.raises(LedgerBusy, match="the ledger was not opened"):
            Ledger(path, key)
    finally:
        reader.close()
    assert path.read_bytes() == before
    Ledger(path, key).close()  # no reader: the open signs the head
    assert read_chain(path, key.public_key).ok


def _writer_inside_the_read(
    monkeypatch: pytest.MonkeyPatch, write: Callable[[], None]
) -> list[BaseException]:
    """Run ``write`` once, inside the next chain check's read, just after it read the
    signed head and before its rows; what ``write`` raised is listed."""
    real = chain._check_chain
    raised: list[BaseException] = []
    fired: list[bool] = []

    class _Reader:
        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            cursor = self._db.execute(sql, *args)
            if "FROM ledger_head" in sql and not fired:
                fired.append(True)
                try:
                    write()
                except (LedgerError, sqlite3.Error) as exc:
                    raised.append(exc)
            return cursor

    def hooked(db: sqlite3.Connection, *args: Any) -> Any:
        return real(_Reader(db), *args)  # type: ignore[arg-type]

    monkeypatch.setattr(chain, "_check_chain", hooked)
    return raised


def test_an_audit_of_a_closed_ledger_is_not_torn_by_a_restarted_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_wait: None
) -> None:
    """The audit holds no lock on a closed ledger: the restarted server's first append
    (its switch to WAL mode, the row folded into the file) goes through during the
    read, which notices it and reads again, through the log."""
    path, key = _closed_ledger(tmp_path)
    ledger = as_another_process(Ledger(path, key))  # the restarted server, before its first append
    try:
        raised = _writer_inside_the_read(
            monkeypatch, lambda: ledger.append(ledger_row(2, None, None))
        )
        report = read_chain(path, key.public_key)
        assert raised == []  # the audit did not hold the append back (20 ms wait)
        # was FAILED: "the signed head says 1 rows ..., the file has 2"
        assert report.ok, report.failure
        assert len(report.rows) == 2 and report.head is not None and report.head.startswith("2:")
    finally:
        ledger.close()


def test_an_audit_of_a_wal_file_without_its_log_is_read_again_when_a_writer_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file left in WAL mode without its log (a writer closed by an older secagg) is
    read lock-free; a server that starts on it during the read is noticed, and the read
    is made again through the log."""
    path, key = _closed_ledger(tmp_path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()  # the last connection: its log folded in and deleted, the file in WAL mode
    assert chain.wal_mode_without_log(path)
    writers: list[Ledger] = []

    def restart_and_append() -> None:
        writers.append(as_another_process(Ledger(path, key)))
        writers[0].append(ledger_row(2, None, None))

    raised = _writer_inside_the_read(monkeypatch, restart_and_append)
    try:
        report = read_chain(path, key.public_key)
        assert raised == []
        assert report.ok, report.failure  # was FAILED: a head of 1 row, 2 rows read
        assert len(report.rows) == 2 and not report.without_log
    finally:
        for writer in writers:
            writer.close()


def test_a_running_writers_append_during_an_audit_leaves_the_audit_its_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WAL mode: the reader does not block the append, and reads the state it began in."""
    path, key = _closed_ledger(tmp_path)
    ledger = as_another_process(Ledger(path, key))
    try:
        ledger.append(ledger_row(2, None, None))  # in WAL mode now, its log beside it
        raised = _writer_inside_the_read(
            monkeypatch, lambda: ledger.append(ledger_row(3, None, None))
        )
        report = read_chain(path, key.public_key)
        assert raised == [] and report.ok and len(report.rows) == 2
        monkeypatch.undo()
        assert len(read_chain(path, key.public_key).rows) == 3
    finally:
        ledger.close()


def test_audit_verify_of_a_closed_ledger_a_restarted_server_appends_to_is_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_wait: None
) -> None:
    path, key = _closed_ledger(tmp_path)
    pubkey = export_public_key(key.public_key, tmp_path / "fed.pub")
    ledger = as_another_process(Ledger(path, key))
    try:
        _writer_inside_the_read(monkeypatch, lambda: ledger.append(ledger_row(2, None, None)))
        result = CliRunner().invoke(audit, ["verify", str(path), "--pubkey", str(pubkey)])
    finally:
        ledger.close()
    # was: FAILED (the head read before the append, the rows after it), exit 1; now the
    # chain verifies (exit 3: its rows carry no DP block, released without privacy)
    assert result.exit_code == 3, result.output
    assert result.output.startswith("VERIFIED: 2 rows") and "FAILED" not in result.output


@needs_fifos
@pytest.mark.parametrize("wal_beside", [True, False], ids=["with a log", "without a log"])
def test_a_named_pipe_at_the_journal_is_refused_not_waited_on(
    tmp_path: Path, wal_beside: bool
) -> None:
    """SQLite opens ``<ledger>-journal`` by name, blocking: with an empty ``-wal`` beside
    a closed ledger (the read through SQLite's locks) the audit hung forever before."""
    path, key = _closed_ledger(tmp_path)
    if wal_beside:
        Path(f"{path}-wal").write_bytes(b"")
    journal = Path(f"{path}-journal")
    os.mkfifo(journal)
    outcome = in_thread(lambda: read_chain(path, key.public_key), journal)
    assert isinstance(outcome, LedgerError), outcome
    assert str(outcome) == (
        f"{journal} is a named pipe, where SQLite keeps the ledger's rollback journal: no "
        "writer of a ledger makes one; move it away and read the ledger again"
    )


class _TimesThatDoNotMove:
    """A stat result whose times of change stay put: a filesystem whose clock did not
    tick between two writes (1 s on ext3 and HFS+, 2 s on FAT, a coarse network share)."""

    def __init__(self, real: os.stat_result) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        if name in ("st_mtime_ns", "st_ctime_ns"):
            return 0
        if name in ("st_mtime", "st_ctime"):
            return 0.0
        return getattr(self._real, name)


def test_a_copy_torn_by_an_append_within_one_tick_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running writer's ledger in a folder the auditor cannot write is read from a
    private copy of the file and its log. An append and its checkpoint during the copy
    leave the file's size, its header and the emptied log as they were: with times that
    did not move, the torn copy (the head page after the append, the rows before it) was
    taken as unchanged and an honest ledger read FAILED ("rows were truncated or
    appended without the key"). The log index's header changes with every commit: the
    copy is made again."""
    path, key = _closed_ledger(tmp_path, rows=3)
    ledger = as_another_process(Ledger(path, key))
    try:
        ledger.append(ledger_row(4, None, None))  # running: in WAL mode, its log emptied
        real_connect, real_copy, real_stat = chain._connect_read_only, shutil.copyfile, os.stat
        copies: list[Path] = []

        def unwritable_folder(file: Path, *, immutable: bool) -> sqlite3.Connection:
            if Path(file) == path and not immutable:  # SQLite cannot open the log here
                raise sqlite3.OperationalError("unable to open database file")
            return real_connect(file, immutable=immutable)

        def torn_by_an_append(source: Any, target: Any, **kwargs: Any) -> Any:
            if Path(source) != path:
                return real_copy(source, target, **kwargs)
            copies.append(Path(source))
            before = path.read_bytes()
            if len(copies) == 1:  # the writer appends while the file is copied
                ledger.append(ledger_row(5, None, None))
            after = path.read_bytes()
            Path(target).write_bytes(before[:-4096] + after[-4096:])
            return target

        monkeypatch.setattr(chain, "_connect_read_only", unwritable_folder)
        monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
        monkeypatch.setattr(shutil, "copyfile", torn_by_an_append)
        monkeypatch.setattr(os, "stat", lambda *a, **k: _TimesThatDoNotMove(real_stat(*a, **k)))
        report = read_chain(path, key.public_key)
        monkeypatch.undo()
        assert report.ok, report.failure  # was FAILED: head 5 rows, the file 4
        assert len(report.rows) == 5 and len(copies) == 2  # read again, whole
    finally:
        ledger.close()


def test_a_writer_that_appends_and_closes_within_the_read_is_noticed_by_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard (held on c01baa3): a restarted server that switches a closed ledger to WAL
    mode, appends and closes (back in rollback-journal mode, no log left, the file the
    same size) all inside the audit's lock-free read, with times that do not move: only
    the header's change counter tells. The read is made again and sees both rows."""
    path, key = _closed_ledger(tmp_path)
    size = path.stat().st_size
    ledger = as_another_process(Ledger(path, key))

    def append_and_close() -> None:
        ledger.append(ledger_row(2, None, None))
        ledger.close()

    raised = _writer_inside_the_read(monkeypatch, append_and_close)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda *a, **k: _TimesThatDoNotMove(real_stat(*a, **k)))
    reads: list[bool] = []
    real_stable = chain._stable_read

    def counted(*args: Any) -> Any:
        read = real_stable(*args)
        reads.append(read is not None)
        return read

    monkeypatch.setattr(chain, "_stable_read", counted)
    report = read_chain(path, key.public_key)
    monkeypatch.undo()
    assert raised == [] and path.stat().st_size == size  # the change the size hides
    assert reads == [False, True]  # the torn read refused, the second one taken
    assert report.ok and len(report.rows) == 2 and not report.without_log


@needs_fifos
@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_the_writer_refuses_a_named_pipe_beside_the_ledger(tmp_path: Path, suffix: str) -> None:
    """The writer's own open of a ledger its last writer closed: a named pipe at
    ``-journal`` hung it forever (SQLite opens it by name); one at ``-wal`` or ``-shm``
    let it open, and its first append failed on SQLite's bare "disk I/O error". Each is
    now refused at the open, in the reader's one line."""
    path, key = _closed_ledger(tmp_path)
    before = path.read_bytes()
    side = Path(f"{path}{suffix}")
    os.mkfifo(side)
    outcome = in_thread(lambda: Ledger(path, key), side)
    assert isinstance(outcome, LedgerError), outcome
    assert str(outcome).startswith(f"{side} is a named pipe, where SQLite keeps the ledger's")
    assert str(outcome).endswith("move it away and open the ledger again")
    assert path.read_bytes() == before and side.exists()  # nothing written, nothing moved
