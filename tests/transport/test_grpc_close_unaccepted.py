"""Closing a client transport whose session the server has not accepted yet does not
wait for the server.

Second review of the transport's intake (2026-12-07): a branch or key holder stopped by
Ctrl-C or SIGTERM while it dials (``secagg client`` raises both as a KeyboardInterrupt in
its main thread) leaves ``connect()`` and is closed by its dialler
(``secagg.runtime.launch._grpc_dialer``). If the server had taken the connection but not
yet answered the session (its handler not run yet: a server whose Python threads are
busy, say, unmasking a round while gRPC's own threads take connections), ``close()``
waited its whole grace (5 s) for the session reader, which waits for that answer:
measured 5.00 s between the interrupt and the party's one line. Nothing can have been
written on a session the server never accepted, so there is nothing to flush: the call
is cancelled and the connection closed at once.

Checked by order, not by time: the server's ``identify`` holds the session until the
test lets it go; the close must return while it is still held. The interrupt is raised
where a Ctrl-C lands in the dial: in ``connect()``'s wait for the server's answer.
"""

from __future__ import annotations

import threading

import pytest
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND

from secagg.transport.base import NotConnected

#: how long the server holds the session unanswered when the close waits for it (the
#: failing case only; a passing run lets it go as soon as the close returned)
HELD_SECONDS = 10.0


class _InterruptedWait(threading.Event):
    """The client's wait for the server's answer, interrupted (Ctrl-C) once the server
    holds the session: what a KeyboardInterrupt in ``connect()`` looks like there."""

    def __init__(self, held: threading.Event) -> None:
        super().__init__()
        self._held = held

    def wait(self, timeout: float | None = None) -> bool:
        assert self._held.wait(BOUND), "the session never reached the server"
        raise KeyboardInterrupt


def test_closing_a_session_the_server_has_not_accepted_does_not_wait_for_it() -> None:
    entered, release, answered = threading.Event(), threading.Event(), threading.Event()

    def identify(context: object) -> str:
        entered.set()
        release.wait(HELD_SECONDS)
        answered.set()
        return "branch-a"

    with plaintext_server(identify=identify) as server:
        client = plaintext_client(server)
        client._ready = _InterruptedWait(entered)
        try:
            try:
                client.connect(timeout=BOUND)
            except KeyboardInterrupt:
                client.close(timeout=BOUND)  # as the dialler does
            assert not answered.is_set(), "close() waited for the server to accept the session"
        finally:
            release.set()
        with pytest.raises(NotConnected):
            client.receive(timeout=0)  # closed: every later call says so
