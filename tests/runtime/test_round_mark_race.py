"""Two processes of one branch recording the same round at once over one state file.

:meth:`RoundMark.advance` reads the file again before it writes, but between that read
and the rename of the new file (a temporary file written and fsynced: milliseconds) a
second process of the branch read the same old mark, passed the same check and wrote:
a hostile server sending both the same round start at once had the branch train, and
spend record-level budget, twice for one round number (review, 2026-12-05). The read,
the check and the write are now one step under an exclusive lock beside the file.
"""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import secagg.runtime.branch_state as bs
from secagg.runtime.branch_state import BranchStateError, RoundMark

#: generous: a step that takes milliseconds is waited for this long before the test fails
BOUND = 20.0
NAME = "branch-00"


def _wait_for_any(*events: threading.Event) -> bool:
    """Whether one of ``events`` was set within :data:`BOUND` (polled on each event)."""
    give_up = time.monotonic() + BOUND
    while time.monotonic() < give_up:
        for event in events:
            if event.wait(timeout=0.01):
                return True
    return False


def test_two_processes_of_a_branch_taking_one_round_at_once_take_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "branch.state"
    first, second = RoundMark(state, NAME), RoundMark(state, NAME)  # both read "none yet"
    first_writing = threading.Event()  # the first passed its check and is writing
    second_locking = threading.Event()  # the second asked for the lock (and must wait)
    second_done = threading.Event()  # the second's advance returned or raised
    outcomes: dict[str, Any] = {}

    real_write, real_flock = bs.write_json_atomically, fcntl.flock

    def slow_write(path: Path, data: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            first_writing.set()
            assert _wait_for_any(second_locking, second_done), "the second never advanced"
        real_write(path, data, **kwargs)

    def watched_flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "second" and operation & fcntl.LOCK_EX:
            second_locking.set()
        real_flock(fd, operation)

    monkeypatch.setattr(bs, "write_json_atomically", slow_write)
    monkeypatch.setattr(fcntl, "flock", watched_flock)

    def advance(name: str, mark: RoundMark) -> None:
        try:
            if name == "second":
                assert first_writing.wait(BOUND), "the first never wrote"
            mark.advance(5)
            outcomes[name] = "taken"
        except BranchStateError as exc:
            outcomes[name] = exc
        finally:
            if name == "second":
                second_done.set()

    threads = [
        threading.Thread(target=advance, args=(name, mark), name=name)
        for name, mark in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND * 3)
        assert not thread.is_alive()
    assert outcomes["first"] == "taken"
    assert isinstance(outcomes["second"], BranchStateError), outcomes["second"]
    assert "another process of 'branch-00'" in str(outcomes["second"])
    assert second.last is None and RoundMark(state, NAME).last == 5
