"""A ledger named through a symbolic link is read with the side files SQLite uses.

Why: SQLite resolves a link to a database and keeps its ``-wal``, ``-shm`` and
``-journal`` beside the link's target; the audit looked for them beside the link. A
running server's honest ledger, verified through a link to it, was read as a file in
WAL mode without its log: ``FAILED ... read without its log ... copy fed.ledger-wal with
it``, exit 1, and a log holding rows would have been passed over.
"""

from __future__ import annotations

import os
from pathlib import Path

from _ledgers import as_another_process, ledger_row, write_ledger

from secagg.ledger import Ledger
from secagg.ledger.chain import read_chain, wal_mode_without_log
from secagg.ledger.verify import verify_ledger


def test_a_running_servers_ledger_verifies_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    (tmp_path / "audit").mkdir()
    path, key = write_ledger(tmp_path / "live" / "fed.ledger", [ledger_row(1, None, None)])
    writer = as_another_process(Ledger(path, key))  # a server's, running: in WAL mode
    try:
        writer.append(ledger_row(2, None, None))
        assert (tmp_path / "live" / "fed.ledger-wal").exists()
        link = tmp_path / "audit" / "fed.ledger"
        os.symlink(path, link)
        assert not wal_mode_without_log(link)  # its log is there, beside the target
        chain = read_chain(link, key.public_key)
        assert chain.ok and not chain.without_log and len(chain.rows) == 2
        result = verify_ledger(link, key.public_key)
        assert result.ok, result.failure  # was: FAILED, read without its log
        assert os.listdir(tmp_path / "audit") == ["fed.ledger"]  # nothing made beside it
    finally:
        writer.close()
