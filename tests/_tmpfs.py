"""Where the tests' temporary files go: /dev/shm when it is a roomy writable tmpfs
(used by tests/conftest.py, checked by tests/test_temp_in_memory.py; a module of its own
because ``conftest`` names several files of the suite, and which one ``import conftest``
finds depends on the order the folders were collected in)."""

from __future__ import annotations

import os
from pathlib import Path

#: where the tests' temporary files go when the machine mounts a tmpfs there
MEMORY_TEMP = Path("/dev/shm")
#: set (to anything but "") to keep the tests' temporary files on the disk
ON_DISK_ENV = "SECAGG_TESTS_TMP_ON_DISK"


#: the free space a tmpfs must have to hold the tests' files: a container's default
#: /dev/shm (64 MiB under Docker) would fill up, and a full tmpfs fails tests that are
#: not about space at all
MEMORY_TEMP_MIN_FREE = 2 << 30


def _free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process can still write in ``folder``'s file system."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _is_writable_tmpfs(folder: Path) -> bool:
    """Whether ``folder`` is the mount point of a tmpfs this process can write in, with
    at least :data:`MEMORY_TEMP_MIN_FREE` bytes free."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    mounted = any(
        fields[1] == str(folder) and fields[2] == "tmpfs"
        for fields in (line.split() for line in mounts)
        if len(fields) >= 3
    )
    if not (mounted and os.access(folder, os.W_OK | os.X_OK)):
        return False
    try:
        return _free_bytes(folder) >= MEMORY_TEMP_MIN_FREE
    except OSError:
        return False
