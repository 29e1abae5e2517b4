"""The privacy ledger: an append-only, hash-chained, Ed25519-signed record of every round.

Theory of operation
-------------------
Each round (complete or aborted) appends one *entry*, a JSON object, as row
``seq`` (1, 2, ...). The row's hash is SHA-256 over a domain label, ``seq``,
the previous row's hash and the entry's canonical JSON (sorted keys, no
whitespace, no NaN), so editing, deleting, inserting or reordering any row
breaks every later link. The first row links to a genesis hash derived from
the ledger's public key, which binds the whole chain to that key. Every row's
hash is signed with the server's Ed25519 ledger key, and so is the *head*
(row count and last hash), kept in its own table and updated in the same
SQLite transaction as the row: dropping rows from the end no longer matches
the *current* signed head, and a crash mid-write rolls the whole append back.
A new ledger is born with a signed *genesis head* (0 rows, the genesis hash):
a ledger whose server stopped before its first round verifies as "0 rows",
not as one truncated or rebuilt (reliability review D9).

What the chain cannot show: a ledger rolled back *as a whole* to an earlier
valid state, and truncation is the same thing once the attacker holds an
older signed head (every earlier state had one; any copy or backup of the
file holds it). The writer makes older heads hard to find in the live files
(``secure_delete``, and the WAL checkpointed and truncated after every
append, so the file's own history no longer hands them out), but only an
anchor outside the file detects the rollback: the auditor keeps the head
``secagg audit verify`` prints (:func:`format_head`) and passes it back with
``--expect-head`` (:func:`check_expected_head`); docs/audit.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import shutil
import sqlite3
import struct
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from secagg.crypto.signing import SigningKey, VerifyKey, write_private_file
from secagg.durable import (
    opened_regular_file,
    read_at_most,
    read_regular_file,
    refuse_special_file,
    special_file_kind,
    write_atomically,
)
from secagg.errors import ConfigurationError, NotARegularFile, SecAggError, SignatureError
from secagg.ledger.entry import row_shape_problem

log = logging.getLogger("secagg.ledger")

#: the largest ledger key file (a PEM Ed25519 key and its salt, under 300 bytes) or
#: public key file read: past this it is not one, and is refused rather than read whole
MAX_LEDGER_KEY_BYTES = 64 * 1024

ROW_LABEL = b"secagg/v1/ledger-row"
HEAD_LABEL = b"secagg/v1/ledger-head"
GENESIS_LABEL = b"secagg/v1/ledger-genesis"
SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL,
    signature TEXT NOT NULL);
"""
#: :data:`SCHEMA` one statement at a time, for :class:`Ledger` to run in its transaction
_SCHEMA_STATEMENTS = tuple(s for s in SCHEMA.split(";") if s.strip())

#: how long the writer waits for another program's lock before it gives up with
#: :class:`LedgerBusy` (restored after each checkpoint, which never waits). Why 30 s and
#: not sqlite3's 5: a ledger its writer closed is in rollback-journal mode, where another
#: program's read transaction (the ``sqlite3`` shell, a backup tool; ``secagg audit``
#: takes no lock there) holds a shared lock for as long as it lasts, and the restarted
#: writer's first append must wait for it to switch the file to WAL mode; 30 s lets a
#: short read finish, and a program that keeps the file open longer is named rather
#: than waited on forever (docs/audit.md)
BUSY_TIMEOUT_MS = 30_000
#: the SQLite result codes of a lock another connection holds (SQLITE_BUSY, SQLITE_LOCKED)
_LOCKED_CODES = frozenset({5, 6})
#: how many times an audit reads a ledger whose file changed under its lock-free read
#: (:func:`_read_consistently`) before it gives up: a retry that saw a writer start
#: reads through its log and SQLite's locks, so the second read is the last in practice
_UNSTABLE_READS = 5
#: the auditor's copy of the ledger's public key is public: readable by all
PUBLIC_KEY_FILE_MODE = 0o644


class LedgerError(SecAggError):
    """The ledger cannot be written or read as a ledger at all."""


class LedgerBusy(LedgerError):
    """Another program holds the ledger's file locked for longer than the writer waits
    (:data:`BUSY_TIMEOUT_MS`): its open or its append did nothing, wrote nothing.

    Why its own type: a server restarted while an auditor's ``sqlite3`` shell (or any
    program) held a read transaction on the ledger waited 5 s and stopped on sqlite3's
    bare ``database is locked``, which named neither the file nor that another program
    was the cause, and the server's command reported it as a failure of "the state or
    its ledger". The operator closes that program and starts again."""


class LedgerKeptChanging(LedgerError):
    """No read of the ledger held still: its files changed during each of
    :data:`_UNSTABLE_READS` lock-free reads (a server appending as it was read). Nothing
    was judged: the ledger is neither verified nor failed, and reading it again is what
    to do.

    Why its own type: ``audit verify`` said it as ``FAILED: L cannot be read as a
    ledger: ...``, exit 1, the verdict of a ledger changed without the key, for an
    honest ledger whose server kept appending while an auditor who cannot write its
    folder read it (tests/ledger/test_verify_busy_writer.py); the audit's commands now
    say ``NOT READ``, exit 5."""


class NotALedger(ConfigurationError):
    """The file given as a ledger is not one (no ledger table in it, or no SQLite file at
    all): the wrong file was named, a usage mistake, not a ledger that failed.

    Why its own type: ``secagg audit verify state/fraud.sqlite`` (the server's state
    database, beside its ledger ``state/fraud.sqlite.ledger``) printed ``FAILED ... no
    such table: ledger_meta``, exit 1, which reads as a ledger that failed verification.
    A file holding some of the ledger's tables but not all is a damaged ledger, and
    still fails (:class:`LedgerError`)."""


class OptionMistake(ConfigurationError):
    """An auditor's option names something the ledger cannot take: an ``--expect-head``
    of 0 rows that is not this ledger's genesis, a ``--prior-ledger`` that is the ledger
    itself or no ledger at all. A usage mistake, like any :class:`ConfigurationError`,
    that knows its flag.

    Why: ``secagg audit`` turned these into a bare usage line, and the line named the
    flag in words of its own or not at all (``Error: the head '0:aa..' counts 0
    rows ...``, ``Error: --prior-ledger P is not a privacy ledger``) where every other
    flag reads ``Invalid value for '--flag': ...``. ``option`` is the flag, ``reason``
    the message without it (the CLI names the flag as click names every one); the
    library's message (``str``) is unchanged."""

    def __init__(self, message: str, *, option: str, reason: str) -> None:
        super().__init__(message)
        self.option = option
        self.reason = reason


#: the tables every ledger holds (:data:`SCHEMA`; tests/ledger/test_unwritten_ledger_tables.py
#: holds the two equal): a file with none of them is no ledger
LEDGER_TABLES = frozenset({"ledger_meta", "ledger", "ledger_head"})
#: the query that finds a row in each ledger table (fixed text: no name from the file)
_ROW_IN_TABLE = {
    "ledger_meta": "SELECT 1 FROM ledger_meta LIMIT 1",
    "ledger": "SELECT 1 FROM ledger LIMIT 1",
    "ledger_head": "SELECT 1 FROM ledger_head LIMIT 1",
}
#: the tables of the server's state database (``secagg.runtime.store.SCHEMA``, which this
#: layer may not import; tests/ledger/test_not_a_ledger.py holds the two equal): the
#: file an operator most often names by mistake, its ledger being ``<state>.ledger``
_SERVER_STATE_TABLES = frozenset({"clients", "rounds", "checkpoints"})
#: the first 16 bytes of every SQLite 3 database file
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: the header's file format write and read versions: both 2 in a database in WAL mode
_WAL_VERSION_BYTES = slice(18, 20)


def _plain(value: Any) -> Any:
    """JSON-safe: infinities become strings, NaN is refused (it has no canonical form)."""
    if isinstance(value, float):
        if math.isnan(value):
            raise LedgerError("a ledger entry cannot hold NaN")
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes a row's hash covers: sorted keys, no whitespace, ASCII."""
    return json.dumps(
        _plain(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def genesis_hash(public_key: bytes) -> str:
    return hashlib.sha256(GENESIS_LABEL + public_key).hexdigest()


def row_hash(seq: int, prev_hash: str, entry_json: bytes) -> str:
    return hashlib.sha256(
        ROW_LABEL + seq.to_bytes(8, "big") + bytes.fromhex(prev_hash) + entry_json
    ).hexdigest()


def head_message(seq: int, last_hash: str) -> bytes:
    return HEAD_LABEL + seq.to_bytes(8, "big") + bytes.fromhex(last_hash)


@dataclass(frozen=True)
class FileIdentity:
    """Which file a path named when it was opened (device and inode).

    Why: SQLite keeps writing to a file it has open even after it was deleted, or
    after another file was moved over its name; the writer would then record rounds
    nobody will read, and the next start would find a missing or older file. A
    writer compares its path with this identity before it commits (the ledger here,
    the server's store in :mod:`secagg.runtime.store`)."""

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, path: str | Path) -> FileIdentity:
        info = os.stat(path)
        return cls(Path(path), info.st_dev, info.st_ino)

    def change(self) -> str | None:
        """None if the path still names the same, non-empty file; else what happened."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return "deleted"
        except OSError as exc:
            return f"made unreadable ({exc.strerror})"
        if (info.st_dev, info.st_ino) != (self.device, self.inode):
            return "replaced by another file"
        if info.st_size == 0:
            return "truncated to 0 bytes"
        return None


# --- keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerKey:
    """The server's ledger signing key and the salt that hashes participant names.

    The salt is kept with the key, not in the ledger: with it an operator can show
    an auditor which hash is a given branch; without it the few branch names could
    be found by trying them all.
    """

    signing: SigningKey
    salt: bytes

    @classmethod
    def generate(cls) -> LedgerKey:
        return cls(SigningKey.generate(), os.urandom(32))

    @property
    def public_key(self) -> bytes:
        return self.signing.verify_key.raw

    def identity_hash(self, name: str) -> str:
        return hmac.new(self.salt, name.encode(), hashlib.sha256).hexdigest()

    def save(self, path: str | Path) -> None:
        """Write the private key and salt (mode 0600) and the public key beside it."""
        path = Path(path)
        blob = self.signing.to_pem() + b"salt:" + self.salt.hex().encode() + b"\n"
        write_private_file(path, blob)
        export_public_key(self.public_key, public_key_path(path))

    @classmethod
    def load(cls, path: str | Path) -> LedgerKey:
        try:
            # one open, bounded: a named pipe here blocked the server's start forever
            blob = read_regular_file(path, MAX_LEDGER_KEY_BYTES, "a ledger key file")
            pem, _, salt = blob.partition(b"salt:")
            signing = SigningKey.from_pem(pem)
            if len(salt.strip()) != 64:
                raise ValueError("not an Ed25519 ledger key with its salt")
            return cls(signing, bytes.fromhex(salt.strip().decode()))
        except OSError as exc:  # its cause kept, in words: not "[Errno 13] ...: 'K'"
            raise ConfigurationError(
                f"cannot read the ledger key {path}: {exc.strerror or type(exc).__name__}"
            ) from exc
        except ValueError as exc:
            raise ConfigurationError(f"cannot read the ledger key {path}: {exc}") from None

    @classmethod
    def load_or_create(cls, path: str | Path) -> LedgerKey:
        return cls.load(path) if Path(path).exists() else _created(cls.generate(), path)

    def restore_public_key_file(self, path: str | Path) -> bool:
        """Write the auditor's copy of this key's public half beside the key at ``path``
        (:func:`public_key_path`) again unless it already holds exactly that key;
        whether it was written. Raises the :class:`OSError` of a failed write.

        Why: :meth:`save` writes the private key, then its public half, and only a new
        ledger's key is saved. A server killed between the two writes (or, while the
        public file was written in place, half-way through it) left a key without its
        auditor's copy, or with a torn one, and no later start wrote it again:
        ``secagg audit verify --pubkey <state>.ledger-key.pub`` (docs/audit.md) failed
        on the missing or unreadable file for the federation's whole life (crash-point
        enumeration, tests/runtime/test_crash_points.py). The private key is what signs
        the ledger, so its public half is the truth the file is rewritten from."""
        target = public_key_path(path)
        try:
            if load_public_key(target) == self.public_key:
                return False
            found = "another key"
        except ConfigurationError:
            found = "no readable public key" if target.exists() else "nothing"
        export_public_key(self.public_key, target)
        log.warning("%s held %s: rewritten from the ledger key %s", target, found, path)
        return True


def _created(key: LedgerKey, path: str | Path) -> LedgerKey:
    key.save(path)
    return key


def public_key_path(key_path: str | Path) -> Path:
    return Path(str(key_path) + ".pub")


def export_public_key(public_key: bytes, path: str | Path) -> Path:
    """The auditor's copy: a PEM SubjectPublicKeyInfo file (mode 0644), written
    atomically (:func:`~secagg.durable.write_atomically`): a crash mid-write leaves the
    old file or the new one, never half of a key. The folder must exist."""
    write_atomically(
        Path(path), VerifyKey(public_key).to_pem(), mode=PUBLIC_KEY_FILE_MODE, make_folder=False
    )
    return Path(path)


def load_public_key(path: str | Path) -> bytes:
    try:
        # one open, bounded: a named pipe here blocked the audit forever
        return VerifyKey.from_pem(
            read_regular_file(path, MAX_LEDGER_KEY_BYTES, "a public key file")
        ).raw
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the public key {path}: {exc}") from None


# --- the ledger ---------------------------------------------------------------------------


class Ledger:
    """Append-only writer. One process writes; any number of auditors read copies."""

    def __init__(self, path: str | Path, key: LedgerKey) -> None:
        self.path = Path(path)
        self.key = key
        # SQLite opens the ledger by its name, so the check cannot be made on the
        # descriptor it reads: a named pipe (or a device) is refused just before, the
        # most that can be done (sqlite3 on a named pipe failed as "disk I/O error")
        refuse_special_file(self.path, "a ledger")
        # and beside it: a named pipe at its journal hung this open forever (the server's
        # start reads the ledger first, which refuses one; any other writer did not)
        _refuse_special_side_files(_where_sqlite_opens(self.path), "open the ledger again")
        #: how long this writer waits for another program's lock (:data:`BUSY_TIMEOUT_MS`,
        #: read when the writer opens)
        self._busy_timeout_ms = BUSY_TIMEOUT_MS
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=self._busy_timeout_ms / 1000
        )
        try:
            with self._waiting("the ledger was not opened"):
                self._open()
        except BaseException:
            self._db.close()
            raise
        # the file this writer appends to: one deleted or replaced under it is noticed
        self._identity = FileIdentity.of(self.path)
        _OPEN_WRITERS.add(self)

    def _open(self) -> None:
        """Set the connection up and write what a new ledger needs (tables, key, genesis
        head), only where something is missing."""
        # secure_delete: the head row every append replaces is zeroed, not left as a free
        # block holding an older signed head (security review L1).
        self._db.execute("PRAGMA secure_delete=ON")
        # WAL mode for appends (a reader never blocks one). A ledger its last writer
        # closed is in rollback-journal mode (:meth:`close`) and stays so until this
        # writer's first append: opened and closed without one (a refused restart), its
        # bytes are left as they were
        self._wal = not self._closed_by_its_writer()
        if self._wal:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # a WAL reset by a checkpoint shrinks to nothing rather than keeping old frames
        self._db.execute("PRAGMA journal_size_limit=0")
        if self._written_already():
            # no write transaction: in rollback-journal mode its COMMIT needs the file to
            # itself, so a restart waited for any reader (an audit, the sqlite3 shell) and
            # failed on "database is locked" after 5 s, with nothing to write
            # (tests/ledger/test_ledger_concurrent_reader.py)
            self._checkpoint()
            return
        # the tables, the key and the genesis head in one transaction: ``executescript``
        # committed each CREATE TABLE on its own, so a process killed while creating the
        # ledger left some of its tables, or all of them without a key, which the
        # auditor's tools read as a damaged ledger (tests/ledger/test_ledger_creation_crash.py)
        with self._tx():
            for statement in _SCHEMA_STATEMENTS:
                self._db.execute(statement)
            stored = self._db.execute(
                "SELECT value FROM ledger_meta WHERE key = 'public_key'"
            ).fetchone()
            if stored is not None and stored[0] != self.key.public_key.hex():
                raise LedgerError(f"{self.path} belongs to another ledger key")
            if stored is None:
                self._db.execute(
                    "INSERT INTO ledger_meta VALUES ('public_key', ?)",
                    (self.key.public_key.hex(),),
                )
            self._sign_genesis_head()
        self._checkpoint()  # folds in (and empties) a WAL an older writer or a crash left

    def _written_already(self) -> bool:
        """Whether the file holds all the open would write: the ledger's tables, this
        writer's key, and a signed head or rows (a ledger with rows and no head is left
        so, :meth:`_sign_genesis_head`). Read without a write transaction; raises
        :class:`LedgerError` for a ledger of another key."""
        tables = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not LEDGER_TABLES <= {str(row[0]) for row in tables}:
            return False
        stored = self._db.execute(
            "SELECT value FROM ledger_meta WHERE key = 'public_key'"
        ).fetchone()
        if stored is None:
            return False
        if stored[0] != self.key.public_key.hex():
            raise LedgerError(f"{self.path} belongs to another ledger key")
        has_head = self._db.execute("SELECT 1 FROM ledger_head WHERE id = 1").fetchone()
        has_rows = self._db.execute("SELECT 1 FROM ledger LIMIT 1").fetchone()
        return has_head is not None or has_rows is not None

    @contextmanager
    def _waiting(self, undone: str) -> Iterator[None]:
        """Turn SQLite's "database is locked" in the block into :class:`LedgerBusy`,
        naming the file, the cause and ``undone`` (what did not happen). Only for a
        block that writes nothing when it fails so: a lock refused before a write
        transaction began, or the COMMIT of one in rollback-journal mode (rolled back)."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF not in _LOCKED_CODES:
                raise
            raise LedgerBusy(
                f"another process holds the ledger {self.path} open (a read transaction: "
                "an audit, the sqlite3 shell, a backup tool) and kept it past the "
                f"{self._busy_timeout_ms / 1000:g} s the server waits: {undone}, nothing "
                f"was written; close that program and try again ({exc})"
            ) from None

    def _closed_by_its_writer(self) -> bool:
        """Whether the file is a ledger in rollback-journal mode: one :meth:`close` left
        whole in its main file. A new file, or one in WAL mode (a writer killed, or
        closed by a secagg before 2026-12-07), is not."""
        mode = self._db.execute("PRAGMA journal_mode").fetchone()
        if mode is None or str(mode[0]).lower() != "delete":
            return False
        tables = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger'"
        ).fetchone()
        return tables is not None

    def _enter_wal_mode(self) -> None:
        """Set WAL mode before this writer's first append to a ledger its last writer
        closed; :class:`LedgerError` where SQLite keeps another mode (an append in
        rollback-journal mode would be read by an audit as a whole file while it is
        being written)."""
        if self._wal:
            return
        mode = self._switch_to_wal_at_once()
        if mode is None:
            # said before the wait, not after it: the server's round stood still for up
            # to 30 s with nothing in its log, then stopped on LedgerBusy; the operator
            # who reads this can close the other program while the server still waits
            log.warning(
                "ledger %s: another program holds it open (a read transaction: the sqlite3 "
                "shell, a backup tool); the round's append waits up to %g s for it to let go",
                self.path,
                self._busy_timeout_ms / 1000,
            )
            with self._waiting(
                "the append was not made (the ledger's switch to WAL mode waits for it)"
            ):
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise LedgerError(
                f"the ledger {self.path} could not be set to WAL mode for its append "
                f"(SQLite kept {mode[0] if mode else 'no'} mode)"
            )
        self._wal = True

    def _switch_to_wal_at_once(self) -> Any:
        """``PRAGMA journal_mode=WAL``'s row, or None when another connection's lock
        refused it without a wait (busy timeout 0, restored after)."""
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            return self._db.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF not in _LOCKED_CODES:
                raise
            return None
        finally:
            self._db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")

    def _sign_genesis_head(self) -> None:
        """Sign the head of an empty ledger (0 rows, the genesis hash), once.

        Why: without it a ledger whose server stopped before its first round had no
        signed head, and ``audit verify`` could not tell it from one emptied without
        the key (D9). A ledger that has rows but no head is left as it is: that *is*
        a truncation, and signing a head over it would hide it."""
        has_head = self._db.execute("SELECT 1 FROM ledger_head WHERE id = 1").fetchone()
        has_rows = self._db.execute("SELECT 1 FROM ledger LIMIT 1").fetchone()
        if has_head is not None or has_rows is not None:
            return
        genesis = genesis_hash(self.key.public_key)
        signature = self.key.signing.sign(head_message(0, genesis)).hex()
        self._db.execute("INSERT INTO ledger_head VALUES (1, 0, ?, ?)", (genesis, signature))

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back when the
        block or the COMMIT itself raises.

        Why the COMMIT too: SQLite may keep a transaction open after a commit that
        failed (``SQLITE_BUSY``, ``SQLITE_FULL``, ``SQLITE_IOERR``). Left open, the
        writer's connection saw the failed row as its own (its head one row ahead of
        the file's) and the next append failed at ``BEGIN IMMEDIATE`` ("cannot start a
        transaction within a transaction"), or a later commit would have written a row
        the server had been told was not written
        (tests/ledger/test_ledger_commit_failure.py)."""
        with self._waiting("its write transaction did not begin"):
            self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._roll_back()
            raise

    def _roll_back(self) -> None:
        """Roll back the writer's open transaction, if SQLite has not already done so.
        A ROLLBACK that fails too is logged, not raised: the error that led here is
        the one the caller must see."""
        if not self._db.in_transaction:  # SQLite rolled it back itself
            return
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error(
                "ledger %s: the failed transaction could not be rolled back: %s", self.path, exc
            )

    def _checkpoint(self) -> bool:
        """Copy the WAL into the main file and truncate it to zero bytes.

        In WAL mode every append adds a fresh copy of the ``ledger_head`` page to
        ``<ledger>-wal``, so without this a snapshot of the live files held a valid
        signed head for every earlier row count, enough to cut rows from the end
        without the key (security review L1). Returns False when a reader's open
        snapshot kept the checkpoint from finishing; the next append tries again.
        """
        # without waiting: a reader holding a snapshot would otherwise stall the append
        # for the whole busy timeout (the next append retries)
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:  # the append already committed: report, don't undo
            log.warning("ledger %s: WAL checkpoint failed: %s", self.path, exc)
            return False
        finally:
            self._db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        return busy == 0

    def head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
        return (0, genesis_hash(self.key.public_key)) if row is None else (int(row[0]), row[1])

    def anchor(self) -> str:
        """The current head as the ``SEQ:HASH`` token an auditor keeps (:func:`format_head`)."""
        return format_head(*self.head())

    def append(self, entry: dict[str, Any]) -> int:
        """Append one entry (row and signed head in one transaction); returns its seq."""
        body = canonical(entry)
        self.check_file()
        self._enter_wal_mode()
        with self._tx():
            seq, prev = self.head()
            seq += 1
            digest = row_hash(seq, prev, body)
            signature = self.key.signing.sign(bytes.fromhex(digest)).hex()
            self._db.execute(
                "INSERT INTO ledger VALUES (?, ?, ?, ?, ?)",
                (seq, body.decode(), prev, digest, signature),
            )
            head_signature = self.key.signing.sign(head_message(seq, digest)).hex()
            self._db.execute(
                "INSERT OR REPLACE INTO ledger_head VALUES (1, ?, ?, ?)",
                (seq, digest, head_signature),
            )
        self._checkpoint()  # after COMMIT: the row is durable in the WAL whatever this does
        return seq

    def check_file(self) -> None:
        """Raise :class:`LedgerError` if the ledger file was deleted, replaced or emptied
        since it was opened: SQLite would go on appending to the old file, which no
        auditor will ever read."""
        change = self._identity.change()
        if change is not None:
            raise LedgerError(f"the ledger {self.path} was {change} while the server was running")

    def entries(self) -> list[dict[str, Any]]:
        """Every entry so far, oldest first (the writer's own view; audits use read_chain).
        Raises :class:`LedgerError` (one line) naming the first row no writer could have
        written (:func:`shaped_entries`)."""
        rows = self._db.execute("SELECT seq, entry FROM ledger ORDER BY seq").fetchall()
        return shaped_entries(rows, self.path)

    def committed_entries(self) -> list[dict[str, Any]]:
        """Every entry a reader of the file sees, oldest first: read through a connection
        of its own, never this writer's.

        Why: after an append that raised, the writer's connection may still hold the
        transaction whose commit failed (its row visible to it alone), and the append
        may have written the row before it raised (a sync or a commit reported failed
        after the frames were in the log). Whether the row is there is what an auditor
        reads, so it is read as an auditor does."""
        rows = _read_tables(
            self.path,
            lambda db: db.execute("SELECT seq, entry FROM ledger ORDER BY seq").fetchall(),
        )
        return shaped_entries(rows, self.path)

    def close(self) -> None:
        """Fold the log into the main file, leave WAL mode and close.

        Why leave WAL mode: the main file alone then holds every row, and says so (its
        header's journal mode), so an auditor's copy of it is complete. A file still in
        WAL mode is one whose writer is running or was killed: rows an append committed
        may be in ``<ledger>-wal`` alone (a reader's snapshot held the fold back, or the
        kill came between the commit and the fold), and a copy of the main file without
        that log verified, rows and signed head agreeing, one or more rounds short, at a
        smaller epsilon (:func:`wal_mode_without_log`, which ``audit verify`` reads). The
        next writer's first append sets WAL mode again. A ledger this writer opened in
        rollback-journal mode and never appended to is left as it was, byte for byte."""
        try:
            if self._wal:
                self._leave_wal_mode()
        finally:
            _OPEN_WRITERS.discard(self)
            self._db.close()  # the last connection's close checkpoints and deletes the WAL

    def _leave_wal_mode(self) -> None:
        """Switch the ledger to rollback-journal mode (which folds the log in), without
        waiting: the switch needs the file to itself, and a reader holding it open would
        otherwise stall the server's stop for the whole busy timeout. Where it cannot be
        made now (a reader, a failed file), the ledger stays in WAL mode, which an audit
        of a copy without its log reads as possibly incomplete: the safe side."""
        try:
            self._db.execute("PRAGMA busy_timeout=0")
            self._db.execute("PRAGMA journal_mode=DELETE").fetchone()
        except sqlite3.Error as exc:
            log.info("ledger %s left in WAL mode at close: %s", self.path, exc)


def shaped_entries(rows: Iterable[tuple[Any, Any]], path: Path) -> list[dict[str, Any]]:
    """The entries of the stored ``(seq, entry text)`` rows, each a row the writer could
    have written (:func:`~secagg.ledger.entry.row_shape_problem`, the rule ``audit
    verify`` fails a row by); :class:`LedgerError` (one line) naming the first that is
    not, or whose text is no JSON.

    Why: :meth:`Ledger.entries` and :meth:`Ledger.committed_entries` returned whatever
    JSON each row held, and their readers (the server's start, its look after a failed
    append) took each for an object with a round number: a signed row that was a list,
    or whose ``dp`` was a list, ended the server's start in an ``AttributeError``, and
    one without a round number was skipped by its check of the state against the
    ledger. Such a row is signed with the ledger key by something other than a server:
    the server does not continue that ledger."""
    entries: list[dict[str, Any]] = []
    previous_round: int | None = None
    for seq, text in rows:
        try:
            entry = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            problem: str | None = "is not JSON text"
        else:
            problem = row_shape_problem(entry, previous_round)
        if problem is not None:
            where = f"row {seq} " if problem.startswith("is ") else f"row {seq}: "
            raise LedgerError(
                f"the ledger {path}: {where}{problem}; no server writes such a row, so the "
                "server does not continue this ledger: restore it from a backup (secagg "
                "audit verify names the damage)"
            )
        entries.append(entry)
        previous_round = entry["round"]
    return entries


# --- reading and checking the chain ----------------------------------------------------------


@dataclass(frozen=True)
class ChainRow:
    seq: int
    entry: dict[str, Any]
    hash: str = ""  # the row's chain hash (a head is ``seq:hash`` of the last row)
    #: the row's signature as stored (hex): an archive and a pruned tail that both hold
    #: a row must hold it byte for byte (see :func:`read_chain`'s ``shared``)
    signature: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class ChainReport:
    """The chain check: rows that verified, and the first failure if any."""

    rows: list[ChainRow]
    public_key: bytes
    head_hash: str | None
    failure: str | None
    key_source: str  # "given" or "embedded"
    #: rows of the chain held in a prior ledger, not in this file: 0 for a ledger that
    #: begins at its genesis; N for the tail of a chain whose rows 1..N were archived
    #: (:func:`read_chain`'s ``after``), its first row then being N + 1
    offset: int = 0
    #: rows this file holds that the prior ledger holds too, byte for byte (an archive
    #: copied after the file was pruned to a later row): read once, as the prior's, and
    #: not in :attr:`rows`; they are rows ``offset - shared + 1`` to ``offset``
    shared: int = 0
    #: the file was read without its log: it is in WAL mode (its writer running, or
    #: killed) and no ``-wal`` was beside it, so rows committed to that log are not in
    #: :attr:`rows`, and nothing in the file shows whether there were any
    #: (:func:`wal_mode_without_log`)
    without_log: bool = False
    #: the file is in WAL mode and was read with an empty ``-wal`` that no process held
    #: open (:func:`empty_log_unheld`): whole if it is a killed server's file read in
    #: place or a copy of a file and its log taken at one moment; short, with nothing to
    #: show it, if the main file was copied alone and the log came later or from a
    #: program that opened the copy
    empty_log: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def head(self) -> str | None:
        """The verified head as a copyable ``SEQ:HASH`` token; None if the chain failed."""
        if self.head_hash is None:
            return None
        return format_head(self.offset + len(self.rows), self.head_hash)

    @property
    def first_head(self) -> str | None:
        """The head after this file's first row, ``SEQ:HASH``: kept (or published) once,
        it pins where the ledger begins. Passed back as ``--expect-head`` it fails a
        ledger cut from the front and re-signed, which the chain alone cannot tell from
        an honest one (the genesis depends on the key only). None without rows or if the
        chain failed."""
        if self.head_hash is None or not self.rows:
            return None
        return format_head(self.rows[0].seq, self.rows[0].hash)


# --- heads as anchors ------------------------------------------------------------------------


def format_head(seq: int, head_hash: str) -> str:
    """A head as one token, ``SEQ:HASH``: what ``verify`` prints and ``--expect-head`` takes.

    The hash alone identifies the row (it covers the sequence number); the row count in
    front lets an auditor see at a glance how far a later ledger is from it. An empty
    ledger's head is ``0:`` and its genesis hash.
    """
    return f"{seq}:{head_hash}"


def parse_head(text: str) -> tuple[int | None, str]:
    """``SEQ:HASH`` or a bare ``HASH`` (64 hex digits) -> (seq or None, lowercase hash)."""
    seq_text, _, digest = text.strip().rpartition(":")
    digest = digest.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ConfigurationError(
            f"a ledger head is SEQ:HASH or HASH with a 64-digit hex hash, not {text!r}"
        )
    if not seq_text:
        return None, digest
    if not seq_text.isdigit():
        raise ConfigurationError(
            f"the row count in the head {text!r} is not a non-negative integer"
        )
    return int(seq_text), digest


@dataclass(frozen=True)
class AnchorCheck:
    """How a verified chain relates to a head the auditor kept from an earlier audit."""

    failure: str | None
    grown_by: int = 0  # rows appended after the expected head

    @property
    def ok(self) -> bool:
        return self.failure is None


def check_expected_head(chain: ChainReport, expected: str) -> AnchorCheck:
    """Does this (verified) chain contain the expected head and extend it?

    The signatures cannot tell a ledger cut back to an earlier head, or rolled back to
    an older copy, from an honest shorter one: both carry a valid signed head. A head
    the auditor kept from an earlier audit can: the current chain must hold a row with
    that hash (at that position, when the token gives it); rows after it mean the
    ledger grew, which is fine. A ``0:`` head (the genesis head of a ledger that had no
    rows yet) whose hash is not this ledger's genesis hash cannot be any ledger's head
    of this key: :class:`~secagg.errors.ConfigurationError`, like a malformed token.
    """
    seq, digest = parse_head(expected)
    rows = chain.rows
    total = chain.offset + len(rows)  # the chain's row count, archived rows included
    found = next((r.seq for r in rows if hmac.compare_digest(r.hash, digest)), None)
    genesis = genesis_hash(chain.public_key)
    if found is None and hmac.compare_digest(genesis, digest):
        found = 0  # the head the ledger was born with: every ledger of this key holds it
    elif seq == 0:  # a head of 0 rows is the genesis hash, by construction
        reason = (
            f"the head {expected!r} counts 0 rows, so its hash must be this ledger's genesis "
            f"hash ({genesis[:16]}…): a mistyped token, or another ledger's"
        )
        raise OptionMistake(reason, option="--expect-head", reason=reason)
    current = chain.head or "none"
    if found is not None and (seq is None or seq == found):
        return AnchorCheck(None, grown_by=total - found)
    wanted = format_head(seq, digest) if seq is not None else digest
    if found is not None:  # the hash covers its row number: the token itself is wrong
        return AnchorCheck(
            f"the expected head {wanted} is inconsistent: that hash is row {found} of this "
            f"ledger, not row {seq}; copy the head token again"
        )
    if seq is not None and seq > total:
        return AnchorCheck(
            f"the ledger's head is {current} ({total} rows) but you expected {wanted}: "
            f"{seq - total} or more rows were cut from the end, or the whole ledger was "
            "rolled back to an earlier copy"
        )
    if seq is not None:
        return AnchorCheck(
            f"row {seq} of this ledger is not the head you expected ({wanted}); its head is "
            f"{current}: this is another ledger, or it was rewritten and re-signed with the "
            "ledger key"
        )
    return AnchorCheck(
        f"the ledger (head {current}, {total} rows) does not contain the head you "
        f"expected ({wanted}): rows were cut from the end or the ledger was rolled back to "
        "an earlier copy, or this is another ledger"
    )


class _SharedStrings:
    """A JSON reader that keeps one copy of each string a chain's entries hold, however
    many rows repeat it.

    Why: :func:`json.loads` makes new string objects for every row, and a row's
    participants are one identity hash each (64 hex digits), the same branches round
    after round, beside the same keys: at about 9 KB a row, the entries of 10^4 rows
    held 180 MB, most of it the same few hundred strings over and over (24 MB shared).
    The entries are equal, and so are their canonical bytes, with one object per
    distinct string."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def parse(self, text: str) -> Any:
        """``json.loads(text)``, equal value, its strings shared with earlier rows'."""
        return json.loads(text, object_pairs_hook=self._object)

    def _one(self, value: Any) -> Any:
        return self._seen.setdefault(value, value) if isinstance(value, str) else value

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # a list's strings are shared here, one level down (the identity hashes); dict
        # values are this hook's own output already. Last duplicate key wins, as in dict()
        one = self._one
        return {
            one(key): [one(item) for item in value] if isinstance(value, list) else one(value)
            for key, value in pairs
        }


def _stored_hex(text: object) -> bool:
    """Whether a signature column holds exactly what the writer stores: lower-case hex,
    nothing around it. ``bytes.fromhex`` also reads upper case and whitespace, so a
    rewritten column would still verify and "verified" would not mean "unchanged";
    hashes are compared as strings already, signatures now are held to the same."""
    if not isinstance(text, str):
        return False
    try:
        return bytes.fromhex(text).hex() == text
    except ValueError:
        return False


#: what :func:`_read_tables` returns: the query it was given returns it
_Read = TypeVar("_Read")


def _wal_of(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _where_sqlite_opens(path: Path) -> Path:
    """The file SQLite opens for the ledger named ``path``: every symbolic link on the
    way resolved. Its ``-wal``, ``-shm`` and ``-journal`` are beside that file.

    Why: SQLite resolves a link to a database and keeps the side files beside its target,
    and the reads here looked for them beside the link: a running server's honest ledger
    verified through a link to it (``ln -s /srv/fed/state.sqlite.ledger audit/ledger``)
    was read as a file in WAL mode without its log, ``FAILED``, exit 1
    (tests/ledger/test_ledger_through_a_link.py)."""
    return Path(os.path.realpath(path))


def log_named(path: str | Path) -> str:
    """How a message names the write-ahead log SQLite reads for the ledger named
    ``path``: ``<name>-wal`` when it is beside ``path`` under its name (links to folders
    on the way change nothing), else the full path beside the link's target.

    Why: a ledger named through a link to its file is read with the log beside the
    target (:func:`_where_sqlite_opens`), and the audit told the auditor to "copy
    <link's name>-wal with it": a log copied beside the link, as told, is never read,
    and the same failure came back (tests/ledger/test_link_remedy_names.py)."""
    given = Path(path)  # not normalized: "dl/.." is the parent of the folder dl leads to
    opened = _where_sqlite_opens(given)
    if opened == _where_sqlite_opens(given.parent) / given.name:
        return f"{given.name}-wal"
    return str(_wal_of(opened))


#: the byte of ``<ledger>-shm`` on which every connection open on a WAL-mode database
#: holds a shared lock for as long as it is open: the "DMS" slot of SQLite's unix VFS
#: (https://www.sqlite.org/walformat.html, "the shm locks"; byte 128, after the 8 WAL locks
#: at 120-127)
_SHM_DMS_BYTE = 128


#: the writers (:class:`Ledger`) open in this process: their logs are live, whatever a
#: lock query says (:func:`_log_index_held`)
_OPEN_WRITERS: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _written_here(path: Path) -> bool:
    """Whether a :class:`Ledger` of this process has the file at ``path`` open.

    Why asked: SQLite's locks are POSIX locks, and a process that opens and closes a
    file it holds locks on loses them all. The lock-free read's checks open the ledger
    and its ``-shm`` (:func:`special_file_kind`, :func:`_file_state`), so a server
    checking its own chain (its start, a failed append) dropped its writer's shared
    lock on the file and on the log index: another process could then take the file
    for its own (a last connection's close folds the log in and deletes it under the
    writer), what SQLite names a way to corrupt a database. Such a read goes through
    SQLite alone (:func:`_read_consistently`)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return any(
        (w._identity.device, w._identity.inode) == (info.st_dev, info.st_ino)
        for w in list(_OPEN_WRITERS)
    )


def _log_index_held(path: Path) -> bool:
    """Whether some connection holds the WAL-mode ledger at ``path`` open: a lock on its
    ``-shm``'s DMS byte (:data:`_SHM_DMS_BYTE`), asked without taking one. False when
    there is no ``-shm`` (no connection in WAL mode is open without one) and when it
    cannot be asked (the file unreadable; a system without open-file-description locks):
    the audit then says the empty log vouches for nothing (a note), the safe side.

    Why an open-file-description query (``F_OFD_GETLK``) and not ``F_GETLK``: SQLite's
    locks are process-wide POSIX locks, which ``F_GETLK`` does not report to the process
    that holds them, so another connection in the auditor's own process would not be
    seen; an OFD query sees every lock but its own descriptor's. A :class:`Ledger` of
    this process counts as held without a query (:func:`_written_here`)."""
    if _written_here(path):
        return True
    ofd_query = getattr(fcntl, "F_OFD_GETLK", None)
    if ofd_query is None:  # not Linux: cannot tell without the platform's flock layout
        return False
    try:
        fd = os.open(_shm_of(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        # struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid
        asked = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, ofd_query, asked)
    except OSError:
        return False
    finally:
        os.close(fd)
    return struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK


def _shm_of(path: Path) -> Path:
    return path.with_name(path.name + "-shm")


def empty_log_unheld(path: str | Path) -> bool:
    """Whether the ledger file at ``path`` is in WAL mode with an empty ``<path>-wal``
    beside it that no open connection holds (:func:`_log_index_held`): a log that
    vouches for nothing (:attr:`ChainReport.empty_log`).

    Why: such a file is read with its log, so it was never "read without its log", yet
    an empty log says nothing about the main file beside it: a main file copied alone
    while its writer's log held rows, then opened by any program (Python's ``sqlite3``
    read-only, the ``sqlite3`` shell, an older ``secagg audit``), which leaves an empty
    ``-wal`` and a ``-shm``, verified two rounds short with no word
    (tests/ledger/test_verify_empty_log.py). Nothing in the files tells it from an
    honest one: a server killed after folding its log in, read in place, or a copy of a
    running server's file and log (its log is empty after each fold), both whole. A live
    writer's empty log (held open) is current: every row it committed is in the file."""
    path = _where_sqlite_opens(Path(path))
    if _written_here(path):  # asked first: nothing of this process's writer is opened
        return False
    try:
        with opened_regular_file(path, "a ledger") as fd:
            header = read_at_most(fd, _WAL_VERSION_BYTES.stop)
        if os.stat(_wal_of(path)).st_size != 0:
            return False
    except (OSError, NotARegularFile):
        return False
    if header[: len(_SQLITE_MAGIC)] != _SQLITE_MAGIC or header[_WAL_VERSION_BYTES] != b"\x02\x02":
        return False
    return not _log_index_held(path)


def wal_mode_without_log(path: str | Path) -> bool:
    """Whether the ledger file at ``path`` is in WAL mode (its header's file format read
    and write versions both 2) with no ``<path>-wal`` beside it: read so, it may lack
    rows that only its log holds.

    Why it says "may": :meth:`Ledger.close` leaves the file in rollback-journal mode, so
    a file in WAL mode is one whose writer was running or was killed when it was copied,
    or, read in place, one whose writer was killed while leaving WAL mode, one another
    program held open read-write when the writer closed (that program's close deletes the
    log), or one closed by a secagg before 2026-12-07, which left it in WAL mode. Its
    log is where an append's row sits until the writer folds it in: a reader's open
    snapshot holds the fold back, and a kill between the commit and the fold leaves the
    row in the log until the next start. Nothing in the main file tells whether its log
    held a row. False for a file whose header cannot be read (the read that follows
    fails for it)."""
    path = _where_sqlite_opens(Path(path))
    try:
        with opened_regular_file(path, "a ledger") as fd:
            header = read_at_most(fd, _WAL_VERSION_BYTES.stop)
    except (OSError, NotARegularFile):
        return False
    if header[: len(_SQLITE_MAGIC)] != _SQLITE_MAGIC:
        return False
    return header[_WAL_VERSION_BYTES] == b"\x02\x02" and not _wal_of(path).exists()


def read_without_writing(path: str | Path, query: Callable[[sqlite3.Connection], _Read]) -> _Read:
    """``query`` run on the ledger file at ``path`` in one read transaction, without
    writing to it or beside it (:func:`_read_tables`).

    Why a reader other than the audit needs it: a read-write connection that is the
    last to close a WAL-mode file folds its ``-wal`` in and deletes it, leaving the file
    whole but in WAL mode with no log, which ``audit verify`` cannot tell from a copy
    taken without its log (:func:`wal_mode_without_log`). The server's start counted
    the rows of a killed server's ledger so, and a start refused before the writer
    opened it left an honest ledger that failed in place."""
    return _read_tables(Path(path), query)


def _read_tables(path: Path, query: Callable[[sqlite3.Connection], _Read]) -> _Read:
    """The public key, the rows and the signed head, read without writing anywhere
    (:func:`_read_consistently`, whose result this is)."""
    return _read_consistently(path, query)[0]


def _read_consistently(
    path: Path, query: Callable[[sqlite3.Connection], _Read]
) -> tuple[_Read, bool]:
    """``query`` on one consistent state of the ledger at ``path``, read without writing
    anywhere, and whether that state was a file in WAL mode read without its log
    (:func:`wal_mode_without_log`: it may lack rows only the log held).

    Why not a plain read-only connection: on a WAL database SQLite creates ``-wal``
    and ``-shm`` files beside it, so an audit left files in the evidence folder and
    failed outright ("unable to open database file") on write-protected media, the
    way auditors are told to keep copies. So:

    * a ``-wal`` beside the file (a running writer, or a crash before the log was
      folded in): read through SQLite's locking, so the log's rows count and a writer
      appending meanwhile leaves the read its snapshot; where the folder cannot be
      written, from a private copy of the file and its log;
    * no ``-wal`` (a ledger its writer closed, in rollback-journal mode; a copy; a
      writer killed): read as an immutable file, nothing created, no lock taken, so
      the read never holds back a writer.

    Why a lock-free read is checked: a server restarted on a closed ledger switches it
    to WAL mode and appends (the row folded into the file at once) while the read goes
    on; an audit read the head before the append and the rows after it, and an honest
    ledger read ``FAILED`` (the head says 1 row, the file has 2). A lock-free read (an
    immutable file, a private copy) now counts only if the file, its log and its
    journal are the same after it as before it (:func:`_file_state`: a writer's switch
    to WAL mode rewrites the header and creates the log, and its later writes reach the
    file only while the log is there); one that changed under it is read again
    (:data:`_UNSTABLE_READS` times), and the next read of a writer that started goes
    through its log and locks (tests/ledger/test_ledger_concurrent_reader.py)."""
    given, path = path, _where_sqlite_opens(path)
    if _written_here(path):
        # a writer of this process holds the file: read through SQLite alone, which
        # shares that writer's locks, never by an open of our own (its close would drop
        # them: tests/ledger/test_read_beside_own_writer.py); SQLite's locks make it one
        # consistent state, and the writer checked the side files when it opened
        return _closing(_connect_read_only(path, immutable=False), query), False
    _refuse_special_side_files(path)
    for _attempt in range(_UNSTABLE_READS):
        before = _file_state(path)
        if _wal_of(path).exists():
            try:
                return _closing(_connect_read_only(path, immutable=False), query), False
            except sqlite3.OperationalError:
                if os.access(path.parent, os.W_OK):
                    raise
            read = _stable_read(path, before, lambda: _read_a_copy(path, query))
            if read is not None:
                return read[0], False
            continue
        read = _stable_read(
            path, before, lambda: _closing(_connect_read_only(path, immutable=True), query)
        )
        if read is not None:
            header = before[1]
            assert isinstance(header, bytes)
            in_wal_mode = header[_WAL_VERSION_BYTES] == b"\x02\x02"
            return read[0], in_wal_mode and header.startswith(_SQLITE_MAGIC)
    raise LedgerKeptChanging(
        f"could not get a stable read of {given}: the ledger kept changing, during each of "
        f"{_UNSTABLE_READS} reads of it (a server appending as it was read); nothing was "
        "judged: read it again (between two rounds, or with the server stopped)"
    )


#: the files SQLite keeps beside a database, and what each holds
_SIDE_FILES = (("-wal", "write-ahead log"), ("-shm", "log index"), ("-journal", "rollback journal"))


def _refuse_special_side_files(path: Path, then: str = "read the ledger again") -> None:
    """:class:`LedgerError` (one line) when a file SQLite opens beside the ledger (its
    log, the log's index, its rollback journal) is a named pipe, a device, a socket or a
    symbolic link; ``then``: what to do once it is moved away.

    Why: SQLite opens them by name, blocking: a named pipe at ``<ledger>-journal``
    beside a ledger with a ``-wal`` hung ``secagg audit verify`` (and the server's
    start, which reads the ledger the same way) forever, waiting for a writer that never
    comes, and hung the writer's own open (:class:`Ledger`) of a ledger its last writer
    closed (tests/ledger/test_ledger_concurrent_reader.py). No ledger's writer makes one.

    Nor a symbolic link: SQLite creates these files itself, and deletes and makes them
    again, never as links. A link is refused before anything is read through it: a
    forged ledger shipped with ``<ledger>-shm`` linked to ``/proc/self/io`` (whose bytes
    change at every read) made each lock-free read look like one a writer changed, and
    ``audit verify`` said ``NOT READ`` (exit 5, "read it again") where the forgery
    fails (exit 1; tests/ledger/test_side_file_links.py)."""
    for suffix, holds in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.is_symlink():
            raise LedgerError(
                f"{side} is a symbolic link, where SQLite keeps the "
                f"ledger's {holds}: no writer of a ledger makes one; put the file itself "
                f"there, or move the link away, and {then}"
            )
        kind = special_file_kind(side)
        if kind is not None:
            raise LedgerError(
                f"{side} is {kind}, where SQLite keeps the ledger's {holds}: no writer of a "
                f"ledger makes one; move it away and {then}"
            )


def _stable_read(
    path: Path, before: tuple[object, ...], read: Callable[[], _Read]
) -> tuple[_Read] | None:
    """``(read(),)`` when the ledger's files are in ``before``'s state after it; None when
    they changed under it (its result, or its failure, may mix two states of the file)."""
    try:
        result = read()
    except Exception:
        if _file_state(path) != before:
            return None
        raise
    return (result,) if _file_state(path) == before else None


def _read_a_copy(path: Path, query: Callable[[sqlite3.Connection], _Read]) -> _Read:
    """``query`` on a private copy of the ledger and its log (a folder the reader cannot
    write, where SQLite cannot open the log through its locks)."""
    with tempfile.TemporaryDirectory(prefix="secagg-ledger-") as scratch:
        copy = Path(scratch) / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(_wal_of(path), _wal_of(copy))
        return _closing(_connect_read_only(copy, immutable=False), query)


#: the two copies of SQLite's WAL-index header at the start of ``<ledger>-shm``
_WAL_INDEX_HEADER_BYTES = 96


def _file_state(path: Path) -> tuple[object, ...]:
    """What a writer changes in the ledger's files: the main file's identity, size, time
    of change and first 100 bytes (SQLite's header: its journal mode, and a change
    counter every rollback-journal commit raises), the same of its ``-wal`` and
    ``-journal`` (absent or there), and the header of its ``-shm``. Equal before and
    after a lock-free read: no writer changed the file during it."""

    def stat(file: Path) -> tuple[int, int, int, int] | None:
        try:
            info = os.stat(file)
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def first_bytes(file: Path, count: int, what: str) -> bytes:
        try:
            with opened_regular_file(file, what) as fd:
                return read_at_most(fd, count).ljust(count, b"\x00")
        except (OSError, NotARegularFile):
            return b""

    header = first_bytes(path, 100, "a ledger").ljust(100, b"\x00")
    journal = path.with_name(path.name + "-journal")
    # the log index's header (both copies): every WAL commit raises its change counter and
    # every truncating checkpoint its checkpoint count and salt. Why: a WAL append and its
    # checkpoint leave the file's size and header as they were, and on a filesystem whose
    # times did not move in between (one tick) a copy of the file torn by them read as an
    # honest ledger whose rows were cut without the key (_read_a_copy)
    index = first_bytes(path.with_name(path.name + "-shm"), _WAL_INDEX_HEADER_BYTES, "a log index")
    return (stat(path), header, stat(_wal_of(path)), stat(journal), index)


def _closing(db: sqlite3.Connection, query: Callable[[sqlite3.Connection], _Read]) -> _Read:
    """``query(db)`` inside one read transaction, then ``db`` closed whatever happened.

    Why one transaction: the key, the signed head and the rows are three statements; in
    autocommit each took its own snapshot, so a writer appending between them made an
    honest live ledger read as one whose head does not match its rows."""
    try:
        db.execute("BEGIN")
        return query(db)
    finally:
        db.close()


def _connect_read_only(path: Path, *, immutable: bool) -> sqlite3.Connection:
    # a file: URI, percent-encoded, so a path holding '?', '#' or '%' names the file
    uri = path.absolute().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    return sqlite3.connect(uri, uri=True)


def _table_names(db: sqlite3.Connection) -> frozenset[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return frozenset(str(row[0]) for row in rows)


def not_a_ledger(path: Path) -> str | None:
    """Why the file at ``path``, which could not be read as a ledger, is no ledger at all
    (one line, pointing to ``<path>.ledger`` where that exists), or None: it may be a
    damaged ledger (some of the ledger's tables, or a database SQLite cannot read).

    Only a file positively shown to be something else is called so: one that does not
    begin as an SQLite database does, an empty one, or a database whose tables are
    readable and none of them a ledger's (the server's state database named). Public
    for the server's start (:mod:`secagg.runtime.launch`), whose own open of the
    ledger failed: it asks this rather than reading the whole chain again."""
    try:
        # one non-blocking open: a file swapped for a named pipe blocked open() forever
        with opened_regular_file(path, "a ledger") as fd:
            header = read_at_most(fd, _WAL_VERSION_BYTES.stop)
    except NotARegularFile as exc:
        return str(exc)  # a named pipe, a device: positively no ledger
    except OSError:
        return None  # unreadable: the read that failed says why
    magic = header[: len(_SQLITE_MAGIC)]
    if not magic:
        what = "an empty file"
    elif magic != _SQLITE_MAGIC:
        what = "not an SQLite database at all"
    else:
        try:
            tables = _read_tables(path, _table_names)
        except sqlite3.Error:
            return None  # a database SQLite cannot read: a damaged ledger fails as such
        if tables & LEDGER_TABLES:
            return None  # part of a ledger: damaged, not the wrong file
        if _SERVER_STATE_TABLES <= tables:
            what = "the secagg server's state database (its rounds and checkpoints)"
        elif tables:
            listed = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
            what = f"an SQLite database without the ledger's tables (tables {listed})"
        elif header[_WAL_VERSION_BYTES] == b"\x02\x02":
            # a ledger's open sets WAL before anything else, and its tables, key and head
            # are one transaction: a process killed while creating a ledger leaves this
            what = (
                "an SQLite database without tables (in WAL mode: what a process killed "
                "while creating a ledger leaves; no round was ever recorded in it)"
            )
        else:
            what = "an SQLite database without tables"
    beside = Path(str(path) + ".ledger")
    hint = f"; its ledger is {beside}: audit that" if beside.is_file() else ""
    return f"{path} is not a privacy ledger: it is {what}{hint}"


def unwritten_ledger_tables(db: sqlite3.Connection) -> list[str] | None:
    """The tables of ``db``, sorted, when every one of them is a ledger's table
    (:data:`LEDGER_TABLES`) and holds no row: a ledger whose creation never committed a
    row (``[]``: no table at all); None when a table holds a row or is no ledger's.
    Raises :class:`sqlite3.Error` for a database SQLite cannot read. ``db`` is left open:
    it is the caller's.

    Why one function: the audit (:func:`read_chain`, naming a half-created ledger) and
    the server's start (:mod:`secagg.runtime.launch`, taking a ledger whose first open
    was cut short as no ledger yet) each held a copy of this check and of the ledger's
    table names, kept equal by a test; each now reads the answer its own way."""
    tables = {
        str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if not tables <= LEDGER_TABLES:
        return None
    if any(db.execute(_ROW_IN_TABLE[table]).fetchone() for table in tables):
        return None
    return sorted(tables)


def _half_created(path: Path, tables: Sequence[str]) -> LedgerError:
    """The one-line failure of a ledger whose creation did not finish.

    Why: an older version created the ledger's tables one commit at a time and stored its
    key afterwards, so a process killed then left some tables, or all of them without a
    key; the audit read "no such table: ledger" or "the ledger holds no valid public
    key", which points at a damaged or forged ledger. Such a file holds nothing to
    verify: a failure still (exit 1), saying what it is."""
    return LedgerError(
        f"{path} is a ledger whose creation did not finish (tables {', '.join(tables)}, all "
        "empty): it holds no public key, no round and no signed head, so nothing in it can "
        "be verified (a process killed while creating the ledger leaves this)"
    )


#: a stored row as the chain check reads it: seq, entry, prev_hash, hash, signature
_StoredRow = tuple[Any, Any, Any, Any, Any]


def read_chain(
    path: str | Path,
    public_key: bytes | None = None,
    *,
    after: tuple[int, str] | None = None,
    prior: bool = False,
    shared: Sequence[ChainRow] = (),
) -> ChainReport:
    """Check links, hashes, signatures and the signed head; stop at the first failure.

    The chain must begin at its genesis: row 1 links to the genesis hash. ``after``: the
    head ``(seq, hash)`` of a prior ledger the auditor holds and verified (an archive of
    this ledger's first rows): a file whose first row is not row 1 must then continue
    exactly from it (its first row is ``seq + 1``, linked to ``hash``). A ledger begun
    afresh at its genesis is read as such with or without ``after``.

    Why the default refuses a tail: a ledger cut from the front (without the key) keeps
    its later rows' numbers and links, and read as "sequence out of order" with no hint
    that rows were cut from the front, nor how an honest pruned ledger is checked.

    ``prior``: this file is itself a ``--prior-ledger``, which must begin at its genesis
    (priors do not chain): a tail then says so, not "pass the archive with
    --prior-ledger", which the auditor just did.

    ``shared``: the prior ledger's verified rows (with ``after``). An archive copied
    after the live file was pruned to a later row holds rows this file holds too; each
    such row here is checked like any other (link, hash, signature) and must also be
    the archive's row byte for byte (same hash, which covers its number, link and
    entry, and the same stored signature). It is then the archive's row, read once:
    it is left out of the rows returned. A row that differs in any way is refused.

    The rows are read from a cursor, one at a time, and checked as they come: the file's
    text of every row was fetched at once before, about 9 KB a row (a branch's identity
    hash per participant), 90 MB at 10^4 rows beside the entries kept
    (benchmarks/bench_ledger_memory.py). Strings that repeat across rows (the identity
    hashes, keys, labels) are kept once (:class:`_SharedStrings`). After a failure the
    rest of the rows are still read (and dropped): a page SQLite cannot read anywhere in
    the table fails the read as it did when every row was fetched first."""
    path = Path(path)
    if not path.exists():
        raise ConfigurationError(f"no ledger at {path}")
    # SQLite's read-only open of a named pipe blocked forever, waiting for a writer; it
    # opens by name, so this check just before it is the most that can be done: a file
    # swapped for a named pipe in the microseconds between them still blocks it. Not
    # for the file a writer of this process holds (a regular file it opened): the
    # check's open and close of it would drop that writer's locks
    if not _written_here(path):
        refuse_special_file(path, "a ledger")
    try:
        report, without_log = _read_consistently(
            path, lambda db: _check_chain(db, path, public_key, after, prior, shared)
        )
        if without_log:
            return replace(report, without_log=True)
        # asked after the read: a note, not a verdict, so a writer starting in between
        # at worst adds or drops the note
        return replace(report, empty_log=True) if empty_log_unheld(path) else report
    except sqlite3.DatabaseError as exc:
        wrong_file = not_a_ledger(path)
        if wrong_file is not None:
            raise NotALedger(wrong_file) from None
        try:
            empty_tables = _read_tables(path, unwritten_ledger_tables)
        except sqlite3.Error:
            empty_tables = None
        if empty_tables:
            raise _half_created(path, empty_tables) from None
        raise LedgerError(f"{path} is not a readable ledger: {exc}") from None


def _check_chain(
    db: sqlite3.Connection,
    path: Path,
    public_key: bytes | None,
    after: tuple[int, str] | None,
    prior: bool,
    shared: Sequence[ChainRow],
) -> ChainReport:
    """:func:`read_chain`'s check of the open ledger ``db`` (``path``: the file named)."""
    meta = db.execute("SELECT value FROM ledger_meta WHERE key = 'public_key'").fetchone()
    head = db.execute("SELECT seq, hash, signature FROM ledger_head").fetchall()
    cursor = db.execute("SELECT seq, entry, prev_hash, hash, signature FROM ledger ORDER BY rowid")
    first: _StoredRow | None = cursor.fetchone()
    if meta is None and first is None and not head:  # every table, none of them written
        raise _half_created(path, sorted(LEDGER_TABLES))
    rows: Iterator[_StoredRow] = itertools.chain([first], cursor) if first else iter(())
    strings = _SharedStrings()
    embedded = bytes.fromhex(meta[0]) if meta else b""
    key_source = "given" if public_key is not None else "embedded"
    key = public_key if public_key is not None else embedded

    offset = 0  # rows of the chain in the prior ledger (``after``), not in this file

    def fail(message: str, good: list[ChainRow]) -> ChainReport:
        for _unchecked in cursor:  # read to the end: an unreadable page fails as before
            pass
        return ChainReport(good, key, None, message, key_source, offset)

    if len(key) != 32:
        return fail("the ledger holds no valid public key", [])
    if public_key is not None and embedded != public_key:
        return fail("the ledger names another public key than the auditor's", [])
    try:
        verify = VerifyKey(key)
    except SignatureError as exc:  # a small-order key verifies forged rows: nothing to check
        return fail(f"the ledger's public key is unusable: {exc}", [])
    good: list[ChainRow] = []
    prev = genesis_hash(key)
    first_seq = first[0] if first else None
    continues = after is not None and (
        first_seq != 1 if first else bool(head) and int(head[0][0]) == after[0]
    )
    if continues and after is not None:
        offset, prev = after
    # an overlapping archive: this file begins at row ``start`` <= offset, inside it
    kept = {row.seq: row for row in shared} if continues else {}
    start = offset
    if isinstance(first_seq, int) and first_seq - 1 in kept and first_seq <= offset:
        start, prev = first_seq - 1, kept[first_seq - 1].hash

    read = 0  # rows of this file read so far
    for index, (seq, entry_text, prev_hash, digest, signature) in enumerate(rows, start=start + 1):
        read += 1
        where = f"row {index} (seq {seq})"
        if index == offset + 1 and seq != index and after is None:
            hint = (
                "a prior ledger must itself begin at its genesis: one --prior-ledger holds "
                "every round before the ledger verified"
                if prior
                else "pass the archive with --prior-ledger"
            )
            return fail(
                f"{where}: the ledger does not begin at its genesis: its first row is row "
                f"{seq}, linked to rows not in this file (rows deleted from the front, or the "
                f"tail of a ledger whose first rows were archived: {hint})",
                good,
            )
        if index == offset + 1 and isinstance(seq, int) and seq < index:
            # an archive kept after the live file was pruned to a later row: both hold
            # rows seq..offset (it read "rows between them are in neither")
            return fail(
                f"{where}: overlaps the prior ledger: rows {seq}-{offset} are in both (the "
                f"prior ledger ends at row {offset}, this file begins at row {seq}): pass "
                f"an archive of rows 1-{seq - 1}, the rows this file no longer holds",
                good,
            )
        if index == offset + 1 and seq != index:
            return fail(
                f"{where}: does not continue the prior ledger, whose head is row {offset}: "
                f"this file begins at row {seq} (rows between them are in neither)",
                good,
            )
        if seq != index:
            return fail(
                f"{where}: sequence number out of order: deleted, inserted or reordered rows", good
            )
        if index == start + 1 and start < offset and not hmac.compare_digest(str(prev_hash), prev):
            return fail(
                f"{where}: is in the prior ledger too (it holds rows to {offset}) but does "
                f"not link to its row {start}: not the same chain",
                good,
            )
        if index == offset + 1 and not hmac.compare_digest(str(prev_hash), prev):
            return fail(
                f"{where}: does not link to "
                + (
                    f"the prior ledger's head (row {offset}): not the continuation of that "
                    "ledger (another ledger's tail, or rewritten)"
                    if offset
                    else "the ledger's genesis: rows deleted from its front (the rest "
                    "renumbered), inserted or reordered there, or this is another ledger"
                ),
                good,
            )
        if not hmac.compare_digest(str(prev_hash), prev):
            return fail(
                f"{where}: does not link to the row before it: deleted, inserted or reordered rows",
                good,
            )
        try:
            entry = strings.parse(entry_text)
            body = canonical(entry)
        except (ValueError, LedgerError):
            return fail(f"{where}: the entry is not canonical JSON: edited", good)
        except RecursionError:
            # JSON nested past the interpreter's recursion limit: ``audit report`` ended
            # in a traceback and ``verify`` named no row (hostile-ledger audit, 2026-12-05)
            return fail(
                f"{where}: the entry is nested too deeply to be read (no writer nests "
                "its rows so): edited or forged",
                good,
            )
        if body != str(entry_text).encode() or not hmac.compare_digest(
            row_hash(seq, prev_hash, body), str(digest)
        ):
            return fail(f"{where}: its hash does not match its contents: edited", good)
        if not _stored_hex(signature):
            return fail(
                f"{where}: its signature is not stored as the writer stores it: edited", good
            )
        try:
            verify.verify(bytes.fromhex(signature), bytes.fromhex(digest))
        except (SecAggError, ValueError):
            return fail(
                f"{where}: the signature does not verify: signed by another key or forged", good
            )
        if index <= offset:
            archived = kept.get(index)
            if archived is None or not (
                hmac.compare_digest(archived.hash, str(digest))
                and hmac.compare_digest(archived.signature, str(signature))
            ):
                return fail(
                    f"{where}: is in the prior ledger too (it holds rows to {offset}) but "
                    "differs from the prior ledger's row "
                    f"{index}: a row both files hold must be the same, byte for byte "
                    "(rewritten and re-signed in one of them)",
                    good,
                )
            prev = digest  # the archive's row: replayed from there, not twice
            continue
        good.append(ChainRow(seq, entry, str(digest), str(signature)))
        prev = digest
    if len(head) != 1 and not read:
        # an empty ledger is born with a signed genesis head: this one predates them
        # (a server stopped before round 1 by an older version) or was emptied
        return fail(
            "the ledger has no rows and no signed head: written by a version before "
            "signed genesis heads, or emptied; nothing in it can be verified",
            good,
        )
    if len(head) != 1:
        return fail("the signed head is missing: the ledger was truncated or rebuilt", good)
    head_seq, head_hash, head_signature = head[0]
    if not _stored_hex(head_signature):
        return fail("the head's signature is not stored as the writer stores it: edited", good)
    try:
        verify.verify(bytes.fromhex(head_signature), head_message(int(head_seq), head_hash))
    except (SecAggError, ValueError):
        return fail("the head's signature does not verify", good)
    # with no rows, ``prev`` is the genesis hash: the head must be the genesis head
    # (the tail of an archived chain: the head counts the archived rows too)
    if int(head_seq) != start + read or not hmac.compare_digest(str(head_hash), prev):
        return fail(
            f"the signed head says {head_seq} rows ending in {head_hash[:16]}…, the "
            f"file has {start + read}: rows were truncated or appended without the key",
            good,
        )
    return ChainReport(good, key, head_hash, None, key_source, offset, offset - start)
