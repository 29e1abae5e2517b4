"""What a write killed mid-way leaves beside its target, and who may remove it
(secagg.durable.remove_stale_temporaries, run by every write_atomically).

A write killed between creating its temporary file and renaming it (SIGKILL, a power
cut) cannot clean up after itself: ``.NAME.XXXXXXXX.tmp`` stayed beside the key holder's
record for good, one more for every such kill. The next write of the same target now
removes it, and only it: its writer's name pattern for that target, a regular file of
this user, old enough, and not locked (every writer holds its temporary file's lock
until the rename, and the kernel drops it when the writer dies). A write in flight in
another process is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import secagg
from secagg import durable
from secagg.durable import remove_stale_temporaries, write_atomically

#: generous: a child interpreter importing secagg on a loaded 2-core machine
_CHILD_SECONDS = 120.0


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running ``script`` with this checkout's secagg importable."""
    env = {**os.environ, "PYTHONPATH": str(Path(secagg.__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


_KILLED_MID_WRITE = """
    import os, signal, sys
    from pathlib import Path
    from secagg import durable

    def killed(fd):  # the data is written, not yet renamed into place
        os.kill(os.getpid(), signal.SIGKILL)

    durable.os.fsync = killed
    durable.write_atomically(Path(sys.argv[1]), b"never renamed")
"""


def _temporaries(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp"))


def _age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old (its writer gone long ago)."""
    past = path.stat().st_mtime - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def test_a_write_killed_mid_way_leaves_a_temporary_the_next_write_removes(
    tmp_path: Path,
) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    child = _child(_KILLED_MID_WRITE, str(target))
    assert child.wait(timeout=_CHILD_SECONDS) == -9  # SIGKILL, mid-write
    (left,) = _temporaries(target)
    assert left.startswith(".state.json.") and target.read_bytes() == b"old"
    write_atomically(target, b"fresh")  # within the grace: its writer might be alive
    assert _temporaries(target) == [left]
    _age(tmp_path / left, durable.STALE_AFTER_SECONDS + 1)
    write_atomically(target, b"new")
    assert _temporaries(target) == [] and target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_only_this_targets_own_unlocked_leftovers_are_removed(tmp_path: Path) -> None:
    """Another target's temporary, names the writer never makes, a symbolic link, a
    folder and a locked file (a write in flight) are all left as they are."""
    import fcntl

    target = tmp_path / "state.json"
    ours = [".state.json.abcdefgh.tmp", ".state.json.0_z9k2mq.tmp"]
    others = [
        ".state.json.opened.abcdefgh.tmp",  # <state>.opened's temporary, not the record's
        ".state.json.abcdefg.tmp",  # 7 random characters
        ".state.json.abcdefghi.tmp",  # 9
        ".state.json.ABCDEFGH.tmp",  # not mkstemp's alphabet
        "state.json.abcdefgh.tmp",  # no leading dot
        ".state.json.abcdefgh.tmp.keep",
        ".xstate.json.abcdefgh.tmp",
    ]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "victim").write_bytes(b"not ours to remove")
    (tmp_path / ".state.json.linklink.tmp").symlink_to(tmp_path / "victim")
    (tmp_path / ".state.json.folder00.tmp").mkdir()
    (tmp_path / ".state.json.inflight.tmp").write_bytes(b"being written")
    others += [".state.json.linklink.tmp", ".state.json.folder00.tmp", "victim"]
    for name in [*ours, *others, ".state.json.inflight.tmp"]:
        _age(tmp_path / name, durable.STALE_AFTER_SECONDS + 1)
    writer = os.open(tmp_path / ".state.json.inflight.tmp", os.O_RDWR)
    try:
        fcntl.flock(writer, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live writer's lock
        removed = remove_stale_temporaries(target)
        assert sorted(p.name for p in removed) == sorted(ours)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted([*others, ".state.json.inflight.tmp"])
        assert (tmp_path / "victim").read_bytes() == b"not ours to remove"
    finally:
        os.close(writer)
    # its writer gone (the lock dropped with its descriptor), it is a leftover too
    assert [p.name for p in remove_stale_temporaries(target)] == [".state.json.inflight.tmp"]


_WRITER_HELD_MID_WRITE = """
    import os, sys
    from pathlib import Path
    from secagg import durable

    real, waited = os.fsync, []

    def held(fd):  # the data is written; wait for the parent before the rename
        if not waited:  # the file's fsync, not the folder's after the rename
            waited.append(fd)
            print("written", flush=True)
            sys.stdin.readline()
        real(fd)

    durable.os.fsync = held
    durable.write_atomically(Path(sys.argv[1]), b"the other process's write")
    print("done", flush=True)
"""


def test_a_write_in_flight_in_another_process_is_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no grace at all, a write of the same target while another process's write is
    between its data and its rename leaves that temporary file alone (it is locked), so
    the other write still lands. Without the writer's lock, removing it made the other
    process's rename fail (FileNotFoundError) and its write was lost."""
    monkeypatch.setattr(durable, "STALE_AFTER_SECONDS", 0.0)
    target = tmp_path / "state.json"
    child = _child(_WRITER_HELD_MID_WRITE, str(target))
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "written"  # it waits for us now
        (inflight,) = _temporaries(target)
        write_atomically(target, b"ours")  # sweeps first: the child's file is locked
        assert _temporaries(target) == [inflight]
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        assert child.wait(timeout=_CHILD_SECONDS) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=_CHILD_SECONDS)
    assert target.read_bytes() == b"the other process's write" and _temporaries(target) == []
