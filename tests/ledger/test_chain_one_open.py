"""The ledger's files are never waited on: its key, its public key and the ledger itself
given as a named pipe are one typed refusal.

Why: the keys were read by path (``read_bytes``) after the command line's check, so a
file swapped for a named pipe in between blocked the server's start or the audit
forever; SQLite's read-only open of a named pipe (``secagg audit verify``) blocked the
same way, and its read-write open (the server's) failed as "disk I/O error". SQLite opens
by name, so the ledger itself is checked just before: the most that can be done there."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fifo import in_thread, needs_fifos

from secagg.errors import ConfigurationError, NotARegularFile
from secagg.ledger.chain import Ledger, LedgerKey, load_public_key, not_a_ledger, read_chain

pytestmark = needs_fifos

READERS: dict[str, Callable[[Path], Any]] = {
    "ledger key": LedgerKey.load,
    "ledger key, or a new one": LedgerKey.load_or_create,
    "public key": load_public_key,
    "ledger (audit)": read_chain,
    "ledger (server)": lambda path: Ledger(path, LedgerKey.generate()),
}


@pytest.mark.parametrize("reader", READERS, ids=list(READERS))
def test_a_named_pipe_is_a_typed_refusal_not_a_hang(tmp_path: Path, reader: str) -> None:
    fifo = tmp_path / "ledger.db"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: READERS[reader](fifo), fifo)
    assert isinstance(outcome, ConfigurationError), outcome
    assert f"{fifo} is a named pipe" in str(outcome)
    if reader.startswith("ledger ("):
        assert isinstance(outcome, NotARegularFile)


def test_not_a_ledger_names_a_named_pipe_without_waiting(tmp_path: Path) -> None:
    """The server's start asks this after its own open failed; it read the header by a
    blocking open of the path."""
    fifo = tmp_path / "ledger.db"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: not_a_ledger(fifo), fifo)
    assert outcome == f"{fifo} is a named pipe, not a ledger"
