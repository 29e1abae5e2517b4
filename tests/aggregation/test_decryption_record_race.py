"""Two key holder processes committing the same round at once over one state file.

The record is read again before each commit (StateChanged), but between that read and
the rename of the new file (a temporary file written and fsynced: milliseconds) a second
process over the same file read the same old record, passed the same check and released
the same round: a hostile server sending both processes the round's decryption request
at once had it decrypted twice (review, 2026-12-05). The read, the check and the write
are now one step under an exclusive lock beside the file (``<state>.lock``).
"""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import secagg.aggregation.keyholder_policy as kp
from secagg.aggregation.keyholder_policy import DecryptionRecord, StateChanged

#: generous: a step that takes milliseconds is waited for this long before the test fails
BOUND = 20.0


def _wait_for_any(*events: threading.Event) -> bool:
    """Whether one of ``events`` was set within :data:`BOUND` (polled on each event)."""
    give_up = time.monotonic() + BOUND
    while time.monotonic() < give_up:
        for event in events:
            if event.wait(timeout=0.01):
                return True
    return False


def test_two_processes_committing_one_round_at_once_release_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    first, second = DecryptionRecord(state), DecryptionRecord(state)  # both read "nothing yet"
    first_writing = threading.Event()  # the first passed its check and is writing
    second_locking = threading.Event()  # the second asked for the lock (and must wait)
    second_done = threading.Event()  # the second's commit returned or raised
    outcomes: dict[str, Any] = {}

    real_write, real_flock = kp.write_json_atomically, fcntl.flock

    def slow_write(path: Path, data: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            first_writing.set()
            # the first is mid-write (its fsync): the second commits now, or is held
            assert _wait_for_any(second_locking, second_done), "the second never committed"
        real_write(path, data, **kwargs)

    def watched_flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "second" and operation & fcntl.LOCK_EX:
            second_locking.set()
        real_flock(fd, operation)

    monkeypatch.setattr(kp, "write_json_atomically", slow_write)
    monkeypatch.setattr(fcntl, "flock", watched_flock)

    def commit(name: str, record: DecryptionRecord) -> None:
        try:
            if name == "second":
                assert first_writing.wait(BOUND), "the first never wrote"
            record.commit(1)
            outcomes[name] = "released"
        except StateChanged as exc:
            outcomes[name] = exc
        finally:
            if name == "second":
                second_done.set()

    threads = [
        threading.Thread(target=commit, args=(name, record), name=name)
        for name, record in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND * 3)
        assert not thread.is_alive()
    assert outcomes["first"] == "released"
    assert isinstance(outcomes["second"], StateChanged), outcomes["second"]
    assert DecryptionRecord(state).rounds == [1]  # one decryption on record, the first's
    assert second.decryptions == 0


def test_the_lock_file_is_the_owners_only_and_a_commit_without_a_folder_still_works(
    tmp_path: Path,
) -> None:
    state = tmp_path / "new" / "state.json"  # its folder is made, as the record's was
    record = DecryptionRecord(state)
    record.commit(3)
    lock = state.with_name(state.name + ".lock")
    assert lock.exists() and (lock.stat().st_mode & 0o777) == 0o600
    assert DecryptionRecord(state).rounds == [3]
