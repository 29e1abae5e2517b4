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
