"""A Ctrl-C or SIGTERM at any point of a gRPC send (server or client side) leaves the
transport able to stop: nothing the main thread took is kept.

Found by tools/stop_stress.py --mode server-round --inject (2026-12-07, the review of
ec2a673c): 2 of 40 ``secagg server`` processes stopped by SIGTERM during a round never
exited (killed after 90 s), without their line. The stop came in ``queue.Queue.put``
on a session's outbox just after ``with self.not_full:`` took the queue's lock (a
Python-level ``Condition.__enter__``, after its C call returned, where Python runs a
signal's handler): the ``with`` never began, so the lock was never given back, and the
transport's ``stop`` then put the end marker on that outbox and waited for the lock
forever. A branch's ``send`` queued on its outbox the same way, and its ``close``
puts an end marker too.

The stop is injected at every point where Python may run a signal's handler while
``send`` runs in this thread (a Python function's entry, a C call's return), one point
per send, through a profile function: exactly the points a real signal reaches.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from _threads import BOUND, wait_until

from secagg.transport.base import TransportError
from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport


def _stopped_at(point: int, call: Callable[[], object]) -> bool:
    """Run ``call`` with a KeyboardInterrupt raised at its ``point``-th place where a
    signal's handler could run; whether it was raised (False: ``call`` has fewer)."""
    seen = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal seen
        if event in ("call", "c_return"):
            seen += 1
            if seen == point:
                sys.setprofile(None)
                raise KeyboardInterrupt

    sys.setprofile(profile)
    try:
        call()
    except KeyboardInterrupt:
        return True
    finally:
        sys.setprofile(None)
    return False


def _lock_kept(outbox: Any) -> bool:
    """Whether the lock of ``outbox`` (a ``queue.Queue``'s ``mutex``) stays held: this
    thread cannot take it within the bound. A ``queue.SimpleQueue`` has no Python-level
    lock to keep (its ``put`` is one C call)."""
    mutex = getattr(outbox, "mutex", None)
    if mutex is None:
        return False
    if mutex.acquire(timeout=BOUND):
        mutex.release()
        return False
    mutex.release()  # the interrupted send kept it: given back for the teardown's stop
    return True


def _free_for_another_thread(lock: Any) -> bool:
    """Whether another thread can take ``lock`` (within the bound)."""
    taken = threading.Event()

    def take() -> None:
        if lock.acquire(timeout=BOUND):
            lock.release()
            taken.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(BOUND)
    return taken.is_set()


@pytest.fixture
def session() -> Iterator[tuple[GrpcServerTransport, GrpcClientTransport]]:
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch-a",
        recheck_interval=None,
    )
    port = server.start()
    client = GrpcClientTransport(
        f"127.0.0.1:{port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    client.connect(timeout=BOUND)
    assert wait_until(lambda: "branch-a" in server.connected())
    try:
        yield server, client
    finally:
        client.close()
        server.stop(grace=0)


def test_a_stop_at_any_point_of_the_servers_send(
    session: tuple[GrpcServerTransport, GrpcClientTransport],
) -> None:
    server, _ = session
    outbox = server._sessions["branch-a"].outbox
    point = 0
    try:
        while _stopped_at(point := point + 1, lambda: server.send("branch-a", b"update")):
            assert not _lock_kept(outbox), f"a stop at point {point} of send kept the outbox"
            assert _free_for_another_thread(server._lock), f"point {point} kept the lock"
    except TransportError:  # the session ended (NotConnected), or is ending (closed)
        # a send stopped after its put and before it counted the message's id queued a
        # message the next one repeats the id of: the branch refuses it and ends the
        # session (an interrupted transport is not one to go on with). The points up to
        # the put, where a lock can be kept, were tried by then.
        pass
    assert point > 10  # the points of a send were tried


def test_a_stop_at_any_point_of_the_clients_send(
    session: tuple[GrpcServerTransport, GrpcClientTransport],
) -> None:
    _, client = session
    point = 0
    # no TransportError: the branch's ids are numbered as they are written (see below)
    while _stopped_at(point := point + 1, lambda: client.send(b"update")):
        assert not _lock_kept(client._outbox), f"a stop at point {point} kept the outbox"
        assert _free_for_another_thread(client._lock), f"point {point} kept the lock"
    assert point > 10


def _server() -> GrpcServerTransport:
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch-a",
        recheck_interval=None,
    )
    server.start()
    return server


def _stopped_as_a_condition_is_entered(call: Callable[[], object], module: str) -> bool:
    """Run ``call`` with a KeyboardInterrupt raised just after the first
    ``Condition.__enter__`` that code of ``module`` runs took the lock (the return of its
    C acquire); whether it was. Only ``module``'s: a finalizer of an earlier test's
    object may enter a condition of its own meanwhile."""

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if (
            event == "c_return"
            and frame.f_code is threading.Condition.__enter__.__code__
            and frame.f_back is not None
            and frame.f_back.f_code.co_filename.endswith(module)
        ):
            sys.setprofile(None)
            raise KeyboardInterrupt

    sys.setprofile(profile)
    try:
        call()
    except KeyboardInterrupt:
        return True
    finally:
        sys.setprofile(None)
    return False


def test_the_server_stops_after_a_stop_as_its_wait_takes_the_lock() -> None:
    """The second site the injection found once the outboxes were fixed: a stop right
    after ``with self._changed:`` took the server's lock (its quorum wait) kept it, and
    ``stop`` waited for gRPC's threads, one of which (a session's end) waited for that
    lock. The interrupted thread stops the server, as ``secagg server``'s main thread
    does; it is not the test's own, so that a hang fails the join, not the run (and the
    transport is then left as it is: its lock is that thread's)."""
    server = _server()
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    client.connect(timeout=BOUND)
    assert wait_until(lambda: "branch-a" in server.connected())
    interrupted: list[bool] = []

    def wait_interrupted_then_stop() -> None:
        interrupted.append(
            _stopped_as_a_condition_is_entered(
                lambda: server.wait_for_sessions(0, 0.001), "grpc_server.py"
            )
        )
        server.stop(grace=0)

    thread = threading.Thread(target=wait_interrupted_then_stop, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert interrupted == [True]
    assert not thread.is_alive(), "stop() hung: the interrupted wait kept the server's lock"
    client.close()


def test_a_branch_stopped_anywhere_in_a_send_can_send_on(
    session: tuple[GrpcServerTransport, GrpcClientTransport],
) -> None:
    """A branch's send stopped after its put and before it counted the message's id
    queued a message whose id the next send repeated: the server refused the stream
    ("message id N, expected N+1") and ended the session, so a transport a caller went
    on with after an interrupt (an embedding program that caught it) lost its session.
    The ids are numbered by the thread that writes the messages now, which no signal
    reaches: every message the interrupted sends queued, and one sent after them,
    arrive on the open session (second review of the stop handling, 2026-12-07)."""
    server, client = session
    point = 0
    while _stopped_at(point := point + 1, lambda: client.send(b"update")):
        pass
    assert point > 10
    client.send(b"after the stops")
    received: list[bytes] = []
    while not received or received[-1] != b"after the stops":
        message = server.receive(BOUND)
        assert message is not None, f"the session ended after {received}"
        received.append(message[1])
    assert set(received[:-1]) <= {b"update"}
    assert "branch-a" in server.connected()
