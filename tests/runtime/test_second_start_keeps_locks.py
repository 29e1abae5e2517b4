"""A server start refused in a process whose server is running keeps that server's locks.

Why: SQLite's locks are POSIX locks, and any close of a file drops every lock its process
holds on it. ``open_server_state`` checks that the state, its ledger and its key are no
named pipe before anything opens them, and the check opened and closed each path: a
second start in the same process (refused at the state's lock, as
tests/runtime/test_store_safety.py runs it) dropped the running server's shared locks on
its ledger and on its state, which is how SQLite says a database gets corrupted
(https://www.sqlite.org/howtocorrupt.html, "POSIX advisory locks canceled"): another
process then finds no other connection, and its close folds the log in and deletes it
under the writer. Read from the kernel's lock table (``/proc/locks``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _ledgers import ledger_row, posix_locks_on

from secagg.durable import refuse_special_file
from secagg.ledger import Ledger, LedgerKey
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state
from secagg.runtime.store import StateInUse

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/locks"), reason="reads the kernel's lock table (Linux)"
)


def _config(directory: Path) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "locks", "clients": ["a", "b", "c"], "dimension": 4},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(directory / "state.sqlite")},
        }
    )


def test_a_second_start_in_the_process_keeps_the_running_servers_locks(tmp_path: Path) -> None:
    config = _config(tmp_path)
    running = open_server_state(config, init=True)
    try:
        running.ledger.append(ledger_row(1, None, None, federation="locks"))  # WAL mode
        state, ledger = Path(config.server.state), running.ledger.path
        files = [state, ledger, Path(f"{state}-shm"), Path(f"{ledger}-shm")]
        before = posix_locks_on(*files)
        assert len(posix_locks_on(state, ledger)) == 2, before  # each file's shared lock
        with pytest.raises(StateInUse):
            open_server_state(config)
        assert posix_locks_on(*files) == before  # was: the two files' locks gone
        running.ledger.append(ledger_row(2, None, None, federation="locks"))
    finally:
        running.close()


def test_the_named_pipe_check_of_a_held_ledger_keeps_its_locks(tmp_path: Path) -> None:
    """The check itself (every reader that opens a path by name runs it first)."""
    ledger = Ledger(tmp_path / "fed.ledger", LedgerKey.generate())
    try:
        ledger.append(ledger_row(1, None, None))
        before = posix_locks_on(ledger.path)
        assert before
        refuse_special_file(ledger.path, "a ledger")
        refuse_special_file(Path(f"{ledger.path}-shm"), "a log index")
        assert posix_locks_on(ledger.path) == before
    finally:
        ledger.close()
