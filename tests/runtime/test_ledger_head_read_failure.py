"""A ledger head that cannot be read back after a successful append is no failed
state write: the round stands (the row is written), and the failure is a warning of its
own, only where the head is read at all (the DEBUG line that shows it).

The federation is tests/_ledgered_federation.py's (five branches over the in-process
transport, started as ``secagg server`` starts one).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from _ledgered_federation import ledger_path, ledgered_config, ledgered_server

from secagg.ledger.chain import Ledger, read_chain
from secagg.runtime.launch import open_server_state


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_a_head_that_cannot_be_read_after_the_append_is_no_failed_state_write(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    level: int,
) -> None:
    """``_record`` read the ledger head for a DEBUG line (the argument evaluated at any
    level) after it had marked the state as the write in progress: a head read that
    raised after a successful append stopped the server saying "the server could not
    write its state", about a round the state and the ledger both hold. The row is
    written, so the round stands; the head is read only for the DEBUG line, and a
    failure to read it is its own warning."""
    config = ledgered_config(tmp_path, rounds=2)

    def unreadable_head(ledger: Ledger) -> str:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Ledger, "anchor", unreadable_head)
    state = open_server_state(config, init=True)
    try:
        with caplog.at_level(level, logger="secagg.server"):
            results = ledgered_server(config, state).run(wait_for_clients=60)
    finally:
        state.close()
    assert [(r.number, r.status) for r in results] == [(1, "complete"), (2, "complete")]
    lines = [r.getMessage() for r in caplog.records]
    assert not any("could not write its state" in line for line in lines), lines
    unread = [line for line in lines if "ledger head could not be read" in line]
    assert len(unread) == (2 if level == logging.DEBUG else 0), lines
    report = read_chain(ledger_path(config))
    assert report.ok, report.failure
    assert [row.entry["round"] for row in report.rows] == [1, 2]
