"""A server that ends its stream in the middle of a message has not ended it cleanly.

Transport review (2026-12-06): the client's reader took a stream that ended after the
first chunk of a two-chunk message exactly as a clean end ("server ended the
session"), the partial message dropped with no word anywhere. The transport's server
ends a stream between messages only, so a branch that lost a round start this way
must say so: the session's end now names the message and the bytes dropped, and is
logged as a warning; a clean end between messages reads as before.

A raw gRPC server on loopback without TLS (it ends the stream where the transport's
server never does); every wait has a generous bound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import grpc
import pytest
from _threads import BOUND

from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import (
    IDENTITY_METADATA_KEY,
    SERVICE_NAME,
    GrpcClientTransport,
    TransportClosed,
)

CHUNK = 1024
LOGGER = "secagg.transport.grpc_transport"


@contextmanager
def _served(frames: list[bytes], connected: threading.Event) -> Iterator[int]:
    """A server whose one session sends ``frames`` and then ends its stream (OK).

    It ends the stream only once the client's ``connect()`` has returned: a stream
    that ended before then fails the connect itself (on a busy machine the end can
    overtake the client's wait for the session), which is not the end tested here.
    """

    def session(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        context.send_initial_metadata(((IDENTITY_METADATA_KEY, b"branch-a"),))
        yield from frames
        connected.wait(BOUND)

    server = grpc.server(ThreadPoolExecutor(4))
    handler = grpc.stream_stream_rpc_method_handler(
        session, request_deserializer=None, response_serializer=None
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Session": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=0)


def _session_end(frames: list[bytes]) -> TransportClosed:
    """How a client's session ends after taking ``frames``: the whole message first."""
    connected = threading.Event()
    with _served(frames, connected) as port:
        client = GrpcClientTransport(
            f"127.0.0.1:{port}",
            channel_credentials=None,
            allow_insecure=True,
            max_message_bytes=1 << 16,
            chunk_bytes=CHUNK,
        )
        try:
            client.connect(timeout=BOUND)
            connected.set()
            assert client.receive(timeout=BOUND) == b"whole"  # what came whole is kept
            with pytest.raises(TransportClosed) as ended:
                client.receive(timeout=BOUND)
            return ended.value
        finally:
            client.close()


def test_a_stream_ended_mid_message_is_said_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    first, _ = encode_frames(1, b"x" * (CHUNK + 76), CHUNK)
    ended = _session_end([*encode_frames(0, b"whole", CHUNK), first])
    assert "mid-message" in ended.details
    assert f"{CHUNK} bytes of message 1 dropped" in ended.details
    warned = [record.getMessage() for record in caplog.records if record.name == LOGGER]
    assert any("in the middle of a message" in line for line in warned), warned


def test_a_stream_ended_between_messages_is_a_clean_end() -> None:
    ended = _session_end(list(encode_frames(0, b"whole", CHUNK)))
    assert ended.code == grpc.StatusCode.OK
    assert ended.details == "server ended the session"
