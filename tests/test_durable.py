"""The one atomic writer of files whose tearing would cost a guarantee (secagg.durable).

The decryption record and the opened round must be the old file or the new one after any
failure, never half of either, never readable by others, and their rename must itself be
flushed to disk (the folder fsynced)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from secagg import durable
from secagg.durable import SECRET_FILE_MODE, write_atomically, write_json_atomically


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_written_0600_in_a_folder_made_for_it(tmp_path: Path) -> None:
    path = tmp_path / "made" / "here" / "holder.state"
    write_json_atomically(path, {"version": 1, "rounds": [1, 2]})
    assert json.loads(path.read_text()) == {"version": 1, "rounds": [1, 2]}
    assert path.read_bytes() == b'{"version":1,"rounds":[1,2]}'  # compact, as before
    assert _mode(path) == SECRET_FILE_MODE == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["holder.state"]  # no temporary left


def test_an_existing_file_is_replaced_and_takes_the_mode_asked(tmp_path: Path) -> None:
    path = tmp_path / "holder.state"
    path.write_bytes(b"old")
    path.chmod(0o644)  # a file others could read is not left so
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o600
    write_atomically(path, b"public", mode=0o644)
    assert path.read_bytes() == b"public" and _mode(path) == 0o644


def test_the_file_and_then_its_folder_are_fsynced_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(durable.os, "fsync", record)
    write_atomically(tmp_path / "holder.state", b"data")
    assert synced == ["file", "folder"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "holder.state"
    path.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durable.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["holder.state"]


def test_data_json_cannot_encode_touches_no_file(tmp_path: Path) -> None:
    path = tmp_path / "holder.state"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_json_atomically(path, {"rounds": {1, 2}})  # a set is no JSON
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["holder.state"]


# --- create_json_atomically: a file made only where none is ------------------------------


def test_a_file_is_created_whole_0600_only_where_none_is(tmp_path: Path) -> None:
    """The key holder's first record: made if absent, never over another process's."""
    path = tmp_path / "made" / "record"
    assert durable.create_json_atomically(path, {"rounds": []}) is True
    assert json.loads(path.read_text()) == {"rounds": []}
    assert stat.S_IMODE(path.stat().st_mode) == SECRET_FILE_MODE
    assert durable.create_json_atomically(path, {"rounds": [9]}) is False  # taken: kept
    assert json.loads(path.read_text()) == {"rounds": []}
    assert sorted(p.name for p in path.parent.iterdir()) == ["record"]  # no temporary


def test_a_create_that_fails_leaves_no_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: Path) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(OSError, match="not permitted"):
        durable.create_json_atomically(tmp_path / "record", {"rounds": []})
    assert list(tmp_path.iterdir()) == []
