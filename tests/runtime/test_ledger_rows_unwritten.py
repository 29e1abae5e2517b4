"""The server's start reads a ledger whose creation committed nothing through the ledger
layer's check (:func:`~secagg.ledger.chain.unwritten_ledger_tables`), with its own edges.

Why these edges: a file at the ledger's path with no table, or with only the tables a
ledger's first open creates before ``ledger`` (all empty), is what a server killed
inside that open leaves, and is no ledger yet (None: cross-checked against the state as
a missing ledger is). A file that holds an empty ``ledger`` table is a ledger of 0
rows, not "never written"; one whose side table holds a row but has no ``ledger`` table
is damaged. Before, launch held its own copy of the check (``_ledger_never_written``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from secagg.ledger.chain import SCHEMA, LedgerError
from secagg.runtime.launch import _ledger_rows


def _file(path: Path, *statements: str) -> Path:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")  # the header a ledger's first open writes
    for statement in statements:
        db.execute(statement)
    db.close()
    return path


_META, _LEDGER, _HEAD = (s for s in SCHEMA.split(";") if s.strip())


@pytest.mark.parametrize(
    ("statements", "rows"),
    [((), None), ((_META,), None), ((_META, _HEAD), None), ((_META, _LEDGER, _HEAD), 0)],
    ids=["no-table", "meta-only", "side-tables", "every-table-empty"],
)
def test_an_unwritten_ledger_is_none_and_an_empty_ledger_table_counts_zero_rows(
    tmp_path: Path, statements: tuple[str, ...], rows: int | None
) -> None:
    path = _file(tmp_path / "s.sqlite.ledger", *statements)
    assert _ledger_rows(path, tmp_path / "s.sqlite") == rows


def test_a_side_table_holding_a_row_without_the_ledger_table_is_damaged(tmp_path: Path) -> None:
    path = _file(
        tmp_path / "s.sqlite.ledger", _META, "INSERT INTO ledger_meta VALUES ('public_key', 'ab')"
    )
    with pytest.raises(LedgerError, match="is not a readable ledger: no such table: ledger"):
        _ledger_rows(path, tmp_path / "s.sqlite")
