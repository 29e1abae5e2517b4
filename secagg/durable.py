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
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SECRET_FILE_MODE",
    "LockTimeout",
    "exclusive_lock",
    "write_atomically",
    "write_json_atomically",
]

#: owner read and write only: the mode of every file that holds a secret or a key
#: holder's state (a record others could read tells them which rounds were decrypted)
SECRET_FILE_MODE = 0o600


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # 0600
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every platform can open a folder
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json_atomically(
    path: Path, data: Mapping[str, Any], *, mode: int = SECRET_FILE_MODE, make_folder: bool = True
) -> None:
    """``data`` as compact JSON at ``path`` through :func:`write_atomically`.

    The JSON is built before any file is touched, so data it cannot encode (a
    :class:`TypeError` or :class:`ValueError`) leaves no temporary file and ``path`` as
    it was."""
    encoded = json.dumps(data, separators=(",", ":")).encode("utf-8")
    write_atomically(path, encoded, mode=mode, make_folder=make_folder)


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
