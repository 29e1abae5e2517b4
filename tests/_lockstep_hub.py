"""Test helper: the in-process hub with its branches answered in the server's own thread,
on a clock that moves only when the server waits for nothing.

Why. A test of *when* the server's collect loop moves on (a poll it should not make, a
deadline it should keep) raced the branches' threads on a busy machine: a branch that
had not yet answered looked the same as a wait for nobody. Here every message the server
sends a branch is handed to that branch's :class:`~secagg.runtime.client.FederationClient`
at once (``handle``), in the server's thread, so its answer is queued before the send
returns. Nothing can then arrive while the server waits: a receive with a timeout that
finds the queue empty is a wait for nothing. It is counted (:attr:`LockstepHub.idle_waits`,
with the seconds asked in :attr:`LockstepHub.idle_seconds`), moves :meth:`LockstepHub.clock`
on by its timeout, and returns None at once. So a deadline passes on the clock in no real
time, and a wait the server should not have made shows as a count, never as a wall time.

``drop_at`` makes a branch drop out the way a crashed process does: its session ends as
the server sends it its n-th message of the run (1: its first round start, before it
trains), before the branch reads it. ``script`` replaces a branch's answers: it is called
with each payload the server sends that branch and returns the payloads the branch sends
back (a branch that never answers: ``lambda payload: []``). :meth:`LockstepHub.adopt` takes
a client that reaches the hub through a wrapper of its endpoint (one that sends twice,
or junk behind its answer).

Use ``FederationServer(config, hub, store, clock=hub.clock)``.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence

from secagg.runtime.client import FederationClient, TrainingHook
from secagg.transport.base import NotConnected
from secagg.transport.inprocess import _WAKE, InProcessHub, _InProcessClient

#: what a scripted branch answers a server message with: the payloads it sends back
Script = Callable[[bytes], list[bytes]]


class LockstepHub(InProcessHub):
    """An :class:`InProcessHub` whose branches answer inside the server's sends."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.idle_waits = 0
        self.idle_seconds = 0.0
        self._clients: dict[str, FederationClient] = {}
        self._scripts: dict[str, Script] = {}
        self._endpoints: dict[str, _InProcessClient] = {}
        self._drop_at: dict[str, int] = {}
        self._received: dict[str, int] = {}
        self._answering = False
        self._pending: list[str] = []

    def clock(self) -> float:
        """The server's monotonic clock: moves only by the waits for nothing."""
        return self.now

    def join(
        self, name: str, train: TrainingHook, *, drop_at: int | None = None, **options: object
    ) -> FederationClient:
        """Connect a branch ``name`` training with ``train`` (``options``: the client's);
        ``drop_at``: see the module."""
        endpoint = self.connect(name)
        client = FederationClient(name, train, endpoint, **options)  # type: ignore[arg-type]
        self._clients[name] = client
        self._endpoints[name] = endpoint
        if drop_at is not None:
            self._drop_at[name] = drop_at
        return client

    def adopt(self, client: FederationClient, endpoint: _InProcessClient) -> None:
        """Answer with ``client``, which reaches the server through a wrapper of
        ``endpoint`` (a session of this hub it was made on: :meth:`connect`)."""
        self._clients[client.name] = client
        self._endpoints[client.name] = endpoint

    def join_scripted(self, name: str, script: Script) -> _InProcessClient:
        """Connect a branch ``name`` whose answers ``script`` makes; its endpoint."""
        endpoint = self.connect(name)
        self._scripts[name] = script
        self._endpoints[name] = endpoint
        return endpoint

    # --- the server's side -------------------------------------------------------------

    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        self._delivered(name)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        super().send_to_session(name, session, parts)
        self._delivered(name)

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        """The next queued message (None for a session's end, as the hub says it); on an
        empty queue, None at once, the wait counted and its timeout added to the clock."""
        try:
            item = self._to_server.get_nowait()
        except queue.Empty:
            assert timeout is not None, "a wait without end, and nothing can come"
            if timeout > 0:
                self.idle_waits += 1
                self.idle_seconds += timeout
                self.now += timeout
            return None
        return None if item is _WAKE else item

    # --- the branches ------------------------------------------------------------------

    def _delivered(self, name: str) -> None:
        """A message was queued to ``name``: drop it out as scheduled, or let it answer
        (every branch with mail answers, in the order it was sent, before the send that
        queued it returns; a send made while branches answer is answered after them)."""
        self._received[name] = self._received.get(name, 0) + 1
        if self._drop_at.get(name) == self._received[name]:
            self._endpoints[name].close()  # it dies before reading: its session ends
            return
        self._pending.append(name)
        if self._answering:
            return
        self._answering = True
        try:
            while self._pending:
                self._answer(self._pending.pop(0))
        finally:
            self._answering = False

    def _answer(self, name: str) -> None:
        """Let ``name`` read and answer its next message, if its session is open."""
        endpoint = self._endpoints[name]
        try:
            payload = endpoint.receive(0.0)
        except NotConnected:
            return
        if payload is None:
            return
        if name in self._scripts:
            for reply in self._scripts[name](payload):
                try:
                    endpoint.send(reply)
                except NotConnected:
                    return
            return
        try:
            self._clients[name].handle(payload)
        except NotConnected:
            return
