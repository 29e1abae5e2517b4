"""A ledger killed while it is created: nothing of it is committed, and the auditor's
tools say what a half-created ledger is.

Why: :class:`~secagg.ledger.chain.Ledger` created its tables with ``executescript``,
whose statements SQLite commits one by one, then stored its public key and signed its
genesis head in a transaction of their own. A process killed in between (a simulation,
a benchmark, a server started through ``build_server(ledger_path=...)``, which do not go
through the start's leftover handling in :mod:`secagg.runtime.launch`) left a file with
``ledger_meta`` only, or every table and no key. ``secagg audit verify`` / ``report`` of
it printed ``FAILED: ... is not a readable ledger: no such table: ledger`` or "the ledger
holds no valid public key", which read as a damaged or forged ledger. The tables, the
key and the genesis head are now one transaction (a kill leaves an SQLite file without
tables, which the tools call just that), and a file an older version left half-created
is named as such in one line.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _threads import BOUND
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, verify_ledger
from secagg.ledger.chain import SCHEMA, LedgerError, NotALedger, read_chain

#: the exit status of the killed process (os._exit: nothing closed, nothing rolled back)
KILLED = 9

#: a ledger's creation, killed as SQLite begins one statement on the ledger's connection
KILLED_WHILE_CREATING = """
import os, sqlite3, sys
from secagg.ledger import Ledger, LedgerKey

real_connect = sqlite3.connect

def die_at(sql):
    if sql.lstrip().startswith({statement!r}):
        os._exit({killed})

def connect(path, *args, **kwargs):
    db = real_connect(path, *args, **kwargs)
    db.set_trace_callback(die_at)
    return db

sqlite3.connect = connect
Ledger({path!r}, LedgerKey.generate())
print("created: no crash")
"""

#: every statement of the creation after the first table: a kill there left tables behind
KILL_POINTS = [
    "CREATE TABLE IF NOT EXISTS ledger (",
    "CREATE TABLE IF NOT EXISTS ledger_head",
    "INSERT INTO ledger_meta",
    "INSERT INTO ledger_head",
]


def _tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()


def _killed_while_creating(path: Path, statement: str) -> None:
    script = KILLED_WHILE_CREATING.format(statement=statement, killed=KILLED, path=str(path))
    died = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND
    )
    assert died.returncode == KILLED, (died.returncode, died.stdout, died.stderr)
    assert path.stat().st_size > 0  # SQLite's header at least


@pytest.mark.parametrize("statement", KILL_POINTS)
def test_a_ledger_killed_while_created_holds_no_table_and_opens_again(
    tmp_path: Path, statement: str
) -> None:
    path = tmp_path / "run.ledger"
    _killed_while_creating(path, statement)
    assert _tables(path) == set()  # nothing of the creation was committed
    with pytest.raises(NotALedger) as caught:
        read_chain(path)
    assert str(caught.value) == (
        f"{path} is not a privacy ledger: it is an SQLite database without tables (in WAL "
        "mode: what a process killed while creating a ledger leaves; no round was ever "
        "recorded in it)"
    )
    key = LedgerKey.generate()
    ledger = Ledger(path, key)  # build_server(ledger_path=...)'s open: no leftover to cope with
    ledger.append({"round": 1, "status": "complete"})
    ledger.close()
    audit = verify_ledger(path, key.public_key)
    assert audit.chain.ok and [row.seq for row in audit.chain.rows] == [1]


def _half_created(path: Path, tables: int) -> Path:
    """The file an older version's creation left when killed after ``tables`` tables."""
    statements = [s for s in SCHEMA.split(";") if s.strip()]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in statements[:tables]:
        db.execute(statement)
    db.close()
    return path


def _audit(*args: str) -> Result:
    return CliRunner().invoke(main, ["audit", *args])


@pytest.mark.parametrize(
    ("tables", "listed"),
    [(1, "ledger_meta"), (2, "ledger, ledger_meta"), (3, "ledger, ledger_head, ledger_meta")],
)
def test_audit_of_a_half_created_ledger_says_what_it_is_in_one_line(
    tmp_path: Path, tables: int, listed: str
) -> None:
    path = _half_created(tmp_path / "old.ledger", tables)
    what = (
        f"{path} is a ledger whose creation did not finish (tables {listed}, all empty): "
        "it holds no public key, no round and no signed head, so nothing in it can be "
        "verified (a process killed while creating the ledger leaves this)"
    )
    with pytest.raises(LedgerError) as caught:
        read_chain(path)
    assert str(caught.value) == what
    for command in (["verify", str(path)], ["report", str(path), "--out", str(tmp_path / "r")]):
        result = _audit(*command)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # no traceback
        assert result.stderr.splitlines() == [f"FAILED: {path} cannot be read as a ledger: {what}"]
        assert result.stdout == ""


def test_a_damaged_ledger_with_rows_is_not_called_half_created(tmp_path: Path) -> None:
    """Guard: a ledger that holds rows and lost a table is damaged (or tampered), as before."""
    path = tmp_path / "damaged.ledger"
    ledger = Ledger(path, LedgerKey.generate())
    ledger.append({"round": 1, "status": "complete"})
    ledger.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE ledger_head")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="no such table: ledger_head") as caught:
        read_chain(path)
    assert "creation did not finish" not in str(caught.value)
