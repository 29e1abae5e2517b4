"""A dropped session is told as lost however late gRPC's event thread runs.

Hostile review of the transport (2026-12-06), the reader's end (grpc_server.py): a
dropped connection ends the request stream without an error, like a clean half-close,
and the call's cancellation is a second event of gRPC's one event thread, right
behind it. The reader told the two apart by waiting a quarter of a second for that
second event and then asking ``context.is_active()``. On a loaded server the event
thread can be later than that (a long computation holding the GIL, a starved CPU),
and the drop was logged "client closed the session" (reliability review D6/D8's
misreport, back under load). Now a half-close is answered with the server's end of
the stream, and the reason is read when the call has ended, from how it ended: no
time decides it.

The load is simulated where it matters: gRPC's handling of the call's close on the
server is made ``LATE`` seconds late, as a busy event thread makes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import grpc._server as grpc_server_internals
import pytest
from _threads import BOUND

from secagg.transport.grpc_transport import (
    SESSION_METHOD,
    Disconnected,
    GrpcClientTransport,
    GrpcServerTransport,
)

NAME = "branch-a"
LATE = 0.75  # seconds: three times the quarter of a second the reader waited
DROPS = 6


@pytest.fixture
def late_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """gRPC's event thread handles every call's close ``LATE`` seconds late."""
    original = grpc_server_internals._receive_close_on_server

    def late(state: Any) -> Callable[[Any], Any]:
        handle = original(state)

        def handle_late(event: Any) -> Any:
            time.sleep(LATE)
            return handle(event)

        return handle_late

    monkeypatch.setattr(grpc_server_internals, "_receive_close_on_server", late)


@pytest.fixture
def server(late_close: None) -> Iterator[GrpcServerTransport]:
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: NAME,
        recheck_interval=None,
        session_burst=None,
    )
    transport.start()
    try:
        yield transport
    finally:
        transport.stop(grace=0)


def _disconnected(server: GrpcServerTransport) -> Disconnected:
    end = time.monotonic() + BOUND
    while time.monotonic() < end:
        event = server.next_event(timeout=end - time.monotonic())
        if isinstance(event, Disconnected):
            return event
    raise AssertionError("no Disconnected event")


def test_a_dropped_connection_is_lost_when_the_event_thread_is_late(
    server: GrpcServerTransport,
) -> None:
    reasons = []
    for _ in range(DROPS):
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        release = threading.Event()

        def requests(release: threading.Event = release) -> Iterator[bytes]:
            release.wait(BOUND)  # never half-closes: the connection is dropped first
            return
            yield b""

        call = channel.stream_stream(SESSION_METHOD)(requests())
        call.initial_metadata()  # the session is open
        channel.close()  # a drop: the call goes without a half-close
        reasons.append(_disconnected(server).reason)
        release.set()
    assert reasons == ["connection lost"] * DROPS


def test_a_clean_close_is_still_told_as_one_when_the_event_thread_is_late(
    server: GrpcServerTransport,
) -> None:
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    client.connect(timeout=BOUND)
    client.send(b"last words")
    client.close(timeout=BOUND)
    assert _disconnected(server) == Disconnected(NAME, "client closed the session")
    assert server.receive(timeout=BOUND) == (NAME, b"last words")
