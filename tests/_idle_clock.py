"""Test helper: the in-process transport with a clock for the server that skips the
waits in which nothing can happen but a deadline.

Why. A test of a deadline (a silent branch is a dropout, a round below its threshold
aborts) used to wait it out in real time: seconds per test, and a deadline short enough
to be cheap was a race on a busy machine, where the answering branches could miss it
too. With :class:`IdleSkippingHub` the server's deadlines stay generous, yet cost no
real time: when the server is about to wait and every branch that answers is itself
waiting for the server, with nothing in flight either way, no message can come before
the wait ends; the wait then returns at once and :meth:`IdleSkippingHub.clock` moves on
by the seconds it would have waited. Any other wait is real. So a test's deadline
fires only once everyone who could answer has answered: the deadline, not the
machine's load, decides who is a dropout.

Use ``FederationServer(config, hub, store, clock=hub.clock)``. A branch that will never
answer connects with :meth:`IdleSkippingHub.connect_silent`: a branch connected with
``connect`` (the default) is waited for, and while it is busy (training, or not yet
started) nothing is skipped; forgetting ``connect_silent`` makes a test slow, never
wrong.
"""

from __future__ import annotations

import threading
import time

from secagg.transport.inprocess import InProcessHub, _InProcessClient


class _WatchedClient:
    """A branch's end of the hub that says whether the branch is waiting for the
    server with every message the server sent it taken.

    The count, not only "inside receive", because a receive that has just taken a
    message is still inside until it returns: the branch is then about to answer,
    and its count of taken messages is one short of the server's count of sent ones."""

    def __init__(self, hub: IdleSkippingHub, endpoint: _InProcessClient) -> None:
        self._hub = hub
        self._endpoint = endpoint
        self.name = endpoint.name
        self.session = endpoint.session
        self._lock = threading.Lock()
        self._receiving = False
        self._taken = 0
        self._reader: threading.Thread | None = None  # the branch's thread, once it reads
        self.sent = 0  # by the server: counted by the hub (its thread alone) after each send

    def send(self, payload: bytes) -> None:
        self._endpoint.send(payload)

    def receive(self, timeout: float | None) -> bytes | None:
        with self._lock:
            self._receiving, self._reader = True, threading.current_thread()
        payload = None
        try:
            payload = self._endpoint.receive(timeout)
        finally:
            with self._lock:
                self._receiving = False
                self._taken += payload is not None
        return payload

    def close(self) -> None:
        self._endpoint.close()

    def waiting_with_nothing_unread(self) -> bool:
        """Whether the branch waits inside receive with every message sent to it taken
        (so it has handled, and answered, all but what it waits for); or it can send
        nothing more: its session has ended, or the thread that read it has (a branch
        whose ``run`` returned after its rounds; without this a test whose deadline
        logic is broken waited out every later round in real time instead of failing)."""
        if self._hub.session_id(self.name) != self.session:
            return True
        with self._lock:
            if self._reader is not None and not self._reader.is_alive():
                return True
            return self._receiving and self._taken == self.sent


class IdleSkippingHub(InProcessHub):
    """The in-process transport whose :meth:`clock` skips a server's wait for nothing.

    ``skipped`` counts the waits skipped, so a test can say its deadline was reached
    by the clock, not by a real wait."""

    def __init__(self) -> None:
        super().__init__()
        self._watched: dict[str, _WatchedClient] = {}
        self._skipped_seconds = 0.0
        self.skipped = 0

    def clock(self) -> float:
        """The server's monotonic clock: real time plus every wait skipped so far."""
        return time.monotonic() + self._skipped_seconds

    def connect(self, name: str) -> _WatchedClient:  # type: ignore[override]
        """A branch that answers: the server's waits are skipped only while it waits too."""
        watched = _WatchedClient(self, super().connect(name))
        self._watched[name] = watched
        return watched

    def connect_silent(self, name: str) -> _InProcessClient:
        """A branch that is connected and never answers: nobody waits for it."""
        self._watched.pop(name, None)
        return super().connect(name)

    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        watched = self._watched.get(name)
        if watched is not None:
            watched.sent += 1

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        if timeout is not None and self._idle():
            self._skipped_seconds += timeout
            self.skipped += 1
            return None
        return super().receive(timeout)

    def _idle(self) -> bool:
        """Whether no message can reach the server before its wait ends. The branches
        are looked at first, the server's queue last: a branch found waiting with
        nothing unread stays so until the server sends (and the server is here), so a
        message it sent before is in the queue by the time the queue is looked at."""
        branches = list(self._watched.values())
        return all(b.waiting_with_nothing_unread() for b in branches) and self._to_server.empty()
