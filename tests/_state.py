"""Test helpers for a server's state files, shared by the runtime and CLI tests."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest


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
