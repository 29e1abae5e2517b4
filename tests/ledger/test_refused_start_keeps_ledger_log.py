"""A server start that counts a killed server's ledger rows leaves its ``-wal`` alone.

Why: the start counted the rows (``secagg.runtime.launch._ledger_rows``) through a
read-write connection, the last to close the file, so SQLite folded the killed
server's log into the main file and deleted it. Whole, but in WAL mode with no log
beside it: ``audit verify`` cannot tell that from a main file copied without its log
and failed the honest ledger read in place ("read without its log ... there is no
live.ledger-wal beside it") whenever that start was refused before the writer opened
the ledger (no key, no state). Now it is read as the audit reads it: nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ledgers import central_client_rows

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.launch import _ledger_rows

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

ROWS, EPSILON = central_client_rows([("a", "b"), ("a", "c")], 1.5, 1e-5)
KEY = LedgerKey.generate()


def _killed_before_its_fold(path: Path) -> None:
    """Row 1 folded in, row 2 committed to the log only, then the writer killed
    (``os._exit`` in a forked child: no close, no checkpoint)."""
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child only
        try:
            ledger = Ledger(path, KEY)
            ledger.append(ROWS[0])
            ledger._checkpoint = lambda: os._exit(0)  # type: ignore[method-assign]
            ledger.append(ROWS[1])
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_counting_rows_at_a_start_changes_no_byte_of_a_killed_servers_ledger(
    tmp_path: Path,
) -> None:
    live = tmp_path / "live.ledger"
    _killed_before_its_fold(live)
    log = live.with_name("live.ledger-wal")
    # the ledger and its log byte for byte, and no file more (the -shm index a killed
    # writer leaves is SQLite's shared memory, rebuilt by whoever opens the file next)
    files = sorted(p.name for p in tmp_path.iterdir())
    before = {name: (tmp_path / name).read_bytes() for name in ("live.ledger", log.name)}
    assert log.stat().st_size > 0
    assert _ledger_rows(live, tmp_path / "server.state") == 2  # the log's row counted
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    result = verify_ledger(live, KEY.public_key)  # the start refused: read in place
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 2
    assert result.epsilons[-1][1] == pytest.approx(EPSILON)
