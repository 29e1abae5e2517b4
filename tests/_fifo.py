"""Named pipes for tests of the readers of user-named files: run a read that must not
block in a thread with a generous bound (a blocked ``open()`` fails the test instead of
hanging the suite), and swap a file between a reader's check and its read.

Why: a named pipe blocks ``open()`` for reading until a writer comes, forever; every
layer that reads a file a user named must refuse one (:mod:`secagg.durable`'s one-open
reader), and a test of that must fail, not hang, against a reader that still blocks."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: generous: every refusal is an open() and an fstat(); a blocked open() never returns
JOIN_SECONDS = 30.0

#: skip marker for the modules that need named pipes
needs_fifos = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def in_thread(work: Callable[[], Any], unblock: Path) -> Any:
    """``work()``'s value, or the exception it raised, from a daemon thread; if it is
    still running after :data:`JOIN_SECONDS` (an open() blocked on a named pipe), a writer
    opens ``unblock`` so the thread can end, and the test fails."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the test to judge
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(JOIN_SECONDS)
    if worker.is_alive():
        fd = os.open(unblock, os.O_WRONLY | os.O_NONBLOCK)  # the blocked reader's writer
        os.close(fd)
        worker.join(JOIN_SECONDS)
        pytest.fail(f"still blocked after {JOIN_SECONDS} s (an open() of a named pipe)")
    return outcome[0]


def swap_for_fifo(path: Path) -> None:
    """Replace the file at ``path`` with a named pipe, in one rename (what a swap
    between a check and a read does)."""
    fifo = path.with_name(path.name + ".fifo")
    os.mkfifo(fifo)
    os.replace(fifo, path)


class SwapAfterCheck:
    """``os`` as a module sees it, except that right after the first look at a file's
    kind or size (``stat`` of a path or ``fstat`` of a descriptor), ``swap()`` runs once:
    the window between a check and the read."""

    def __init__(self, swap: Callable[[], None]) -> None:
        self._swap: Callable[[], None] | None = swap

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _after(self, result: Any) -> Any:
        if self._swap is not None:
            swap, self._swap = self._swap, None
            swap()
        return result

    def stat(self, *args: Any, **kwargs: Any) -> os.stat_result:
        return self._after(os.stat(*args, **kwargs))

    def fstat(self, *args: Any, **kwargs: Any) -> os.stat_result:
        return self._after(os.fstat(*args, **kwargs))
