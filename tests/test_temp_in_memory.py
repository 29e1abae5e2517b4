"""The tests' temporary files are in memory when the machine has a tmpfs (tests/conftest.py).

Why it matters: the suite's durable writes fsync, and on this machine's disk that is a
good part of the wall time of the files that write most (tests/runtime/test_crash_points.py,
both runs: 47.4 s on disk, 34.7 s in /dev/shm on a quiet machine; 118.7 s and 62.1 s on
a busy one)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import _tmpfs
import pytest
from _tmpfs import MEMORY_TEMP, ON_DISK_ENV, _is_writable_tmpfs

pytestmark = pytest.mark.skipif(
    bool(os.environ.get(ON_DISK_ENV)) or not _is_writable_tmpfs(MEMORY_TEMP),
    reason=f"no writable tmpfs at {MEMORY_TEMP}, or {ON_DISK_ENV} is set",
)


def test_tmp_path_and_tempfile_folders_are_in_the_tmpfs(tmp_path: Path) -> None:
    assert tmp_path.resolve().is_relative_to(MEMORY_TEMP)
    assert Path(tempfile.gettempdir()) == MEMORY_TEMP
    with tempfile.TemporaryDirectory() as folder:
        assert Path(folder).is_relative_to(MEMORY_TEMP)


def test_a_folder_elsewhere_is_not_taken_for_a_tmpfs(tmp_path: Path) -> None:
    assert not _is_writable_tmpfs(tmp_path)  # inside the tmpfs, but not its mount point


def test_a_small_tmpfs_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's 64 MiB /dev/shm would fill up: the tests stay on the disk then."""
    monkeypatch.setattr(_tmpfs, "_free_bytes", lambda folder: 64 << 20)
    assert not _is_writable_tmpfs(MEMORY_TEMP)
    monkeypatch.setattr(_tmpfs, "_free_bytes", lambda folder: _tmpfs.MEMORY_TEMP_MIN_FREE)
    assert _is_writable_tmpfs(MEMORY_TEMP)
