"""A ledger copied without its ``-wal`` cannot pass as complete.

Why: the writer keeps the ledger in WAL mode and folds the log into the main file after
each append, but a reader's open snapshot delays that fold, and a server killed between
an append's commit and the fold leaves the round's row in ``<ledger>-wal`` only. An
auditor who copied the main file alone (the server running, or killed) held a file
whose rows and signed head agree with each other, one or more rounds short: ``audit
verify`` printed ``VERIFIED`` and the epsilon of the rounds in the copy (4.09 where the
four rounds spend 6.13), and nothing said a row could be missing. Now the writer leaves
the file in rollback-journal mode when it closes, so a file still in WAL mode with no
log beside it is one copied from a running or killed writer, and ``verify`` fails it
unless ``--expect-head`` pins a head the copy holds.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _ledgers import central_client_rows
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
ROWS, EPSILON = central_client_rows([("a", "b"), ("a", "c"), ("a", "b"), ("a", "c")], Z, DELTA)
KEY = LedgerKey.generate()


def _wal_mode(path: Path) -> bool:
    """Whether the file's header says WAL mode (read and write versions both 2)."""
    return path.read_bytes()[18:20] == b"\x02\x02"


@contextmanager
def _snapshot(path: Path) -> Iterator[None]:
    """An auditor's read transaction on the live file: the writer's folds of the log
    stop at it, so rows appended meanwhile stay in ``-wal`` only."""
    reader = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM ledger").fetchone()
        yield
    finally:
        reader.close()


def _live_ledger_copied_alone(folder: Path) -> tuple[Path, Ledger]:
    """Rows 1-2 folded into the main file, rows 3-4 in the log behind a reader's
    snapshot; the main file copied alone to ``folder/copy``. The writer is returned
    open (closing it would fold the log in): the caller closes it."""
    live = folder / "live.ledger"
    ledger = Ledger(live, KEY)
    ledger.append(ROWS[0])
    ledger.append(ROWS[1])
    with _snapshot(live):
        ledger.append(ROWS[2])
        ledger.append(ROWS[3])
        (folder / "copy").mkdir()
        shutil.copyfile(live, folder / "copy" / live.name)
    return folder / "copy" / live.name, ledger


def test_the_main_file_copied_alone_fails_rather_than_verify_short(tmp_path: Path) -> None:
    copy, ledger = _live_ledger_copied_alone(tmp_path)
    try:
        result = verify_ledger(copy, KEY.public_key)
        assert result.chain.ok and len(result.chain.rows) == 2  # the copy is 2 rows short
        assert not result.ok
        failure = str(result.first_failure)
        assert "no live.ledger-wal beside it" in failure, failure
        assert "2 rows, head 2:" in failure
        assert "--expect-head" in failure
        # the live file (its log beside it) verifies whole, at the four rounds' epsilon
        live = verify_ledger(ledger.path, KEY.public_key)
        assert live.ok, live.first_failure
        assert len(live.chain.rows) == 4
        assert live.epsilons[-1][1] == pytest.approx(EPSILON)
    finally:
        ledger.close()


def test_the_copy_with_its_log_verifies_every_row(tmp_path: Path) -> None:
    copy, ledger = _live_ledger_copied_alone(tmp_path)
    try:
        shutil.copyfile(ledger.path.with_name("live.ledger-wal"), copy.with_name("live.ledger-wal"))
    finally:
        ledger.close()
    result = verify_ledger(copy, KEY.public_key)
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 4


def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    copy, ledger = _live_ledger_copied_alone(tmp_path)
    ledger.close()
    pem = export_public_key(KEY.public_key, tmp_path / "k.pub")
    verified = CliRunner().invoke(main, ["audit", "verify", str(copy), "--pubkey", str(pem)])
    assert verified.exit_code == 1, verified.output
    assert verified.output.startswith(f"FAILED: {copy}: read without its log: ")
    assert len(verified.output.strip().splitlines()) == 1


def test_a_head_the_auditor_holds_vouches_for_the_copy(tmp_path: Path) -> None:
    """The head the server printed when it stopped (or one kept from an earlier audit),
    found in the copy: no row up to it is missing, and a note says what is relied on."""
    copy, ledger = _live_ledger_copied_alone(tmp_path)
    try:
        short = verify_ledger(copy, KEY.public_key)
        held = str(short.chain.head)
        result = verify_ledger(copy, KEY.public_key, expect_head=held)
        assert result.ok, result.first_failure
        assert any("read without its log" in note and held in note for note in result.notes)
        # the head after row 4 (the live one) is not in the copy: it fails as cut back
        cut = verify_ledger(copy, KEY.public_key, expect_head=ledger.anchor())
        assert not cut.ok
        assert "rows were cut from the end" in str(cut.first_failure)
    finally:
        ledger.close()


def test_a_closed_ledger_is_whole_in_its_main_file_and_verifies_alone(tmp_path: Path) -> None:
    live = tmp_path / "live.ledger"
    ledger = Ledger(live, KEY)
    for row in ROWS:
        ledger.append(row)
    assert _wal_mode(live) and live.with_name("live.ledger-wal").exists()  # while it runs
    ledger.close()
    assert not live.with_name("live.ledger-wal").exists()
    assert not _wal_mode(live)  # rollback-journal mode: no log to miss
    (tmp_path / "copy").mkdir()
    copy = Path(shutil.copy(live, tmp_path / "copy"))
    result = verify_ledger(copy, KEY.public_key)
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 4
    untouched = live.read_bytes()
    Ledger(live, KEY).close()  # opened and closed without an append: not a byte changed
    assert live.read_bytes() == untouched
    reopened = Ledger(live, KEY)  # the next writer's first append takes it to WAL mode
    try:
        assert reopened.append(ROWS[0] | {"round": 5}) == 5
        assert _wal_mode(live) and live.with_name("live.ledger-wal").exists()
    finally:
        reopened.close()
    assert not _wal_mode(live)
    assert len(verify_ledger(live, KEY.public_key).chain.rows) == 5


def test_a_reader_at_close_neither_delays_it_nor_lets_a_copy_pass(tmp_path: Path) -> None:
    """Leaving WAL mode needs the file to itself: with an auditor reading, the close
    does not wait for it (the append's busy timeout is 5 s) and the file stays in WAL
    mode, so a copy of its main file alone still fails rather than pass unchecked."""
    live = tmp_path / "live.ledger"
    ledger = Ledger(live, KEY)
    ledger.append(ROWS[0])
    with _snapshot(live):
        began = time.monotonic()
        ledger.close()
        assert time.monotonic() - began < 4.0
        (tmp_path / "copy").mkdir()
        copy = Path(shutil.copy(live, tmp_path / "copy"))
    assert _wal_mode(copy)
    assert "read without its log" in str(verify_ledger(copy, KEY.public_key).first_failure)


def test_sqlites_vacuum_into_copies_a_live_ledger_whole(tmp_path: Path) -> None:
    """The consistent copy of a running server's ledger (docs/audit.md, point 8): one
    snapshot of the main file and its log together, written in rollback-journal mode.
    Two files copied one after the other can each be of another moment."""
    live = tmp_path / "live.ledger"
    ledger = Ledger(live, KEY)
    try:
        ledger.append(ROWS[0])
        with _snapshot(live):  # rows 2-4 stay in the log
            for row in ROWS[1:]:
                ledger.append(row)
            copier = sqlite3.connect(live)
            try:
                copier.execute("VACUUM INTO ?", (str(tmp_path / "copy.ledger"),))
            finally:
                copier.close()
    finally:
        ledger.close()
    assert not _wal_mode(tmp_path / "copy.ledger")
    result = verify_ledger(tmp_path / "copy.ledger", KEY.public_key)
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 4
