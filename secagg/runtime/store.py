"""The server's durable state in SQLite: clients, rounds, model checkpoints.

Why SQLite: embedded, one file, transactional. A round is recorded as
``running`` before any message leaves the server and becomes ``complete``
together with its model checkpoint in one transaction, so a server killed at
any point finds on restart either a completed round with its checkpoint or a
``running`` round, which :meth:`ServerStore.recover` marks ``aborted``
("server restarted") before the federation continues from the last
checkpoint. No completed round is lost; no half-done round is resumed (its
clients' protocol state died with the connections).

Checkpoints carry their SHA-256 and are checked on load (constant-time
compare): a corrupted file is refused, never silently used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from secagg.errors import SecAggError

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    name TEXT PRIMARY KEY,
    fingerprint TEXT,
    registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    number INTEGER PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'aborted')),
    started_at REAL NOT NULL,
    finished_at REAL,
    participants TEXT NOT NULL,
    report TEXT
);
CREATE TABLE IF NOT EXISTS checkpoints (
    round INTEGER PRIMARY KEY,
    model BLOB NOT NULL,
    sha256 BLOB NOT NULL
);
"""


class StoreCorrupted(SecAggError):
    """The state database holds something the server did not write (or a damaged file)."""


@dataclass(frozen=True)
class Recovery:
    """What a (re)started server continues from."""

    next_round: int
    model: np.ndarray | None  # None: no checkpoint yet, start from the initial model
    aborted_on_restart: tuple[int, ...]


class ServerStore:
    """Durable clients, rounds and checkpoints; every write is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- clients -------------------------------------------------------------

    def register_client(self, name: str, fingerprint: str | None) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO clients (name, fingerprint, registered_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET fingerprint = excluded.fingerprint",
                (name, fingerprint, time.time()),
            )

    def client_fingerprint(self, name: str) -> str | None:
        row = self._db.execute("SELECT fingerprint FROM clients WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    # --- rounds --------------------------------------------------------------

    def begin_round(self, number: int, participants: list[str]) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO rounds (number, status, started_at, participants) "
                "VALUES (?, 'running', ?, ?)",
                (number, time.time(), json.dumps(participants)),
            )

    def complete_round(self, number: int, report: dict[str, Any], model: np.ndarray) -> None:
        """Mark the round complete and store its checkpoint, atomically."""
        blob = np.ascontiguousarray(model, dtype="<f8").tobytes()
        with self._tx():
            self._finish(number, "complete", report)
            self._db.execute(
                "INSERT INTO checkpoints (round, model, sha256) VALUES (?, ?, ?)",
                (number, blob, hashlib.sha256(blob).digest()),
            )

    def abort_round(self, number: int, report: dict[str, Any]) -> None:
        with self._tx():
            self._finish(number, "aborted", report)

    def _finish(self, number: int, status: str, report: dict[str, Any]) -> None:
        updated = self._db.execute(
            "UPDATE rounds SET status = ?, finished_at = ?, report = ? "
            "WHERE number = ? AND status = 'running'",
            (status, time.time(), json.dumps(report), number),
        ).rowcount
        if updated != 1:
            raise StoreCorrupted(f"round {number} is not running")

    def rounds(self) -> list[dict[str, Any]]:
        """Every round, oldest first, as plain dicts (for reports and tests)."""
        rows = self._db.execute(
            "SELECT number, status, started_at, finished_at, participants, report "
            "FROM rounds ORDER BY number"
        ).fetchall()
        return [
            {
                "number": r[0],
                "status": r[1],
                "started_at": r[2],
                "finished_at": r[3],
                "participants": json.loads(r[4]),
                "report": json.loads(r[5]) if r[5] else None,
            }
            for r in rows
        ]

    def checkpoint_digest(self, number: int) -> str | None:
        """SHA-256 (hex) of a completed round's checkpoint, as the ledger records models."""
        query = "SELECT sha256 FROM checkpoints WHERE round = ?"
        row = self._db.execute(query, (number,)).fetchone()
        return None if row is None else bytes(row[0]).hex()

    # --- recovery ------------------------------------------------------------

    def recover(self) -> Recovery:
        """Abort any round left running and return where to continue."""
        with self._tx():
            running = [
                r[0] for r in self._db.execute("SELECT number FROM rounds WHERE status = 'running'")
            ]
            for number in running:
                self._finish(number, "aborted", {"reason": "server restarted mid-round"})
        last = self._db.execute("SELECT MAX(number) FROM rounds").fetchone()[0]
        row = self._db.execute(
            "SELECT round, model, sha256 FROM checkpoints ORDER BY round DESC LIMIT 1"
        ).fetchone()
        model = None
        if row is not None:
            if not hmac.compare_digest(hashlib.sha256(row[1]).digest(), row[2]):
                raise StoreCorrupted(f"checkpoint of round {row[0]} fails its SHA-256 check")
            model = np.frombuffer(row[1], dtype="<f8").copy()
        return Recovery((last or 0) + 1, model, tuple(running))

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
