"""The server's durable state in SQLite: rounds and model checkpoints.

The schema also keeps a ``clients`` table, so that existing state files keep their
schema; nothing records clients in it any more (the roster is the federation's
config), and only :meth:`ServerStore.preflight`'s rolled-back write probe touches it.

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

State that cannot be lost silently (reliability review D4, D5, D8):

* one server per state: :class:`StateLock` holds an exclusive ``flock`` on
  ``<state>.lock`` for the server's life; a second server fails at once,
  naming the first one's PID, and touches nothing;
* no silent new federation: ``ServerStore(path, create=False)`` refuses a
  missing or empty file (SQLite would otherwise create a fresh, empty state,
  and the federation would start again from round 1 and the zero model);
* checks before the port is bound: :meth:`ServerStore.preflight` runs SQLite's
  integrity check and a write that is rolled back, so a corrupt or read-only
  state is refused at start, not at the first round;
* a state file deleted or replaced under a running server is noticed before
  the next write (:meth:`ServerStore.check_file`): SQLite would go on writing
  to the deleted file, and the rounds would vanish at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from secagg.durable import refuse_special_file
from secagg.errors import SecAggError
from secagg.ledger.chain import FileIdentity

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

#: the state's tables, as :data:`SCHEMA` creates them, each with the query that finds a
#: row in it
_SCHEMA_TABLES: Final = {
    table: f"SELECT 1 FROM {table} LIMIT 1"  # noqa: S608 (the schema's own names)
    for table in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)
}


class StateError(SecAggError):
    """The server's state cannot be used as it is; the message is one line for the operator."""


class StoreCorrupted(StateError):
    """The state database holds something the server did not write (or a damaged file)."""


class StateInUse(StateError):
    """Another process holds the state's lock: two servers would corrupt one federation."""


class StateMissing(StateError):
    """No state where one is expected: a new federation needs an explicit ``--init``."""


class StateLost(StateError):
    """The state file was deleted, replaced or emptied while the server was running."""


def lock_path(state: str | Path) -> Path:
    """Where the lock of the state at ``state`` lives: ``<state>.lock``."""
    return Path(str(state) + ".lock")


class StateLock:
    """An exclusive ``flock`` on ``<state>.lock``, held while a server uses the state.

    Why a lock file and not the database: SQLite's own locks last one transaction,
    and a second server's start-up (:meth:`ServerStore.recover`) would abort the
    first one's live round between two of them (D5). ``flock`` is released by the
    kernel when the holder dies, so a crash never leaves a stale lock; the PID
    written into the file is only for the error message. The file is never
    deleted: deleting it would let a second server lock a new file of that name.
    """

    def __init__(self, state: str | Path) -> None:
        """Take the lock or raise :class:`StateInUse` (at once, without waiting)."""
        self._fd: int | None = None  # set once held (__del__ may see a failed start)
        self.state = Path(state)
        self.path = lock_path(state)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot create the lock {self.path} of the state {self.state}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateError(f"cannot lock {self.path}: {exc.strerror}") from None
            who = f"PID {holder}" if holder is not None else "another process"
            raise StateInUse(
                f"state {self.state} is in use by {who} (lock {self.path}): one server per state"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        self._identity = FileIdentity.of(self.path)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def check(self) -> None:
        """Raise :class:`StateLost` if the lock file was deleted or replaced: another
        server could then lock a new file of that name and share the state."""
        if self._fd is None:
            return
        change = self._identity.change()
        if change is not None and change != "truncated to 0 bytes":
            raise StateLost(f"the lock {self.path} of the state {self.state} was {change}")

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __del__(self) -> None:  # the kernel would release it at exit anyway
        try:
            self.release()
        except OSError:
            pass


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Recovery:
    """What a (re)started server continues from."""

    next_round: int
    model: np.ndarray | None  # None: no checkpoint yet, start from the initial model
    aborted_on_restart: tuple[int, ...]


def holds_state(path: str | Path) -> bool:
    """Whether ``path`` is a non-empty file (a state, or something that claims to be one)."""
    try:
        return Path(path).stat().st_size > 0
    except FileNotFoundError:
        return False


def rounds_in_flight(path: str | Path) -> list[int] | None:
    """The rounds the state at ``path`` records as running, read without writing, or
    None when that cannot be told (no readable state).

    Why: a server stopped by a signal said "a round in flight is recorded as aborted at
    the next start" also when it was only waiting for its branches. A running row is
    exactly what the next start records as aborted ("server restarted mid-round"), so
    the stop line can say which round that is, or that there is none."""
    if not holds_state(path):  # no state (or an empty file) holds no round
        return []
    try:
        # not mode=ro: a read-only connection to a WAL database leaves its -wal and
        # -shm files behind; this one removes them on close, and query_only refuses
        # any write
        with contextlib.closing(sqlite3.connect(Path(path), isolation_level=None)) as db:
            db.execute("PRAGMA query_only = ON")
            rows = db.execute("SELECT number FROM rounds WHERE status = 'running'").fetchall()
    except sqlite3.Error:
        return None
    return sorted(int(row[0]) for row in rows)


class ServerStore:
    """Durable rounds and checkpoints; every write is one transaction."""

    def __init__(
        self, path: str | Path, *, create: bool = True, lock: StateLock | None = None
    ) -> None:
        """Open the state at ``path``; with ``create=False`` a missing or empty file is
        refused (:class:`StateMissing`) instead of becoming a new, empty federation.

        ``lock`` (a :class:`StateLock` on this state) is then the store's: checked
        before every write and released by :meth:`close`.

        A named pipe, a device or a socket at ``path`` raises
        :class:`~secagg.errors.NotARegularFile` before SQLite opens it. Why: SQLite
        opened a named pipe and failed as "cannot be opened: disk I/O error", as if the
        state were damaged (and, 0 bytes in size, it read as "empty" with
        ``create=False``)."""
        self.path = Path(path)
        self._lock = lock
        refuse_special_file(self.path, "a server state")
        if not create and not holds_state(self.path):
            what = "is empty" if self.path.exists() else "does not exist"
            raise StateMissing(f"the state {self.path} {what}")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            torn = bool(tables) and "rounds" not in tables and self._torn_schema(tables)
            if tables and "rounds" not in tables and not torn:
                raise StoreCorrupted(
                    f"{self.path} is a SQLite database but not a secagg server state "
                    f"(tables {', '.join(sorted(tables))})"
                )
            if not tables and not create:
                raise StateMissing(f"the state {self.path} holds no tables: it is empty")
            if torn and not create:
                raise StateMissing(
                    f"the state {self.path} holds no rounds table (its creation did not "
                    "finish): it is empty"
                )
            # one transaction: the statements of a script commit one by one, so a server
            # killed between two left a state of some tables that no start would take
            self._db.executescript(f"BEGIN;\n{SCHEMA}COMMIT;")
        except sqlite3.OperationalError as exc:  # permissions, a missing WAL, a lock
            raise StateError(f"the state {self.path} cannot be opened: {exc}") from None
        except sqlite3.DatabaseError as exc:  # not a database, or a malformed one
            raise StoreCorrupted(f"the state {self.path} cannot be read: {exc}") from None
        except sqlite3.Error as exc:
            raise StateError(f"the state {self.path} cannot be opened: {exc}") from None
        self._identity = FileIdentity.of(self.path)

    def _torn_schema(self, tables: set[str]) -> bool:
        """Whether ``tables`` (without ``rounds``) is a schema whose creation was cut short:
        some of the state's own tables, every one empty.

        Why: before the schema was created in one transaction, a server killed between
        its first two statements left only ``clients``, and every start after, ``--init``
        too, refused it as "a SQLite database but not a secagg server state (tables
        clients)" (crash-point review, 2026-12-06). Holding nothing, it is an empty state."""
        if not tables <= _SCHEMA_TABLES.keys():
            return False
        return all(self._db.execute(_SCHEMA_TABLES[table]).fetchone() is None for table in tables)

    def close(self) -> None:
        self._db.close()
        self.release_lock()

    def release_lock(self) -> None:
        """Give up the state's lock (the server has stopped; the store stays readable)."""
        if self._lock is not None:
            self._lock.release()

    # --- checks --------------------------------------------------------------

    def preflight(self) -> None:
        """Refuse a corrupt or unwritable state now, before the server binds its port.

        Why: SQLite opens a read-only file without complaint and fails only at the
        first write, which used to be the first round's, after the port was bound
        and branches had connected (D8). A write (of a probe row) inside
        ``BEGIN IMMEDIATE`` is tried and rolled back: nothing changes."""
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        except sqlite3.OperationalError as exc:
            raise StateError(f"the state {self.path} cannot be checked: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupted(f"the state {self.path} is damaged: {exc}") from None
        if problems != ["ok"]:
            raise StoreCorrupted(f"the state {self.path} is damaged: {'; '.join(problems)}")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO clients (name, fingerprint, registered_at) VALUES (?, NULL, 0) "
                    "ON CONFLICT(name) DO UPDATE SET registered_at = 0",
                    ("\x00secagg-write-probe",),
                )
            finally:
                self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StateError(f"the state {self.path} is not writable: {exc}") from None

    def check_file(self) -> None:
        """Raise :class:`StateLost` if the state file was deleted, replaced or emptied
        since it was opened, or its lock file was; called before every write."""
        change = self._identity.change()
        if change is not None:
            raise StateLost(
                f"the state {self.path} was {change} while the server was running: "
                "stopped before writing to it"
            )
        if self._lock is not None:
            self._lock.check()

    def round_numbers(self) -> dict[int, str]:
        """Every recorded round's number and status (the cross-check with the ledger)."""
        return {
            int(number): str(status)
            for number, status in self._db.execute("SELECT number, status FROM rounds")
        }

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

    def note_reveal(self, number: int, charge: dict[str, Any]) -> None:
        """Record, before a running round's sum is revealed to the server, what that costs:
        a restart then charges the round (:meth:`recover` keeps it) even though it never
        completed. Completing or aborting the round replaces the note."""
        with self._tx():
            updated = self._db.execute(
                "UPDATE rounds SET report = ? WHERE number = ? AND status = 'running'",
                (json.dumps({"revealed": charge}), number),
            ).rowcount
            if updated != 1:
                raise StoreCorrupted(f"round {number} is not running")

    def abort_round(self, number: int, report: dict[str, Any]) -> None:
        with self._tx():
            self._finish(number, "aborted", report)

    def note_ledger_missing(self, number: int, cause: str) -> None:
        """Record with a finished round that its ledger row was not written, and why.

        Why: the append comes after the state has finished the round, so the failure
        cannot abort it (:meth:`abort_round` refuses a finished round) and only the
        log used to say why the ledger lacked the row. The note
        (``report["ledger_row_missing"]``) stays until the restart rebuilds the row
        (:meth:`note_ledger_rebuilt`). Raises :class:`StoreCorrupted` for a round the
        state has not finished; nothing changes then."""
        with self._tx():
            report = self._finished_report(number)
            report["ledger_row_missing"] = cause
            self._set_report(number, report)

    def note_ledger_written(self, number: int, cause: str | None = None) -> None:
        """Record with a finished round that its ledger append raised but its row is in
        the ledger all the same: ``report["ledger_append_error"]`` is the cause (``cause``,
        or the ``ledger_row_missing`` note's, which this replaces).

        Why: an append can write its row and then fail (a sync or a commit reported
        failed once the row was in); recorded as ``ledger_row_missing``, the note stayed
        after the restart, which found the row and rebuilt nothing, so an auditor read a
        missing row that was not missing. Raises :class:`StoreCorrupted` for a round the
        state has not finished; nothing changes then."""
        with self._tx():
            report = self._finished_report(number)
            missing = report.pop("ledger_row_missing", None)
            report["ledger_append_error"] = cause or missing or "no cause recorded"
            self._set_report(number, report)

    def note_ledger_rebuilt(self, number: int) -> None:
        """Record that a finished round's missing ledger row has been rebuilt from the
        state: ``ledger_row_missing`` becomes ``ledger_row_rebuilt`` (the cause kept, so
        the state still says why that row is a reconstruction); a round without the
        note (a crash between the two commits) gets ``ledger_row_rebuilt`` with the
        reason ``"no cause recorded"``."""
        with self._tx():
            report = self._finished_report(number)
            report["ledger_row_rebuilt"] = report.pop("ledger_row_missing", "no cause recorded")
            self._set_report(number, report)

    def _finished_report(self, number: int) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT report FROM rounds WHERE number = ? AND status IN ('complete', 'aborted')",
            (number,),
        ).fetchone()
        if row is None:
            raise StoreCorrupted(f"round {number} is not finished")
        return dict(json.loads(row[0])) if row[0] else {}

    def _set_report(self, number: int, report: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE rounds SET report = ? WHERE number = ?", (json.dumps(report), number)
        )

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
            found = self._db.execute(
                "SELECT number, report FROM rounds WHERE status = 'running'"
            ).fetchall()
            running = [r[0] for r in found]
            for number, report in found:
                revealed = (json.loads(report) if report else {}).get("revealed")
                if revealed is None:
                    self._finish(number, "aborted", {"reason": "server restarted mid-round"})
                else:  # its sum had been revealed to the server: the charge stands
                    reason = "server restarted mid-round, after its sum was revealed to it"
                    self._finish(number, "aborted", {"reason": reason, "revealed": revealed})
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
        self.check_file()  # never commit to a deleted or replaced file
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
