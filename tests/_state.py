"""Test helpers for a server's state files, shared by the runtime and CLI tests."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from secagg.ledger.chain import LedgerKey, genesis_hash, head_message


def read_only_state(monkeypatch: pytest.MonkeyPatch, state: Path) -> None:
    """Make ``state`` read-only for SQLite. File modes do not stop root (this suite may
    run as root), so SQLite is then made to open that one file read-only, as it does by
    itself for a 0444 file or a read-only filesystem."""
    if os.geteuid() != 0:
        state.chmod(0o444)
        return
    connect = sqlite3.connect

    def read_only(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        if Path(str(database)) == state:
            kwargs["uri"] = True
            return connect(f"file:{state}?mode=ro", *args, **kwargs)  # type: ignore[arg-type]
        return connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", read_only)


def drop_last_ledger_rows(ledger_path: Path, key_path: Path, count: int = 1) -> None:
    """Remove the last ``count`` rows of a server's ledger and sign the head of the row
    before them again: what a crash (or a failed append) between the state's commit of
    those rounds and the ledger's leaves, an honest chain the restart rebuilds from."""
    key = LedgerKey.load(key_path)
    db = sqlite3.connect(ledger_path)
    try:
        for _ in range(count):
            db.execute("DELETE FROM ledger WHERE seq = (SELECT MAX(seq) FROM ledger)")
        last = db.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC").fetchone()
        seq, digest = last or (0, genesis_hash(key.public_key))
        signature = key.signing.sign(head_message(seq, digest)).hex()
        db.execute(
            "INSERT OR REPLACE INTO ledger_head VALUES (1, ?, ?, ?)", (seq, digest, signature)
        )
        db.commit()
    finally:
        db.close()
