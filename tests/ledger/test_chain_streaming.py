"""The chain check streams the ledger's rows: it never holds every row's text at once, it
keeps one copy of the strings rows repeat, and it reads one snapshot of a live ledger.

Why: :func:`~secagg.ledger.chain.read_chain` fetched every row at once
(``fetchall``), about 9 KB a row of text (one identity hash per participant), then
parsed each into an entry with its own copy of every string: at 10^4 rows its peak was
270 MB and it kept 181 MB (benchmarks/bench_ledger_memory.py; 28 MB both now). And the
key, the rows and the signed head were three statements with a snapshot each: a server
appending between them made its honest live ledger read as "rows were truncated or
appended without the key".
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from _ledgers import ledger_row, write_ledger

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger import chain as chain_module
from secagg.ledger.chain import LedgerError, read_chain

#: participants a row: 130 identity hashes make a row of about 9 KB, as in the review
BRANCHES = 130
ROWS = 60
PAGE = 4096


def _names() -> list[str]:
    return [hashlib.sha256(f"branch-{i}".encode()).hexdigest() for i in range(BRANCHES)]


def _large_rows(path: Path, rows: int = ROWS) -> Path:
    names = _names()
    write_ledger(
        path,
        (
            ledger_row(n, None, None, participants=names, publish_participants=True)
            for n in range(1, rows + 1)
        ),
    )
    return path


def _stored_text(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [str(text) for (text,) in db.execute("SELECT entry FROM ledger ORDER BY seq")]
    finally:
        db.close()


def test_reading_the_chain_never_holds_every_rows_text_at_once(tmp_path: Path) -> None:
    path = _large_rows(tmp_path / "large.ledger")
    text_bytes = sum(len(text) for text in _stored_text(path))
    assert text_bytes > ROWS * 8000  # rows of about 9 KB each
    tracemalloc.start()
    try:
        report = read_chain(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and len(report.rows) == ROWS
    # before: the rows' text (fetched at once) plus entries larger still, 3.1x the text
    assert peak < text_bytes / 2, (peak, text_bytes)


def test_entries_are_the_stored_json_and_share_the_strings_rows_repeat(tmp_path: Path) -> None:
    path = _large_rows(tmp_path / "large.ledger", rows=3)
    report = read_chain(path)
    assert [row.entry for row in report.rows] == [json.loads(t) for t in _stored_text(path)]
    first, second = (row.entry["participants"]["identity_hashes"] for row in report.rows[:2])
    assert first == second == sorted(_names())
    assert all(a is b for a, b in zip(first, second, strict=True))  # one copy of each hash


def test_an_unreadable_page_after_a_failing_row_still_fails_the_read(tmp_path: Path) -> None:
    """Guard (held before, when every row was read first): a row that fails its check
    does not stop the read; an unreadable page later in the table is still reported."""
    path = _large_rows(tmp_path / "damaged.ledger", rows=40)
    db = sqlite3.connect(path)
    db.execute(
        "UPDATE ledger SET entry = replace(entry, '\"round\":2', '\"round\":7') WHERE seq = 2"
    )
    db.commit()
    db.close()
    data = bytearray(path.read_bytes())
    pages = len(data) // PAGE
    for page in range(pages // 2, pages):  # the later rows' pages: no b-tree, no chain
        data[page * PAGE : page * PAGE + 4] = b"\xff" * 4
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError, match="is not a readable ledger: database disk image"):
        read_chain(path)


class _AppendBetweenReads(sqlite3.Connection):
    """A reader's connection during whose reads the server appends one round: right
    before its second query of the ledger's rows or head, whichever order they come in."""

    writer: Ledger
    seen = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if "FROM ledger " in sql or "FROM ledger_head" in sql:
            type(self).seen += 1
            if type(self).seen == 2:
                type(self).writer.append({"round": 4, "status": "complete"})
        return super().execute(sql, *args)


def test_a_live_ledger_is_read_in_one_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "live.ledger"
    writer = Ledger(path, LedgerKey.generate())
    try:
        for number in (1, 2, 3):
            writer.append({"round": number, "status": "complete"})
        assert (tmp_path / "live.ledger-wal").exists()  # a running writer: read with locks
        _AppendBetweenReads.writer = writer

        def connect(path: Path, *, immutable: bool) -> sqlite3.Connection:
            assert not immutable
            return sqlite3.connect(
                path.absolute().as_uri() + "?mode=ro", uri=True, factory=_AppendBetweenReads
            )

        monkeypatch.setattr(chain_module, "_connect_read_only", connect)
        report = read_chain(path)
        assert _AppendBetweenReads.seen == 2  # the server did append between the reads
        assert report.ok, report.failure  # before: "the signed head says 4 rows ..."
        assert [row.seq for row in report.rows] == [1, 2, 3]  # the snapshot's rows
        monkeypatch.undo()
        assert [row.seq for row in read_chain(path).rows] == [1, 2, 3, 4]
    finally:
        writer.close()
