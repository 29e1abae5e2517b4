"""A read of a ledger that a writer of the same process holds keeps that writer's locks.

Why: SQLite's locks are POSIX locks, and closing ANY descriptor of a file drops every
lock the process holds on it. The lock-free read's checks open and close the ledger and
its ``-shm`` (a named-pipe check, the file-state comparison), so a server checking its
own chain while its writer is open (at every start, ``refuse_broken_chain``; after a
failed append, ``Ledger.committed_entries``) dropped its writer's shared locks on the
file and on the log index, which is how SQLite says a database gets corrupted
(https://www.sqlite.org/howtocorrupt.html, "POSIX advisory locks canceled"): another
process then finds no other connection, and its close folds the log in and deletes it
under the writer. The kernel's lock table (``/proc/locks``) is read, never the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ledgers import ledger_row, posix_locks_on, write_ledger

from secagg.ledger import Ledger
from secagg.ledger.chain import read_chain

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/locks"), reason="reads the kernel's lock table (Linux)"
)


@pytest.mark.parametrize("read", ["read_chain", "committed_entries"])
def test_a_read_beside_a_writer_of_this_process_keeps_its_locks(tmp_path: Path, read: str) -> None:
    path, key = write_ledger(tmp_path / "fed.ledger", [ledger_row(1, None, None)])
    ledger = Ledger(path, key)
    try:
        ledger.append(ledger_row(2, None, None))  # in WAL mode: locks on the file and -shm
        shm = path.with_name("fed.ledger-shm")
        before = posix_locks_on(path, shm)
        assert len(before) >= 2, before  # the file's shared lock, the log index's DMS lock
        if read == "read_chain":
            report = read_chain(path, key.public_key)
            assert report.ok and len(report.rows) == 2
        else:
            assert len(ledger.committed_entries()) == 2
        assert posix_locks_on(path, shm) == before  # was []: every lock dropped
        ledger.append(ledger_row(3, None, None))
    finally:
        ledger.close()
    assert len(read_chain(path, key.public_key).rows) == 3
