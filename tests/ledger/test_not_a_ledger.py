"""A file that is not a ledger is named as the wrong file, not read as a ledger that failed.

Why: ``secagg audit verify state/fraud.sqlite`` (the server's state database, whose
ledger is ``state/fraud.sqlite.ledger``) printed ``FAILED ... no such table:
ledger_meta``, exit 1: a failed verification, where the auditor had only named the
wrong file. :func:`~secagg.ledger.chain.read_chain` now raises
:class:`~secagg.ledger.chain.NotALedger` (a usage mistake) for a file positively shown
to be something else: the state database, an SQLite file without a ledger table, an
empty file or no SQLite file at all; it points to ``<file>.ledger`` when that exists.
A damaged ledger (some of its tables, or pages SQLite cannot read) still fails as one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger

from secagg.errors import ConfigurationError
from secagg.ledger import Ledger, LedgerError, LedgerKey, verify_ledger
from secagg.ledger.chain import _SERVER_STATE_TABLES, NotALedger, read_chain
from secagg.runtime.store import ServerStore


def _state(folder: Path, *, with_ledger: bool) -> Path:
    """A server's state folder as the server leaves it: ``fraud.sqlite`` and, with
    ``with_ledger``, its ledger ``fraud.sqlite.ledger`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "fraud.sqlite"
    ServerStore(state).close()
    if with_ledger:
        Ledger(Path(str(state) + ".ledger"), LedgerKey.generate()).close()
    return state


def _names(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


def test_the_servers_state_database_is_named_and_its_ledger_pointed_to(tmp_path: Path) -> None:
    state = _state(tmp_path / "state", with_ledger=True)
    before = _names(state.parent)
    with pytest.raises(NotALedger) as caught:
        verify_ledger(state)
    assert str(caught.value) == (
        f"{state} is not a privacy ledger: it is the secagg server's state database (its "
        f"rounds and checkpoints); its ledger is {state}.ledger: audit that"
    )
    assert isinstance(caught.value, ConfigurationError)  # the CLI's usage mistake, exit 2
    assert _names(state.parent) == before  # the diagnosis wrote nothing beside it
    assert read_chain(Path(f"{state}.ledger")).ok  # the file it points to is the ledger


def test_a_state_database_without_its_ledger_beside_it_points_nowhere(tmp_path: Path) -> None:
    state = _state(tmp_path / "state", with_ledger=False)
    with pytest.raises(NotALedger, match="state database") as caught:
        read_chain(state)
    assert ".ledger" not in str(caught.value)


def test_a_running_servers_state_database_is_named_too(tmp_path: Path) -> None:
    """The server open: its state in WAL mode, a ``-wal`` file beside it."""
    (tmp_path / "state").mkdir()
    state = tmp_path / "state" / "fraud.sqlite"
    store = ServerStore(state)
    try:
        store.begin_round(1, ["a", "b"])
        assert Path(f"{state}-wal").exists()
        with pytest.raises(NotALedger, match="the secagg server's state database"):
            read_chain(state)
    finally:
        store.close()


def _sqlite(path: Path, *statements: str) -> Path:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: p.write_text("Time,V1,Class\n0,1.0,0\n"), "not an SQLite database at all"),
        (lambda p: p.write_bytes(b"\x00" * 4096), "not an SQLite database at all"),
        (lambda p: p.write_bytes(b""), "an empty file"),
        (
            lambda p: _sqlite(p, "CREATE TABLE transactions (x)", "CREATE TABLE accounts (y)"),
            "an SQLite database without the ledger's tables (tables accounts, transactions)",
        ),
        (lambda p: _sqlite(p, "PRAGMA user_version = 7"), "an SQLite database without tables"),
    ],
    ids=["csv", "zeros", "empty", "other-tables", "no-tables"],
)
def test_a_file_that_is_no_ledger_says_what_it_is(
    tmp_path: Path, make: Callable[[Path], object], what: str
) -> None:
    path = tmp_path / "creditcard.db"
    make(path)
    with pytest.raises(NotALedger) as caught:
        read_chain(path)
    assert str(caught.value) == f"{path} is not a privacy ledger: it is {what}"


def test_a_file_with_a_ledger_beside_it_points_to_that(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("round 1: fine\n")
    write_ledger(tmp_path / "notes.txt.ledger", [ledger_row(1, None, None)])
    with pytest.raises(NotALedger, match=f"; its ledger is {path}.ledger: audit that$"):
        read_chain(path)


def test_a_ledger_missing_one_of_its_tables_still_fails_as_a_ledger(tmp_path: Path) -> None:
    """Part of a ledger is a damaged (or tampered) ledger, not the wrong file."""
    path, _ = write_ledger(tmp_path / "l.ledger", [ledger_row(1, None, None)])
    _sqlite(path, "DROP TABLE ledger_meta")
    with pytest.raises(LedgerError, match="is not a readable ledger: no such table: ledger_meta"):
        read_chain(path)


def test_a_ledger_cut_short_still_fails_as_a_ledger(tmp_path: Path) -> None:
    whole, _ = write_ledger(tmp_path / "whole.ledger", [ledger_row(1, None, None)])
    cut = tmp_path / "cut.ledger"
    cut.write_bytes(whole.read_bytes()[:300])  # SQLite's header, no readable table
    with pytest.raises(LedgerError):
        read_chain(cut)


def test_the_state_tables_named_are_the_stores(tmp_path: Path) -> None:
    """The ledger may not import the runtime, so it names the state's tables itself."""
    state = _state(tmp_path, with_ledger=False)
    db = sqlite3.connect(state)
    try:
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    finally:
        db.close()
    assert tables == _SERVER_STATE_TABLES
