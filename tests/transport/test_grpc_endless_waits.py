"""A wait of ``inf`` seconds on the gRPC transport waits, instead of dying at once.

Review of the transport's timeouts (2026-12-05): ``connect(timeout=inf)``,
``receive(timeout=inf)`` (both ends) and ``next_event(timeout=inf)`` handed the value
to a lock's wait, which raised ``OverflowError: timestamp out of range for platform
time_t`` at once (so did any wait above ``threading.TIMEOUT_MAX``, about 292 years).
Such a wait is now clamped to ``threading.TIMEOUT_MAX``: it waits until the thing
happens, as ``inf`` asks.

Real gRPC on loopback (plaintext: the waits, not TLS, are under test); every wait
ends on the event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND

from secagg.transport.grpc_transport import (
    Connected,
    GrpcServerTransport,
)

ENDLESS = [float("inf"), threading.TIMEOUT_MAX * 2]


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    with plaintext_server() as transport:
        yield transport


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``call`` in a thread; its result, or the exception it raised, lands in the list."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:  # the test looks at it
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("endless", ENDLESS, ids=repr)
def test_an_endless_connect_connects(server: GrpcServerTransport, endless: float) -> None:
    client = plaintext_client(server)
    try:
        assert client.connect(timeout=endless) == "branch-a"
    finally:
        client.close()


@pytest.mark.parametrize("endless", ENDLESS, ids=repr)
def test_an_endless_next_event_ends_on_the_event(
    server: GrpcServerTransport, endless: float
) -> None:
    waiter, event = _in_thread(lambda: server.next_event(timeout=endless))
    client = plaintext_client(server)
    try:
        assert client.connect(timeout=BOUND) == "branch-a"
        waiter.join(BOUND)
        assert event and isinstance(event[0], Connected), event
    finally:
        client.close()


@pytest.mark.parametrize("endless", ENDLESS, ids=repr)
def test_an_endless_server_receive_ends_on_the_message(
    server: GrpcServerTransport, endless: float
) -> None:
    client = plaintext_client(server)
    try:
        assert client.connect(timeout=BOUND) == "branch-a"
        waiter, received = _in_thread(lambda: server.receive(timeout=endless))
        client.send(b"to the server")
        waiter.join(BOUND)
        assert received == [("branch-a", b"to the server")]
    finally:
        client.close()


@pytest.mark.parametrize("endless", ENDLESS, ids=repr)
def test_an_endless_client_receive_ends_on_the_message(
    server: GrpcServerTransport, endless: float
) -> None:
    client = plaintext_client(server)
    try:
        assert client.connect(timeout=BOUND) == "branch-a"
        waiter, answer = _in_thread(lambda: client.receive(timeout=endless))
        server.send("branch-a", b"to the branch")
        waiter.join(BOUND)
        assert answer == [b"to the branch"]
    finally:
        client.close()
