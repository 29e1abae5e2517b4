"""Test helper: two "processes" (threads) writing one state file at once, the first held
in the middle of its atomic write until the second has asked for the file's lock.

Shared by the race tests of the key holder's decryption record and the branch's round
mark: both read the file again before writing it, and both must hold an exclusive lock
(``secagg.durable.exclusive_lock``) across the read, the check and the write, or a second
process that read the same old contents passes the same check in the milliseconds of
the first's fsync.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

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


def race_two_writes(
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    first: Callable[[], object],
    second: Callable[[], object],
    refusal: type[BaseException],
) -> dict[str, object]:
    """Run ``first`` and ``second`` (each one write through ``module``'s
    ``write_json_atomically``) in two threads: the first is held mid-write until the
    second has asked for the lock (or finished), so without a lock both pass their check.

    Returns each one's outcome: ``"done"``, or the ``refusal`` it raised."""
    first_writing = threading.Event()  # the first passed its check and is writing
    second_locking = threading.Event()  # the second asked for the lock (and must wait)
    second_done = threading.Event()  # the second's call returned or raised
    outcomes: dict[str, object] = {}
    real_write, real_flock = module.write_json_atomically, fcntl.flock

    def slow_write(path: Any, data: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            first_writing.set()
            # the first is mid-write (its fsync): the second goes now, or is held
            assert _wait_for_any(second_locking, second_done), "the second never wrote"
        real_write(path, data, **kwargs)

    def watched_flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "second" and operation & fcntl.LOCK_EX:
            second_locking.set()
        real_flock(fd, operation)

    monkeypatch.setattr(module, "write_json_atomically", slow_write)
    monkeypatch.setattr(fcntl, "flock", watched_flock)

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            if name == "second":
                assert first_writing.wait(BOUND), "the first never wrote"
            call()
            outcomes[name] = "done"
        except refusal as exc:
            outcomes[name] = exc
        finally:
            if name == "second":
                second_done.set()

    threads = [
        threading.Thread(target=run, args=(name, call), name=name)
        for name, call in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND * 3)
        assert not thread.is_alive()
    return outcomes
