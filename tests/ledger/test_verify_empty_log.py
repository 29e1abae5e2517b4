"""A ledger copied without its log, with an EMPTY ``-wal`` beside it, no longer verifies
without a word.

Why: a main file in WAL mode read without its log may lack rows only the log held, and
``audit verify`` fails it (tests/ledger/test_verify_copy_without_log.py). But an empty
``-wal`` beside it was taken as the log, and the copy verified two rounds short, at the
epsilon of two of the four rounds, saying nothing. An empty log vouches for nothing: its
writer empties it after every fold, so a log copied after the main file is often empty,
and any program that opens the copy (Python's ``sqlite3`` read-only, the ``sqlite3``
shell, an older ``secagg audit``) leaves an empty ``-wal`` and a ``-shm`` beside it.

Why a note and not FAILED: nothing in the files tells that copy from two honest ledgers,
a server killed after it folded its log in, read in place
(tests/ledger/test_ledger_crash_windows.py), and a copy of a running server's file and
log (empty after each fold), the copy docs/audit.md asks for. Only a live writer's
empty log, held open (a lock on the log index), is current: no note then.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _ledgers import central_client_rows
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.chain import empty_log_unheld, read_chain
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
ROWS, EPSILON = central_client_rows([("a", "b"), ("a", "c"), ("a", "b"), ("a", "c")], Z, DELTA)
KEY = LedgerKey.generate()


@contextmanager
def _snapshot(path: Path) -> Iterator[None]:
    """A reader's transaction on the live file: the writer's folds stop at it, so rows
    appended meanwhile stay in ``-wal`` only."""
    reader = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM ledger").fetchone()
        yield
    finally:
        reader.close()


def _main_file_copied_alone(folder: Path) -> Path:
    """Rows 1-2 in the main file, rows 3-4 in the log behind a reader's snapshot; the
    main file copied alone, then the writer closed (the live file whole)."""
    live = folder / "live.ledger"
    ledger = Ledger(live, KEY)
    try:
        ledger.append(ROWS[0])
        ledger.append(ROWS[1])
        with _snapshot(live):
            ledger.append(ROWS[2])
            ledger.append(ROWS[3])
            (folder / "copy").mkdir()
            shutil.copyfile(live, folder / "copy" / live.name)
    finally:
        ledger.close()
    return folder / "copy" / live.name


def _looked_at(copy: Path) -> None:
    """An auditor's look at the copy with Python's sqlite3, read-only: it leaves an
    empty ``-wal`` and a ``-shm`` beside it."""
    db = sqlite3.connect(copy.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        assert db.execute("SELECT count(*) FROM ledger").fetchone() == (2,)
    finally:
        db.close()


def _touched(copy: Path) -> None:
    """An empty log beside the copy (a log copied after its writer emptied it)."""
    copy.with_name(copy.name + "-wal").write_bytes(b"")


def _empty_log_note(notes: list[str]) -> str:
    (note,) = [n for n in notes if "empty live.ledger-wal" in n]
    return note


@pytest.mark.parametrize("empty_log", [_looked_at, _touched], ids=["looked-at", "touched"])
def test_an_empty_log_beside_a_copy_is_said_not_taken_on_trust(
    tmp_path: Path, empty_log: Callable[[Path], None]
) -> None:
    copy = _main_file_copied_alone(tmp_path)
    empty_log(copy)
    wal = copy.with_name(copy.name + "-wal")
    assert wal.exists() and wal.stat().st_size == 0
    assert empty_log_unheld(copy)
    result = verify_ledger(copy, KEY.public_key)
    assert result.ok and len(result.chain.rows) == 2  # two rounds short: nothing shows it
    assert result.chain.empty_log and not result.chain.without_log
    note = _empty_log_note(result.notes)  # was: no note, a clean VERIFIED
    assert "vouches for nothing" in note and "--expect-head" in note
    # the head the server printed settles it: the copy lacks it, and fails
    live = verify_ledger(tmp_path / "live.ledger", KEY.public_key)
    pinned = verify_ledger(copy, KEY.public_key, expect_head=str(live.chain.head))
    assert not pinned.ok


def test_the_cli_says_the_note_and_leaves_nothing_beside_the_copy(tmp_path: Path) -> None:
    copy = _main_file_copied_alone(tmp_path)
    _looked_at(copy)
    before = sorted(p.name for p in copy.parent.iterdir())
    pem = export_public_key(KEY.public_key, tmp_path / "k.pub")
    verified = CliRunner().invoke(main, ["audit", "verify", str(copy), "--pubkey", str(pem)])
    assert verified.exit_code == 0, verified.output
    (line,) = [n for n in verified.output.splitlines() if "empty live.ledger-wal" in n]
    assert line.startswith("note: live.ledger is in WAL mode and was read with an empty ")
    assert sorted(p.name for p in copy.parent.iterdir()) == before


def test_a_live_writers_empty_log_still_vouches_for_the_file_in_place(tmp_path: Path) -> None:
    """Guard: a running server's ledger read in place (WAL mode, its log emptied after
    the append, the writer holding it open) verifies whole, read through its locks."""
    live = tmp_path / "live.ledger"
    ledger = Ledger(live, KEY)
    try:
        for row in ROWS:
            ledger.append(row)
        assert live.with_name("live.ledger-wal").stat().st_size == 0
        assert not empty_log_unheld(live)
        report = read_chain(live, KEY.public_key)
        assert report.ok and len(report.rows) == 4 and not report.empty_log
        result = verify_ledger(live, KEY.public_key)
        assert result.ok, result.first_failure
        assert not [n for n in result.notes if "empty live.ledger-wal" in n]
        assert result.epsilons[-1][1] == pytest.approx(EPSILON)
    finally:
        ledger.close()


def test_a_log_that_holds_rows_is_read_through(tmp_path: Path) -> None:
    """Guard: a copy with the log that holds rows 3-4 verifies every row."""
    live = tmp_path / "live.ledger"
    ledger = Ledger(live, KEY)
    try:
        ledger.append(ROWS[0])
        with _snapshot(live):
            ledger.append(ROWS[1])
            (tmp_path / "copy").mkdir()
            for suffix in ("", "-wal"):
                shutil.copyfile(f"{live}{suffix}", tmp_path / "copy" / f"live.ledger{suffix}")
    finally:
        ledger.close()
    copy = tmp_path / "copy" / "live.ledger"
    assert copy.with_name("live.ledger-wal").stat().st_size > 0
    result = verify_ledger(copy, KEY.public_key)
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 2 and not result.chain.empty_log


_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM ledger").fetchone()
print("open", flush=True)
sys.stdin.read()
db.close()
"""


def test_a_connection_of_another_process_vouches_for_its_empty_log(tmp_path: Path) -> None:
    """The live server is another process: its lock on the log index is what says the
    empty log is live (here a plain sqlite3 connection holds the copy open). Closing
    last, it folds the log in and deletes it: the file then reads as one without it."""
    copy = _main_file_copied_alone(tmp_path)
    _looked_at(copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(copy)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        assert not empty_log_unheld(copy)
        report = read_chain(copy, KEY.public_key)
        assert report.ok and not report.empty_log
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert read_chain(copy, KEY.public_key).without_log
