"""A ledger writer killed in each window around its WAL: read in place, it verifies
whole at the epsilon of every round it committed, and a restarted writer continues it.

Why: the writer now leaves WAL mode when it closes, and an audit fails a file in WAL
mode with no ``-wal`` beside it (a copy that may lack rows its log held). A kill must
never turn an honest ledger read where it lies into that failure while its log is
there, must not lose a committed row, and the next start must go back to WAL mode and
leave it on its stop. The kill is ``os._exit`` in a forked child at the point named:
SQLite's files are left exactly as a SIGKILL leaves them (no close, no checkpoint),
with no interpreter to start.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from _ledgers import central_client_rows

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("a", "b"), ("a", "c")]
ROWS, _ = central_client_rows(COHORTS, Z, DELTA)
_, EPSILON_OF_3 = central_client_rows(COHORTS[:3], Z, DELTA)
_, EPSILON_OF_4 = central_client_rows(COHORTS, Z, DELTA)
KEY = LedgerKey.generate()


def _wal_mode(path: Path) -> bool:
    return path.read_bytes()[18:20] == b"\x02\x02"


def _killed_writer(path: Path, work: Callable[[Ledger], None]) -> None:
    """Run ``work`` on a writer of ``path`` in a forked child that dies without closing
    anything (``os._exit``) when ``work`` ends or kills it itself."""
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child only
        try:
            work(Ledger(path, KEY))
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _verifies_in_place_with(path: Path, rows: int, epsilon: float) -> None:
    result = verify_ledger(path, KEY.public_key)
    assert result.ok, result.first_failure
    assert [row.seq for row in result.chain.rows] == list(range(1, rows + 1))
    assert result.epsilons[-1][1] == pytest.approx(epsilon)


def _restart_continues(path: Path, rows_before: int) -> None:
    """A restarted writer appends the next row (no row lost or repeated), is in WAL
    mode while it runs and leaves it when it stops; the file then verifies alone."""
    ledger = Ledger(path, KEY)
    try:
        assert [e["round"] for e in ledger.entries()] == list(range(1, rows_before + 1))
        assert ledger.append(ROWS[rows_before]) == rows_before + 1
        assert _wal_mode(path)
    finally:
        ledger.close()
    assert not _wal_mode(path) and not path.with_name(path.name + "-wal").exists()
    _verifies_in_place_with(path, rows_before + 1, EPSILON_OF_4)


def test_killed_after_an_appends_commit_before_its_checkpoint(tmp_path: Path) -> None:
    live = tmp_path / "live.ledger"

    def work(ledger: Ledger) -> None:
        ledger.append(ROWS[0])
        ledger.append(ROWS[1])
        ledger._checkpoint = lambda: os._exit(0)  # type: ignore[method-assign]
        ledger.append(ROWS[2])  # committed; the kill comes before the fold

    _killed_writer(live, work)
    assert live.with_name("live.ledger-wal").stat().st_size > 0  # row 3 is in the log
    _verifies_in_place_with(live, 3, EPSILON_OF_3)
    _restart_continues(live, 3)


def test_killed_while_a_reader_holds_the_file(tmp_path: Path) -> None:
    """A running writer (killed once already, so in WAL mode), an auditor's read
    transaction holding its folds back, rows 2-3 appended into the log, then the kill."""
    live = tmp_path / "live.ledger"

    def first(ledger: Ledger) -> None:
        ledger.append(ROWS[0])

    _killed_writer(live, first)
    reader = sqlite3.connect(live.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM ledger").fetchone()  # holds the folds back

        def work(ledger: Ledger) -> None:
            for row in ROWS[1:3]:
                ledger.append(row)

        _killed_writer(live, work)
        assert live.with_name("live.ledger-wal").stat().st_size > 0  # rows 2-3 in the log
        _verifies_in_place_with(live, 3, EPSILON_OF_3)  # the reader still there
    finally:
        reader.close()
    _verifies_in_place_with(live, 3, EPSILON_OF_3)  # and after it went
    _restart_continues(live, 3)


def test_killed_in_the_close_after_its_checkpoint(tmp_path: Path) -> None:
    """The close's mode switch first folds the log in (a kill there leaves the folded
    file and its empty log): read in place with that log, it verifies."""
    live = tmp_path / "live.ledger"

    def work(ledger: Ledger) -> None:
        for row in ROWS[:3]:
            ledger.append(row)
        ledger._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    _killed_writer(live, work)
    assert _wal_mode(live) and live.with_name("live.ledger-wal").exists()
    _verifies_in_place_with(live, 3, EPSILON_OF_3)
    _restart_continues(live, 3)


def test_killed_in_the_close_after_the_log_was_deleted(tmp_path: Path) -> None:
    """SQLite deletes the log before it rewrites the header's mode: a kill between the
    two leaves a whole file in WAL mode without its log, which nothing tells from a
    copy taken without it, so it fails in place (the safe side) until its head is
    given or a writer opens and closes it once; every row is still there."""
    live = tmp_path / "live.ledger"

    def work(ledger: Ledger) -> None:
        for row in ROWS[:3]:
            ledger.append(row)

    _killed_writer(live, work)
    live.with_name("live.ledger-wal").unlink()  # folded, deleted; the header not yet rewritten
    assert _wal_mode(live)
    failed = verify_ledger(live, KEY.public_key)
    assert not failed.ok and "read without its log" in str(failed.first_failure)
    vouched = verify_ledger(live, KEY.public_key, expect_head=str(failed.chain.head))
    assert vouched.ok, vouched.first_failure
    Ledger(live, KEY).close()  # a start and a stop, no round: out of WAL mode
    _verifies_in_place_with(live, 3, EPSILON_OF_3)
    _restart_continues(live, 3)


def test_killed_between_the_switch_to_wal_mode_and_the_first_append(tmp_path: Path) -> None:
    """Guard (held on c01baa3): a restarted writer of a closed ledger switches it to WAL
    mode at its first append, and SQLite makes the log only at the transaction after
    the switch: a kill between the two leaves a whole file in WAL mode without its log,
    as a kill in the close does (the safe side: it fails in place until its head is
    given or a writer opens and closes it once), never a row lost."""
    live = tmp_path / "live.ledger"
    ledger = Ledger(live, KEY)
    for row in ROWS[:3]:
        ledger.append(row)
    ledger.close()
    assert not _wal_mode(live)

    def work(ledger: Ledger) -> None:
        ledger._enter_wal_mode()  # the first append's switch; the kill before its BEGIN

    _killed_writer(live, work)
    assert _wal_mode(live) and not live.with_name("live.ledger-wal").exists()
    failed = verify_ledger(live, KEY.public_key)
    assert not failed.ok and "read without its log" in str(failed.first_failure)
    assert len(failed.chain.rows) == 3  # every row still there
    _restart_continues(live, 3)
