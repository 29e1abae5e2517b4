"""An audit reads the ledger without writing anything beside it.

Auditors are told to keep a copy of the ledger, often on write-protected media; a
plain read-only SQLite connection to a WAL database creates ``-wal`` and ``-shm``
files beside it and fails outright where it cannot.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger

from secagg.ledger import Ledger, LedgerKey, chain, verify_ledger
from secagg.ledger.chain import read_chain

ROOT = Path(__file__).resolve().parents[2]


def _names(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


def test_verifying_a_closed_ledger_creates_no_file_beside_it(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "ledger.db", [ledger_row(n, None, None) for n in (1, 2)])
    before = _names(tmp_path)
    report = verify_ledger(path, key.public_key)
    assert report.ok and len(report.chain.rows) == 2
    assert _names(tmp_path) == before


@pytest.mark.parametrize("name", ["a?b.db", "c#d.db", "e%20f.db", "g h;.db"])
def test_a_ledger_whose_name_holds_uri_characters_is_read(tmp_path: Path, name: str) -> None:
    path, key = write_ledger(tmp_path / name, [ledger_row(1, None, None)])
    assert len(read_chain(path, key.public_key).rows) == 1
    assert _names(tmp_path) == {name}


def test_a_running_writer_is_read_with_its_log_and_keeps_writing(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.db", key)
    try:
        ledger.append(ledger_row(1, None, None))
        ledger.append(ledger_row(2, None, None))
        assert len(read_chain(ledger.path, key.public_key).rows) == 2
        ledger.append(ledger_row(3, None, None))  # the audit took no lock it kept
        assert verify_ledger(ledger.path, key.public_key).ok
        assert len(read_chain(ledger.path, key.public_key).rows) == 3
    finally:
        ledger.close()


_CRASHED_WRITER = """
import os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from secagg.ledger import Ledger, LedgerKey
from _ledgers import ledger_row
Ledger._checkpoint = lambda self: False  # the log is never folded in
key = LedgerKey.generate()
ledger = Ledger(Path({path!r}), key)
for number in (1, 2, 3):
    ledger.append(ledger_row(number, None, None))
sys.stdout.write(key.public_key.hex())
sys.stdout.flush()
os._exit(0)  # no close: the rows live only in the -wal file
"""


def _crashed_ledger(path: Path) -> bytes:
    script = _CRASHED_WRITER.format(root=str(ROOT), tests=str(ROOT / "tests"), path=str(path))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    return bytes.fromhex(done.stdout)


def test_rows_left_in_a_crashed_writers_log_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    public_key = _crashed_ledger(path)
    main_file_alone = sqlite3.connect(path.absolute().as_uri() + "?immutable=1", uri=True)
    try:  # the rows (even the tables) are in the log only
        tables = main_file_alone.execute("SELECT name FROM sqlite_master").fetchall()
    finally:
        main_file_alone.close()
    assert ("ledger",) not in tables
    assert len(read_chain(path, public_key).rows) == 3


def test_a_crashed_writers_log_on_write_protected_media_is_read_from_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite cannot open a WAL database read-only where it may not create ``-shm``:
    stand that in (the tests may run as root, who can write anywhere) and check the
    ledger is read from a private copy, with its log, and the folder left alone."""
    path = tmp_path / "ledger.db"
    public_key = _crashed_ledger(path)
    path.with_name(path.name + "-shm").unlink()
    before = _names(tmp_path)
    genuine = chain._connect_read_only

    def write_protected(target: Path, *, immutable: bool) -> sqlite3.Connection:
        if target.parent == tmp_path and not immutable:
            raise sqlite3.OperationalError("unable to open database file")
        return genuine(target, immutable=immutable)

    real_access = os.access
    monkeypatch.setattr(chain, "_connect_read_only", write_protected)
    monkeypatch.setattr(
        chain.os,
        "access",
        lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode),
    )
    assert len(read_chain(path, public_key).rows) == 3
    assert _names(tmp_path) == before
