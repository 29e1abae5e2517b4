"""A session's end wakes the gRPC server's receive at once, and a session's start or end
wakes a caller waiting for parties (transport review, 2026-12-06).

Before: a session's end is no message, so a server blocked in ``receive`` learnt of it
only when its wait ran out (the runtime waits 0.5 s at a time: measured, a median of
0.25 s and a maximum of 0.5 s from a branch's end to the server looking), and the quorum
wait polled with a back-off up to 1 s apart. The in-process hub already woke on an end
(``test_inprocess_wake.py``); gRPC now does the same for an end while it waits (an end
before the call is not said: callers wait for one client's message after another's end).

Checked as wake-ups, not times: each wait here is far longer than the test's bound
(``3 * BOUND``, or none), so it ends within the bound only if the event woke it.

Real gRPC on loopback (plaintext: the waits, not TLS, are under test).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from _threads import BOUND

from secagg.transport.grpc_transport import (
    Connected,
    Disconnected,
    GrpcClientTransport,
    GrpcServerTransport,
    _Session,
)

#: a wait no test may see end by itself: only an event ends it within BOUND
LONGER_THAN_THE_TEST = 3 * BOUND
NAMES = ("branch-a", "branch-b", "branch-c", "branch-d")


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    """A plaintext server naming its sessions branch-a, branch-b, ... in the order they
    open (``identify`` runs once per session: no re-check)."""
    names = iter(NAMES)
    lock = threading.Lock()

    def identify(context: object) -> str:
        with lock:
            return next(names)

    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=identify,
        recheck_interval=None,
    )
    _watch_waits(transport)
    transport.start()
    yield transport
    transport.stop(grace=0)


def _watch_waits(server: GrpcServerTransport) -> threading.Event:
    """Replace the server's condition (before any thread waits on it) by one that says
    when a thread waits on it: a test then ends a session while receive is waiting,
    never before the call (an end before the call is not said)."""
    waiting = threading.Event()
    server.test_waiting = waiting  # type: ignore[attr-defined]

    class Watched(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.set()
            return super().wait(timeout)

    server._changed = Watched(server._lock)
    return waiting


def _connect(server: GrpcServerTransport, name: str) -> GrpcClientTransport:
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    assert client.connect(timeout=BOUND) == name
    return client


def _in_thread(call: Callable[[], object]) -> tuple[threading.Event, list[object]]:
    """Run ``call`` in a daemon thread; the event is set when it returned (or raised),
    its result (or exception) is then in the list."""
    out: list[object] = []
    done = threading.Event()

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:  # the test looks at it
            out.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, out


def _disconnected(server: GrpcServerTransport, name: str) -> None:
    """Wait for ``name``'s Disconnected: once it is published, its end is recorded."""
    while True:
        event = server.next_event(timeout=BOUND)
        assert event is not None, f"{name} did not disconnect"
        if isinstance(event, Disconnected) and event.name == name:
            return


def test_a_closed_client_wakes_a_server_blocked_in_receive(server: GrpcServerTransport) -> None:
    leaving, staying = _connect(server, "branch-a"), _connect(server, "branch-b")
    try:
        woke, heard = _in_thread(lambda: server.receive(timeout=LONGER_THAN_THE_TEST))
        assert server.test_waiting.wait(BOUND)  # type: ignore[attr-defined]  # receive is waiting (nothing else waits)
        leaving.close()
        assert woke.wait(BOUND), "the end did not wake receive"  # before: only at its timeout
        assert heard == [None]
        assert server.connected() == {"branch-b"}  # what the woken caller looks at
        staying.send(b"later")
        assert server.receive(timeout=BOUND) == ("branch-b", b"later")  # nothing is lost
    finally:
        staying.close()


def test_an_end_while_a_message_is_taken_is_said_by_the_next_call() -> None:
    """A session that ends while the call that wakes for a message has not yet taken it
    (a branch's last message, then its end) is said by the next call, at once: the
    message first, then the None. Driven below gRPC, on a server never started, so the
    two land inside one wait of the receiver, every time."""
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "unused",
    )
    waiting = _watch_waits(server)
    leaving = _Session("branch-a", "peer-a", None, {}, None)  # type: ignore[arg-type]
    staying = _Session("branch-b", "peer-b", None, {}, None)  # type: ignore[arg-type]
    server._sessions.update({"branch-a": leaving, "branch-b": staying})
    woke, heard = _in_thread(lambda: server.receive(timeout=LONGER_THAN_THE_TEST))
    assert waiting.wait(BOUND)
    with server._changed:  # both before the receiver runs again
        server._inbox.append((staying, b"last"))
        staying.queued_messages, staying.queued_bytes = 1, 4
        server._finish(leaving, "connection lost")
    assert woke.wait(BOUND) and heard == [("branch-b", b"last")]  # the message first
    woke, heard = _in_thread(lambda: server.receive(timeout=LONGER_THAN_THE_TEST))
    assert woke.wait(BOUND), "the end seen while a message was taken was never said"
    assert heard == [None]
    woke, heard = _in_thread(lambda: server.receive(timeout=0.0))
    assert woke.wait(BOUND) and heard == [None]  # said once: this one timed out


def test_ends_before_the_call_are_not_said(server: GrpcServerTransport) -> None:
    """The guarantee the transport's callers rely on: a wait for one client's message
    after others' sessions ended (and were seen ended) gets that message, not a None."""
    gone = [_connect(server, name) for name in NAMES[:3]]
    staying = _connect(server, "branch-d")
    try:
        for client, name in zip(gone, NAMES, strict=False):
            client.close()
            _disconnected(server, name)
        staying.send(b"next")
        assert server.receive(timeout=BOUND) == ("branch-d", b"next")
    finally:
        staying.close()


def test_a_session_opening_wakes_a_wait_for_sessions(server: GrpcServerTransport) -> None:
    seen = server.wait_for_sessions(None, 0.0)  # the number only: returns at once
    woke, heard = _in_thread(lambda: server.wait_for_sessions(seen, LONGER_THAN_THE_TEST))
    client = _connect(server, "branch-a")
    try:
        assert woke.wait(BOUND), "the new session did not wake the wait"
        [after] = heard
        assert isinstance(after, int) and after != seen
    finally:
        client.close()


def test_a_change_before_the_wait_is_not_missed(server: GrpcServerTransport) -> None:
    """The caller reads the number, looks at who is connected, then waits: a session that
    opened in between must end the wait at once, or the quorum it made goes unseen."""
    seen = server.wait_for_sessions(None, 0.0)
    client = _connect(server, "branch-a")  # between the look and the wait
    try:
        woke, heard = _in_thread(lambda: server.wait_for_sessions(seen, LONGER_THAN_THE_TEST))
        assert woke.wait(BOUND) and heard != [seen]
    finally:
        client.close()


def test_an_end_and_a_stop_wake_a_wait_for_sessions(server: GrpcServerTransport) -> None:
    client = _connect(server, "branch-a")
    event = server.next_event(timeout=BOUND)
    assert isinstance(event, Connected)
    seen = server.wait_for_sessions(None, 0.0)
    woke, _ = _in_thread(lambda: server.wait_for_sessions(seen, LONGER_THAN_THE_TEST))
    client.close()
    assert woke.wait(BOUND), "the end did not wake the wait"
    seen = server.wait_for_sessions(None, 0.0)
    woke, _ = _in_thread(lambda: server.wait_for_sessions(seen, LONGER_THAN_THE_TEST))
    server.stop(grace=0)  # no session open: the stop alone must wake it
    assert woke.wait(BOUND), "the stop did not wake the wait"


def test_a_session_opening_wakes_a_server_blocked_in_receive(server: GrpcServerTransport) -> None:
    """Second review of the collect loop (2026-12-07): the runtime waits in ``receive``
    for a key holder gone mid-phase, and resends its request when it is back; its new
    session did not wake the wait, so the resend came at the next poll, up to 0.5 s
    later. Now an opening wakes a waiting receive (None: look again); one before the
    call is not said, as for ends (a message waiting is returned, not a None)."""
    first = _connect(server, "branch-a")
    second = third = None
    try:
        woke, heard = _in_thread(lambda: server.receive(timeout=LONGER_THAN_THE_TEST))
        assert server.test_waiting.wait(BOUND)  # type: ignore[attr-defined]  # receive is waiting
        second = _connect(server, "branch-b")
        assert woke.wait(BOUND), "the opening did not wake receive"  # before: at its timeout
        assert heard == [None]
        third = _connect(server, "branch-c")  # before the call: not said
        first.send(b"next")
        assert server.receive(timeout=BOUND) == ("branch-a", b"next")
    finally:
        for client in (first, second, third):
            if client is not None:
                client.close()
