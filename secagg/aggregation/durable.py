"""Atomic, durable writes of the small state files a key holder keeps beside its key.

Why one helper: the key holder's decryption record (``<key>.state``, what keeps a round
from being decrypted twice) and the round it last opened (``<state>.opened``) must each be
either the old file or the new one after a crash or a power cut, never half of either,
and never readable by anyone but their owner. Both wrote through one private function of
:mod:`~secagg.aggregation.keyholder_policy`, which :mod:`~secagg.aggregation.ckks`
imported by its private name; this module is the one public writer both use.

How: the bytes go to a temporary file in the *same* folder (a rename is atomic only
within one file system), created 0600 by :func:`tempfile.mkstemp` whatever the umask and
then given ``mode``; the file is fsynced, renamed over ``path`` (:func:`os.replace`), and
the folder fsynced, so the rename itself survives a power cut. A write that fails at any
step removes its temporary file and leaves ``path`` as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SECRET_FILE_MODE", "write_atomically", "write_json_atomically"]

#: owner read and write only: the mode of every file that holds a secret or a key
#: holder's state (a record others could read tells them which rounds were decrypted)
SECRET_FILE_MODE = 0o600


def write_atomically(path: Path, data: bytes, *, mode: int = SECRET_FILE_MODE) -> None:
    """Replace ``path`` with ``data``, atomically and durably (see the module's text).

    ``mode`` is the file's permission bits (default 0600, for secrets and state); the
    folder is created if missing. Raises the :class:`OSError` of the step that failed,
    after removing the temporary file; ``path`` then holds what it held before."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
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
    path: Path, data: Mapping[str, Any], *, mode: int = SECRET_FILE_MODE
) -> None:
    """``data`` as compact JSON at ``path`` through :func:`write_atomically`.

    The JSON is built before any file is touched, so data it cannot encode (a
    :class:`TypeError` or :class:`ValueError`) leaves no temporary file and ``path`` as
    it was."""
    write_atomically(path, json.dumps(data, separators=(",", ":")).encode("utf-8"), mode=mode)
