"""A session's end wakes the server's receive at once (suite speed audit, 2026-12-05).

Before: a session's end is no message, so a server blocked in ``receive`` learnt of it
only when its receive timed out (the runtime polls every 0.5 s): each branch that
vanished cost its round up to half a second of waiting for nobody, in every federation
the tests and ``secagg simulate`` run. Now the end queues a wake: ``receive`` returns
None at once, and the server looks at who is still connected.

Measured as an ordering, not a time: the wake is queued when the session ends, so a
message sent after the end comes after it (before the fix, the message came first).
"""

from __future__ import annotations

import queue
import threading

from _threads import BOUND

from secagg.transport.inprocess import InProcessHub


def test_a_session_s_end_reaches_the_server_before_a_later_message() -> None:
    hub = InProcessHub()
    hub.connect("branch-a")
    other = hub.connect("branch-b")
    hub.disconnect("branch-a")
    other.send(b"later")
    assert hub.receive(timeout=BOUND) is None  # the end: look at who is connected
    assert "branch-a" not in hub.connected()
    assert hub.receive(timeout=BOUND) == ("branch-b", b"later")  # nothing is lost


def test_a_closed_client_wakes_a_server_blocked_in_receive() -> None:
    hub = InProcessHub()
    leaving = hub.connect("branch-a")
    other = hub.connect("branch-b")
    heard: list[object] = []
    waiting, woke = threading.Event(), threading.Event()

    def serve() -> None:
        waiting.set()
        heard.append(hub.receive(timeout=BOUND))  # blocked when the client closes
        woke.set()
        heard.append(hub.receive(timeout=BOUND))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    assert waiting.wait(BOUND)
    leaving.close()
    assert woke.wait(BOUND)  # before the fix: only at BOUND, having heard nothing
    other.send(b"later")
    server.join(BOUND)
    assert heard == [None, ("branch-b", b"later")]


def test_ending_an_ended_session_queues_no_wake() -> None:
    hub = InProcessHub()
    client = hub.connect("branch-a")
    hub.disconnect("branch-a")
    client.close()  # its session ended already: nothing more to notice
    hub.disconnect("branch-a")
    assert hub.receive(timeout=BOUND) is None  # the one end
    hub.connect("branch-b").send(b"next")
    assert hub.receive(timeout=BOUND) == ("branch-b", b"next")


class _WatchedQueue(queue.Queue):  # type: ignore[type-arg]
    """The server's inbox, saying when a receive is in its ``get`` (about to wait)."""

    def __init__(self) -> None:
        super().__init__()
        self.getting = threading.Event()

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        self.getting.set()
        return super().get(block, timeout)


def test_a_session_opening_wakes_a_server_blocked_in_receive() -> None:
    """Second review of the collect loop (2026-12-07): the runtime waits in ``receive``
    for a key holder gone mid-phase and resends its request when it is back; its new
    session did not wake the wait, so the resend came at the next poll, up to 0.5 s
    later. Now an opening wakes a waiting receive (None: look again), as an end does;
    one while no receive waits queues nothing (the next call gets the message)."""
    hub = InProcessHub()
    inbox = hub._to_server = _WatchedQueue()
    heard: list[object] = []
    woke = threading.Event()

    def serve() -> None:
        heard.append(hub.receive(timeout=3 * BOUND))  # far longer than the test's bound
        woke.set()

    threading.Thread(target=serve, daemon=True).start()
    assert inbox.getting.wait(BOUND)
    back = hub.connect("key-holder")
    assert woke.wait(BOUND), "the opening did not wake receive"  # before: at its timeout
    assert heard == [None]
    hub.connect("branch-b")  # no receive waits: nothing queued
    back.send(b"reply")
    assert hub.receive(timeout=BOUND) == ("key-holder", b"reply")
