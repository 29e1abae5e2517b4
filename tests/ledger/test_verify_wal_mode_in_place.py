"""An honest ledger left in WAL mode without its log where it lies: the failure says
how that happens in place and how to lift it.

Why: the writer leaves WAL mode when it closes, unless another connection holds the
file (it does not wait for one). A program holding the ledger read-write (an
``sqlite3`` shell, a browser of the database) when the server stopped keeps it in WAL
mode and, closing last, folds the log in and deletes it: every row is in the main file,
but nothing tells it from a copy taken without its log, so ``audit verify`` fails it in
place (the safe side). The failure told the auditor only to copy a log that no longer
exists "or verify the live file in place", which is what they had done.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _ledgers import central_client_rows

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger

ROWS, EPSILON = central_client_rows([("a", "b"), ("a", "c"), ("a", "b")], 1.5, 1e-5)
KEY = LedgerKey.generate()


def _stopped_under_a_read_write_reader(live: Path) -> str:
    """The server's ledger closed while another program held it open read-write, that
    program closing last; the head the server printed when it stopped."""
    ledger = Ledger(live, KEY)
    other = sqlite3.connect(live)
    try:
        for row in ROWS:
            ledger.append(row)
        other.execute("SELECT count(*) FROM ledger").fetchone()
        head = ledger.anchor()
        ledger.close()  # cannot leave WAL mode: the other connection holds the file
    finally:
        other.close()  # the last connection: folds the log in and deletes it
    assert live.read_bytes()[18:20] == b"\x02\x02"
    assert not live.with_name(live.name + "-wal").exists()
    return head


def test_the_failure_names_the_in_place_causes_and_the_remedy(tmp_path: Path) -> None:
    live = tmp_path / "live.ledger"
    head = _stopped_under_a_read_write_reader(live)
    failed = verify_ledger(live, KEY.public_key)
    assert failed.chain.ok and len(failed.chain.rows) == 3  # every row is there
    reason = str(failed.first_failure)
    assert "another program held open read-write when its server stopped" in reason
    assert "start and stop its server once" in reason
    assert "this copy" not in reason  # it may be no copy at all
    vouched = verify_ledger(live, KEY.public_key, expect_head=head)
    assert vouched.ok, vouched.first_failure


def test_a_start_and_stop_of_its_server_lifts_it(tmp_path: Path) -> None:
    live = tmp_path / "live.ledger"
    _stopped_under_a_read_write_reader(live)
    Ledger(live, KEY).close()  # the server started and stopped, no round
    result = verify_ledger(live, KEY.public_key)
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 3
    assert result.epsilons[-1][1] == pytest.approx(EPSILON)
