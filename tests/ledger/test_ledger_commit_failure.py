"""A ledger append whose COMMIT raises leaves no transaction open on the writer.

Why: :meth:`~secagg.ledger.chain.Ledger._tx` rolled back only an error raised inside
its block; a COMMIT that raised (SQLite may keep the transaction open after a failed
commit: ``SQLITE_BUSY``, ``SQLITE_FULL``, ``SQLITE_IOERR``) skipped the ROLLBACK, so the
writer's connection still held the transaction. Its uncommitted row was then the
writer's own view (its head one row ahead of the file's) and the next append on the
same :class:`~secagg.ledger.chain.Ledger` failed at ``BEGIN IMMEDIATE`` with "cannot
start a transaction within a transaction", or, were the transaction committed later,
wrote a row the server had been told had failed.

The failing commit is injected by a connection wrapper that refuses one ``COMMIT``
without running it: exactly the case of a commit SQLite reports failed and leaves open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _ledgers import ledger_row

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.chain import read_chain


class _CommitFailsOnce:
    """A stand-in for the writer's ``sqlite3.Connection`` whose next ``COMMIT`` raises
    (without running: the transaction stays open, as a failed commit may leave it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.armed = False
        self.refused = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.armed and sql.strip().upper() == "COMMIT":
            self.armed = False
            self.refused += 1
            raise sqlite3.OperationalError("disk I/O error")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _entry(number: int) -> dict[str, Any]:
    """A whole row (the writer's read-back refuses a partial one: ``shaped_entries``)."""
    return ledger_row(number, None, None)


@pytest.fixture
def failing_commit(tmp_path: Path) -> tuple[Ledger, _CommitFailsOnce]:
    ledger = Ledger(tmp_path / "fed.ledger", LedgerKey.generate())
    ledger.append(_entry(1))
    wrapper = _CommitFailsOnce(ledger._db)
    ledger._db = wrapper  # type: ignore[assignment]
    wrapper.armed = True
    return ledger, wrapper


def test_a_failed_commit_is_rolled_back_and_the_next_append_goes_on(
    failing_commit: tuple[Ledger, _CommitFailsOnce],
) -> None:
    ledger, wrapper = failing_commit
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        ledger.append(_entry(2))
    assert wrapper.refused == 1
    assert not wrapper.in_transaction  # rolled back: no transaction left open
    # the writer's view is the file's again: the failed row is in neither
    assert ledger.head()[0] == 1
    assert [entry["round"] for entry in ledger.entries()] == [1]
    # the next append on the same Ledger object is row 2, and the chain verifies
    assert ledger.append(_entry(2)) == 2
    report = read_chain(ledger.path, ledger.key.public_key)
    ledger.close()
    assert report.ok, report.failure
    assert [row.entry["round"] for row in report.rows] == [1, 2]


def test_a_failed_commit_leaves_the_file_as_an_auditor_reads_it(
    failing_commit: tuple[Ledger, _CommitFailsOnce],
) -> None:
    """Read through a connection of its own while the writer is still open: the row
    whose commit failed is not there, and the writer's head says the same."""
    ledger, _wrapper = failing_commit
    with pytest.raises(sqlite3.OperationalError):
        ledger.append(_entry(2))
    report = read_chain(ledger.path, ledger.key.public_key)
    assert report.ok, report.failure
    assert [row.seq for row in report.rows] == [1]
    assert report.head == ledger.anchor()
    ledger.close()
