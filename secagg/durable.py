"""Atomic, durable writes of the small files whose loss or tearing would cost a
guarantee: keys, a key holder's decryption record and opened round, a branch's
last-round mark, a development CA's certificates and revocations.

Why one helper, at the bottom of the layers (only :mod:`secagg.errors` is below it):
the key holder's record (``<key>.state``, what keeps a round from being decrypted
twice), the round it last opened (``<state>.opened``) and a branch's mark (``--state``,
what keeps a replayed round number refused across restarts) must each be the old file or
the new one after a crash or a power cut, never half of either, and never readable by
anyone but their owner; a key rewritten in place kept the mode of the file it replaced
(a 0644 file stayed 0644) and a crash mid-write lost the key. Four modules wrote
their own variants (one without the folder's fsync, one not atomic at all); this module
is the one writer they share.

How: the bytes go to a temporary file in the *same* folder (a rename is atomic only
within one file system), created 0600 by :func:`tempfile.mkstemp` whatever the umask and
then given ``mode``; the file is fsynced, renamed over ``path`` (:func:`os.replace`), and
the folder fsynced, so the rename itself survives a power cut. A write that fails at any
step removes its temporary file and leaves ``path`` as it was.

A write *killed* mid-way (SIGKILL, a power cut) cannot remove its temporary file: it
stays beside the target as ``.NAME.XXXXXXXX.tmp`` (0600, never read). The next write of
the same target removes such leftovers (:func:`remove_stale_temporaries`), and only
those nobody is writing: each writer holds an exclusive :func:`fcntl.flock` on its own
temporary file from just after creating it until it is renamed into place or removed,
and the kernel drops that lock when its process dies, however it dies. So a leftover is
a file of the writer's own name pattern for that target that can be locked; one that
cannot be locked is another process's write in flight and is left alone (removing it
would make that write fail: its rename would find no file). One gap is closed by age:
between creating the file and locking it, a writer holds no lock for a few
microseconds, so a file younger than :data:`STALE_AFTER_SECONDS` is never removed.
Why not under the target's own lock (``<state>.lock``): not every target has one (keys,
certificates, ``<state>.opened``), and the key holder writes its record while holding
that lock, so taking it again here would wait on itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from secagg.errors import ConfigurationError, FileTooLarge, NotARegularFile

__all__ = [
    "SECRET_FILE_MODE",
    "STALE_AFTER_SECONDS",
    "LockTimeout",
    "create_json_atomically",
    "exclusive_lock",
    "file_kind",
    "opened_regular_file",
    "read_at_most",
    "read_regular_file",
    "refuse_special_file",
    "remove_stale_temporaries",
    "size_words",
    "special_file_kind",
    "write_atomically",
    "write_json_atomically",
]

log = logging.getLogger("secagg.durable")

#: owner read and write only: the mode of every file that holds a secret or a key
#: holder's state (a record others could read tells them which rounds were decrypted)
SECRET_FILE_MODE = 0o600
#: a temporary file younger than this is never removed as stale: its writer may not
#: have locked it yet (the microseconds between creating and locking it)
STALE_AFTER_SECONDS = 60.0
#: the random part :func:`tempfile.mkstemp` puts between the prefix and the suffix
_TEMPORARY_PART = r"[a-z0-9_]{8}"


def _temporary_name(target: str) -> re.Pattern[str]:
    """The names :func:`write_atomically` gives its temporary files for ``target``:
    ``.<target>.`` + mkstemp's 8 random characters + ``.tmp``, and nothing else (not
    another target's, whose name would have to fit in those 8 characters)."""
    return re.compile(rf"\.{re.escape(target)}\.{_TEMPORARY_PART}\.tmp")


def remove_stale_temporaries(path: Path, *, older_than: float | None = None) -> list[Path]:
    """Remove the temporary files that writes of ``path`` killed mid-way left beside it;
    the paths removed.

    Only a regular file of this user whose name is :func:`write_atomically`'s pattern for
    ``path``, older than ``older_than`` seconds (default :data:`STALE_AFTER_SECONDS`),
    and that can be locked: its writer is gone (see the module's text). A file that
    cannot be locked (a write in flight, or a file system without locks), a symbolic
    link, a folder, another user's file or any other name is left as it is. Never
    raises: a leftover that cannot be removed costs disk space, never a write.
    """
    folder = path.parent
    grace = STALE_AFTER_SECONDS if older_than is None else older_than
    pattern = _temporary_name(path.name)
    try:
        names = [name for name in os.listdir(folder) if pattern.fullmatch(name)]
    except OSError:
        return []
    removed = []
    for name in names:
        candidate = folder / name
        with contextlib.suppress(OSError):
            if _remove_if_abandoned(candidate, grace):
                removed.append(candidate)
                log.info("removed %s, left by a write of %s killed mid-way", candidate, path)
    return removed


def _remove_if_abandoned(candidate: Path, grace: float) -> bool:
    """Remove ``candidate`` if no live writer holds it (its lock) and it is old enough."""
    seen = os.lstat(candidate)
    if not stat.S_ISREG(seen.st_mode) or seen.st_uid != os.getuid():
        return False  # a link, a folder, another user's file: not one this writer made
    if time.time() - seen.st_mtime < grace:
        return False  # its writer may be between creating and locking it
    fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a write in flight holds it (or this file system has no locks)
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
            return False  # replaced between the look and the open
        os.unlink(candidate)
        return True
    finally:
        os.close(fd)  # and its lock


def write_atomically(
    path: Path, data: bytes, *, mode: int = SECRET_FILE_MODE, make_folder: bool = True
) -> None:
    """Replace ``path`` with ``data``, atomically and durably (see the module's text).

    ``mode`` is the file's permission bits (default 0600, for secrets and state). The
    folder is created (0700) if missing, unless ``make_folder`` is false: a path an
    operator typed (``secagg client --state``) whose folder does not exist is more likely
    a typo than a wish, and then fails as :class:`FileNotFoundError`. Raises the
    :class:`OSError` of the step that failed, after removing the temporary file;
    ``path`` then holds what it held before."""
    folder = path.parent
    if make_folder:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_stale_temporaries(path)  # what writes killed mid-way left (never raises)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # 0600
    try:
        # held until the rename: a file that can be locked is a dead writer's
        with contextlib.suppress(OSError):  # no locks on this file system: age alone
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.fchmod(fd, mode)
        with open(fd, "wb", closefd=False) as out:
            out.write(data)
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)  # after the rename: the lock covered the temporary file's whole life
    _fsync_folder(folder)


def write_json_atomically(
    path: Path, data: Mapping[str, Any], *, mode: int = SECRET_FILE_MODE, make_folder: bool = True
) -> None:
    """``data`` as compact JSON at ``path`` through :func:`write_atomically`.

    The JSON is built before any file is touched, so data it cannot encode (a
    :class:`TypeError` or :class:`ValueError`) leaves no temporary file and ``path`` as
    it was."""
    encoded = json.dumps(data, separators=(",", ":")).encode("utf-8")
    write_atomically(path, encoded, mode=mode, make_folder=make_folder)


def create_json_atomically(
    path: Path, data: Mapping[str, Any], *, mode: int = SECRET_FILE_MODE, make_folder: bool = True
) -> bool:
    """Create ``path`` holding ``data`` as compact JSON unless a file of that name exists;
    whether this call created it. Never writes over a file, and needs no lock beside it.

    Why: a record made only where none exists (a key holder's first one) was written
    under the lock that guards its later rewrites, so the lock file existed before the
    record did, and a process killed between the two left a lock beside no record: what
    a record *removed* looks like, so the next start refused for good ("a key holder
    opened or decrypted rounds over it") a key holder that had opened nothing
    (crash-point enumeration, tests/runtime/test_crash_points_keyholder.py). Here no
    lock is needed: the name is taken in one step that fails if it exists.

    How: the bytes go to a temporary file in the folder (as :func:`write_atomically`'s,
    0600, then ``mode``), fsynced, then hard-linked to ``path`` (:func:`os.link` fails
    with :class:`FileExistsError` when the name is taken: another process created it
    first, and its file is kept), the temporary name removed and the folder fsynced. A
    crash leaves no file at ``path`` or the whole one, and at most a temporary file
    (removed by a later write of ``path``). Raises the :class:`OSError` of the step that
    failed (a file system without hard links among them), after removing the temporary
    file. The folder is created (0700) if missing, unless ``make_folder`` is false, as
    :func:`write_atomically` does."""
    encoded = json.dumps(data, separators=(",", ":")).encode("utf-8")
    folder = path.parent
    if make_folder:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # 0600
    try:
        with contextlib.suppress(OSError):  # held until removed, as write_atomically's
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.fchmod(fd, mode)
        with open(fd, "wb", closefd=False) as out:
            out.write(encoded)
        os.fsync(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        os.close(fd)
    _fsync_folder(folder)
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename or a link in ``folder`` survive a power cut (where it can be done)."""
    with contextlib.suppress(OSError):  # not every platform can open a folder
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class LockTimeout(TimeoutError):
    """:func:`exclusive_lock` waited its ``timeout`` for a lock another process holds."""


@contextlib.contextmanager
def exclusive_lock(
    path: Path, *, timeout: float = 10.0, make_folder: bool = True
) -> Iterator[None]:
    """Hold an exclusive advisory lock (:func:`fcntl.flock`) on ``path`` while the block
    runs; ``path`` is created (0600) if missing and left in place (an empty file).

    Why: a file re-read before it is written over (a key holder's record, a branch's
    mark) still let two processes over it both read the old contents, both pass the
    check and both write, in the milliseconds between the read and the rename (the
    temporary file's fsync): each then released the same round. Read, check and write
    under this lock are one step for every process that takes it. The lock is on a file
    of its own beside the one it guards (``<file>.lock``): a rename replaces the guarded
    file's inode, and a lock on the old one would guard nothing.

    The wait is bounded (``timeout`` seconds, polled): a process that holds the lock
    for longer than a read and a write is hung, and waiting for it would hang this one
    too. Raises :class:`LockTimeout` (a :class:`TimeoutError`, an :class:`OSError`) then, or the
    :class:`OSError` of opening ``path``."""
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, SECRET_FILE_MODE)
    try:
        give_up = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    raise LockTimeout(
                        f"{path} is locked by another process for over {timeout:g} s"
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases its lock


# --- reading a user-named file through one open ------------------------------------------
#
# Why here, at the bottom of the layers: every layer that reads a file a user named (the
# transport's certificates and keys, the ledger's keys, a branch's state, the key
# holder's key and record, the command line's configs) reopened the path after the command
# line had checked it, so a file swapped for a named pipe in between still blocked that
# reader's open() forever, waiting for a writer (hostile CLI review, 2026-12-06). One
# reader they all may import closes that window: the check is made on the descriptor
# that is then read, never on the path.

#: the chunk a bounded read asks for at a time
_READ_CHUNK = 1024 * 1024


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in the words of the refusal."""
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def size_words(nbytes: int) -> str:
    """``1024 KiB``, ``256 MiB``: a size bound as the refusals say it (KiB up to 1 MiB,
    the policy files' bound, as their refusal has always said it)."""
    if nbytes > 1024 * 1024 and nbytes % (1024 * 1024) == 0:
        return f"{nbytes // (1024 * 1024)} MiB"
    if nbytes >= 1024 and nbytes % 1024 == 0:
        return f"{nbytes // 1024} KiB"
    return f"{nbytes} bytes"


@contextlib.contextmanager
def opened_regular_file(path: str | os.PathLike[str], what: str) -> Iterator[int]:
    """A blocking read-only descriptor of the regular file at ``path``, closed when the
    block ends; the kind is taken from that descriptor (``fstat``), so what the block
    reads is the file that was checked, whatever is moved over the path meanwhile.

    The path is opened non-blocking (a named pipe then opens at once instead of waiting
    for a writer); a named pipe, a device or a socket is refused
    (:class:`~secagg.errors.NotARegularFile`, naming ``path`` and ``what`` it should have
    been). What ``open()`` or a read would have raised is raised as that
    :class:`OSError`, so each caller keeps its own words for a missing or unreadable
    file: :class:`FileNotFoundError`, :class:`PermissionError`, and
    :class:`IsADirectoryError` for a folder (which opens read-only, and fails only at
    its first read). ``path`` must be a str or a path: ``os.open(5)`` is a TypeError,
    said here as the caller's mistake (:class:`~secagg.errors.ConfigurationError`)."""
    if not isinstance(path, str | os.PathLike):
        raise ConfigurationError(f"{what} is given by its path, not {type(path).__name__}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, file_kind(mode), what)
        os.set_blocking(fd, True)  # a regular file: O_NONBLOCK was for the open only
        yield fd
    finally:
        os.close(fd)


def read_at_most(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes of the open descriptor ``fd``, fewer only at its end:
    ``os.read`` may return less than asked (a large read, a signal), so it is asked
    again until ``limit`` bytes or the end."""
    chunks: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, _READ_CHUNK))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_regular_file(path: str | os.PathLike[str], max_bytes: int, what: str) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes``, read through ONE
    open (:func:`opened_regular_file`: a named pipe, a device or a socket is
    :class:`~secagg.errors.NotARegularFile`; a missing, unreadable file or a folder is
    the :class:`OSError` ``open()`` gives, for the caller to word).

    At most ``max_bytes + 1`` bytes are read from the descriptor that was checked: a
    file larger than ``max_bytes`` (or one that grows past it while read) is
    :class:`~secagg.errors.FileTooLarge`, never read whole (``what`` names the file in
    the refusal: ``a key holder's key file``)."""
    with opened_regular_file(path, what) as fd:
        raw = read_at_most(fd, max_bytes + 1)
    if len(raw) > max_bytes:
        raise FileTooLarge(
            f"{path} is larger than {size_words(max_bytes)}: too large for {what} "
            "(is it the right file?)"
        )
    return raw


def special_file_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is a named pipe, a device or a socket (``a named pipe``),
    told by its status (links followed), never by opening it; None for a regular file, a
    folder, or a path whose status cannot be read (the reader that follows says why, in
    its own words).

    Why never opened: the callers are readers that open the path by name next (SQLite),
    and SQLite's locks are POSIX locks, which any close of a file drops for its whole
    process: a second ``open_server_state`` in a process whose server ran (refused at
    the state's lock) dropped the running server's locks on its ledger and its state by
    this check's open and close, the way SQLite says a database gets corrupted
    (tests/runtime/test_second_start_keeps_locks.py). A special file was still opened to
    read its kind from the descriptor: a socket cannot be opened (``ENXIO``), so one at a
    ledger's journal or at ``[server] state`` passed as "cannot be opened" though every
    refusal names sockets, and a device's open can act (a tape rewinds, a watchdog arms)
    (tests/test_socket_paths_refused.py). The answer was always of the path, not of what
    SQLite then opens."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


def refuse_special_file(path: str | os.PathLike[str], what: str) -> None:
    """Refuse ``path`` (:class:`~secagg.errors.NotARegularFile`, one line) when it is a
    named pipe, a device or a socket, without blocking (:func:`special_file_kind`).

    For a reader that must open the path itself (SQLite opens a ledger by its name):
    the most that can be done before its open. A file swapped in after this check is
    not caught here; :func:`read_regular_file` is the one-open read for callers that
    take the bytes."""
    kind = special_file_kind(path)
    if kind is not None:
        raise NotARegularFile(path, kind, what)
