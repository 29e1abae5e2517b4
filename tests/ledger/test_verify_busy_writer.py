"""``audit verify`` of an honest ledger whose server keeps appending while it is read.

Why: where the auditor cannot write the ledger's folder, a running writer's ledger is
read from a private copy of the file and its log, and a copy that changed under the read
is made again, at most :data:`~secagg.ledger.chain._UNSTABLE_READS` times. A server that
appended during every one of them made ``audit verify`` print ``FAILED: L cannot be read
as a ledger: the ledger L changed during each of 5 reads ...``, exit 1: the verdict of a
ledger changed without the key, for an honest ledger that was never judged. Now the read
that never held still is its own outcome: ``NOT READ``, exit 5, "read it again", and
``audit report`` likewise writes nothing and says so.

The writer is a thread of this process that appends one row each time the reader copies
the file (events, no timed waits): an append during every read, the worst a busy server
can do.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ledgers import as_another_process, ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, chain
from secagg.ledger.chain import LedgerKeptChanging, export_public_key, read_chain

#: generous: the writer's append takes milliseconds; this bounds a hung test only
_WAIT_SECONDS = 60.0


class _WriterThread:
    """A server's writer in a thread of its own, which opens, appends to and closes the
    ledger (an SQLite connection serves the thread that made it): :meth:`append_now`
    asks it for one append and returns once the row is committed (and folded in)."""

    def __init__(self, path: Path, key: LedgerKey) -> None:
        self._path, self._key = path, key
        self._asked = threading.Event()
        self._done = threading.Event()
        self._stop = False
        self.failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._done.wait(_WAIT_SECONDS), "the writer thread did not open the ledger"

    def _run(self) -> None:
        try:
            ledger = as_another_process(Ledger(self._path, self._key))  # a server's
            ledger.append(ledger_row(2, None, None))  # running: in WAL mode, its log emptied
        except BaseException as exc:  # handed to the test, which fails on it
            self.failures.append(exc)
            self._done.set()
            return
        self._done.set()
        try:
            while True:
                self._asked.wait()
                self._asked.clear()
                if self._stop:
                    return
                try:
                    ledger.append(ledger_row(ledger.head()[0] + 1, None, None))
                except BaseException as exc:
                    self.failures.append(exc)
                finally:
                    self._done.set()
        finally:
            ledger.close()

    def append_now(self) -> None:
        self._done.clear()
        self._asked.set()
        assert self._done.wait(_WAIT_SECONDS), "the writer thread did not append"

    def stop(self) -> None:
        self._stop = True
        self._asked.set()
        self._thread.join(_WAIT_SECONDS)


@pytest.fixture
def busy_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """A running server's ledger (WAL mode, its log beside it) in a folder the auditor
    cannot write, whose writer appends during every copy the read makes: (ledger, the
    auditor's public key file)."""
    path, key = write_ledger(tmp_path / "fed.ledger", [ledger_row(1, None, None)])
    pubkey = export_public_key(key.public_key, tmp_path / "fed.pub")
    writer = _WriterThread(path, key)
    real_connect, real_copy, real_access = chain._connect_read_only, shutil.copyfile, os.access

    def unwritable_folder(file: Path, *, immutable: bool) -> sqlite3.Connection:
        if Path(file) == path and not immutable:  # SQLite cannot open the log here
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(file, immutable=immutable)

    def copy_while_the_server_appends(source: Any, target: Any, **kwargs: Any) -> Any:
        if Path(source) == path:
            writer.append_now()
        return real_copy(source, target, **kwargs)

    monkeypatch.setattr(chain, "_connect_read_only", unwritable_folder)

    def access(file: Any, mode: int, **kwargs: Any) -> bool:
        return False if Path(file) == path.parent else real_access(file, mode, **kwargs)

    monkeypatch.setattr(chain.os, "access", access)
    monkeypatch.setattr(chain.shutil, "copyfile", copy_while_the_server_appends)
    try:
        yield path, pubkey
    finally:
        monkeypatch.undo()
        writer.stop()
        assert writer.failures == []


def test_read_chain_says_the_ledger_kept_changing(busy_writer: tuple[Path, Path]) -> None:
    path, _pubkey = busy_writer
    with pytest.raises(LedgerKeptChanging) as refused:
        read_chain(path)
    message = str(refused.value)
    assert "could not get a stable read" in message and "read it again" in message


def test_audit_verify_of_an_honest_ledger_under_a_busy_writer_is_not_failed(
    busy_writer: tuple[Path, Path],
) -> None:
    path, pubkey = busy_writer
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pubkey)])
    assert result.exit_code == 5, result.output  # was 1
    assert "FAILED" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"NOT READ: {path}: "), result.stderr
    assert "kept changing" in lines[0] and "read it again" in lines[0], lines[0]


def test_audit_verify_json_says_not_read(busy_writer: tuple[Path, Path]) -> None:
    path, pubkey = busy_writer
    args = ["audit", "verify", str(path), "--pubkey", str(pubkey), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 5, result.output
    payload = json.loads(result.stdout)
    assert payload["verdict"] == "NOT READ" and payload["exit_status"] == 5
    assert payload["ok"] is None and "kept changing" in payload["error"]


def test_audit_report_writes_nothing_and_says_not_read(
    busy_writer: tuple[Path, Path], tmp_path: Path
) -> None:
    path, pubkey = busy_writer
    out = tmp_path / "report"
    args = ["audit", "report", str(path), "--pubkey", str(pubkey), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 5, result.output
    assert "FAILED" not in result.output and "kept changing" in result.output
    assert not out.exists() or not any(out.iterdir())
