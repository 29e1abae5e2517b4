"""Shared by every test folder: the helpers beside this file are importable by name,
Hypothesis runs without its per-example deadline (200 ms by default) or its "too slow"
health check: both time the machine, not the code, and a busy 2-core CI machine trips
them (a property's examples are checked all the same), and the tests' temporary files
live in memory when the machine has a tmpfs (see :func:`pytest_configure`)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "busy-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("busy-machine")

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


def pytest_configure(config: pytest.Config) -> None:
    """``tmp_path`` (pytest's numbered base folder, made by the xdist controller and
    shared out to the workers) and :mod:`tempfile`'s folders in a tmpfs, in this process.

    Why: every server state, ledger and durable write a test makes fsyncs, and no test
    here can see what an fsync is for (the power cut that it survives: a crash in these
    tests is a process's, played in-process or by a kill, and the kernel's page cache
    outlives it). On the 2-core machines' disk an fsync took 0.26 ms when the machine was
    quiet and 2.6 ms when it was busy: the two runs of
    tests/runtime/test_crash_points.py make 31 600 of them, tests/ledger 29 300. On
    a tmpfs the same calls run, in the same order, and return at once. Only this
    process's :mod:`tempfile` is moved (``TMPDIR`` is left alone): subprocesses and Ray
    keep their own folders."""
    if os.environ.get(ON_DISK_ENV) or not _is_writable_tmpfs(MEMORY_TEMP):
        return
    tempfile.tempdir = str(MEMORY_TEMP)
