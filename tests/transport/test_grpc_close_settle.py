"""A session's end is told from its call's end, waited on, not polled.

Known and left by earlier sessions (grpc_server.py, the reader's end): a clean
half-close "settled" for 25 polls of ``context.is_active()`` 10 ms apart before it was
reported, so that a dropped connection (which also ends the request stream without an
error) is not taken for a clean close. The call's termination callback, registered when
the session opens, already ends the session as "connection lost" the moment gRPC
notices; the reader now waits on that end (the transport's condition), with no wake-ups
in between. (Since 2026-12-06 no time decides it either: a half-close is answered with
the server's end of the stream and the call's end says how the session ended; see
test_grpc_drop_under_load.py.)

Checked as a mechanism, not a time: the module's ``time.sleep`` is replaced by one that
fails, so a reader that polls ends its session with "internal error" instead.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Iterator

import grpc
import pytest
from _threads import BOUND

import secagg.transport.grpc_server as server_module
from secagg.transport.grpc_transport import (
    SESSION_METHOD,
    Disconnected,
    GrpcClientTransport,
    GrpcServerTransport,
)

NAME = "branch-a"


def _polled(seconds: float) -> None:
    raise AssertionError(f"the reader polled (slept {seconds:g} s)")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[GrpcServerTransport]:
    clock = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    monkeypatch.setattr(server_module, "time", types.SimpleNamespace(**{**clock, "sleep": _polled}))
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        max_outbox_bytes=64 << 20,
        identify=lambda context: NAME,
        recheck_interval=None,
    )
    transport.start()
    try:
        yield transport
    finally:
        transport.stop(grace=0)


def _wait_for_half_close(server: GrpcServerTransport) -> None:
    """Until the server's reader saw the session's request stream end."""
    end = time.monotonic() + BOUND
    while True:
        with server._lock:
            session = server._sessions.get(NAME)
            if session is None or session.half_closed:
                return
            assert time.monotonic() < end, "the half-close never reached the reader"
            server._changed.wait(0.05)


def _disconnected(server: GrpcServerTransport) -> Disconnected:
    end = time.monotonic() + BOUND
    while time.monotonic() < end:
        event = server.next_event(timeout=end - time.monotonic())
        if isinstance(event, Disconnected):
            return event
    raise AssertionError("no Disconnected event")


def test_a_clean_close_is_told_as_one(server: GrpcServerTransport) -> None:
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    client.connect(timeout=BOUND)
    client.send(b"last words")
    client.close()
    assert _disconnected(server) == Disconnected(NAME, "client closed the session")
    assert server.receive(timeout=BOUND) == (NAME, b"last words")


def test_a_call_that_ends_after_its_half_close_is_a_lost_connection(
    server: GrpcServerTransport,
) -> None:
    """The request stream ends (a half-close), then the call goes before the client
    took the server's end: a drop, not a clean close. The server answers a half-close
    with its end at once (since 2026-12-06), so the end is kept behind data the client
    does not read (flow control holds it), or the client might take it before its
    cancel and have closed cleanly after all."""
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    half_close = threading.Event()

    def requests() -> Iterator[bytes]:
        half_close.wait(BOUND)
        return
        yield b""  # a generator that sends nothing

    try:
        call = channel.stream_stream(SESSION_METHOD)(requests())
        call.initial_metadata()  # the session is open
        for _ in range(32):  # 32 MiB, not read: far past any HTTP/2 window
            server.send(NAME, bytes(1 << 20))
        half_close.set()
        _wait_for_half_close(server)
        call.cancel()  # gone before it took the server's end
        event = _disconnected(server)
        assert event.name == NAME and event.reason == "connection lost", event
    finally:
        channel.close()
