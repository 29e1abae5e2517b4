"""One check, in the ledger layer, of a ledger whose creation committed no row.

Why: :mod:`secagg.runtime.launch` (``LEDGER_SIDE_TABLES``, ``_ledger_never_written``)
repeated :mod:`secagg.ledger.chain`'s table names and emptiness check
(``_ROW_IN_TABLE``, ``_empty_ledger_tables``), two copies kept equal by a test. Both
now call :func:`~secagg.ledger.chain.unwritten_ledger_tables`, which answers for a
connection it does not close, and each caller keeps its own reading: the server's start
takes a file with no table, or with side tables only, as no ledger yet, and an empty
``ledger`` table as a ledger (tests/runtime/test_ledger_rows_unwritten.py); the audit
names a file of empty ledger tables as a half-created ledger
(tests/ledger/test_ledger_creation_crash.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from secagg.ledger.chain import LEDGER_TABLES, SCHEMA, unwritten_ledger_tables


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "x.ledger", isolation_level=None)
    yield connection
    connection.close()


def _create(db: sqlite3.Connection, *tables: str) -> None:
    for statement in SCHEMA.split(";"):
        found = re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if found and found.group(1) in tables:
            db.execute(statement)


def test_the_ledger_tables_are_the_schemas() -> None:
    assert set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)) == LEDGER_TABLES


@pytest.mark.parametrize(
    "tables",
    [(), ("ledger_meta",), ("ledger_meta", "ledger_head"), tuple(sorted(LEDGER_TABLES))],
)
def test_empty_ledger_tables_are_listed_sorted_and_the_connection_stays_open(
    db: sqlite3.Connection, tables: tuple[str, ...]
) -> None:
    _create(db, *tables)
    assert unwritten_ledger_tables(db) == sorted(tables)
    assert db.execute("SELECT 1").fetchone() == (1,)  # the caller's connection, still open


@pytest.mark.parametrize("table", sorted(LEDGER_TABLES))
def test_a_row_in_any_ledger_table_is_a_written_ledger(db: sqlite3.Connection, table: str) -> None:
    _create(db, *LEDGER_TABLES)
    values = {
        "ledger_meta": "('public_key', 'ab')",
        "ledger": "(1, '{}', 'p', 'h', 's')",
        "ledger_head": "(1, 0, 'h', 's')",
    }
    db.execute(f"INSERT INTO {table} VALUES {values[table]}")
    assert unwritten_ledger_tables(db) is None


def test_a_table_no_ledger_has_is_no_unwritten_ledger(db: sqlite3.Connection) -> None:
    _create(db, "ledger_meta")
    db.execute("CREATE TABLE rounds (n INTEGER)")
    assert unwritten_ledger_tables(db) is None
