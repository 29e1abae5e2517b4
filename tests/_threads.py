"""Threads and ports for tests that run parties against a real server: a party that
records how its run ended, a free local port, and waiting on a condition with a generous
bound (never a short fixed sleep: these tests must hold on a busy machine)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

#: seconds: the upper bound of every wait on another thread
BOUND = 90.0


class Party:
    """A daemon thread that records how its run ended (its value or the exception)."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(target,), daemon=True).start()

    def _run(self, target: Callable[[], Any]) -> None:
        try:
            self.value = target()
        except BaseException as exc:  # the test inspects what stopped the party
            self.error = exc
        finally:
            self.done.set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], bound: float = BOUND) -> bool:
    """Poll ``condition`` until it holds or ``bound`` seconds pass; its last value."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
