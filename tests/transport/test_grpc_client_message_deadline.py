"""A message from the server must be whole within the client's ``message_receive_timeout``
of its first frame.

Transport review (2026-12-06): a client (a branch, the key holder) had no time bound on
a message the server had begun: a server sending one frame of a message now and then
kept up to the client's budget of unread bytes (at least 64 MiB) in the branch for as
long as it kept the connection. Now such a message ends the session
(``DEADLINE_EXCEEDED``, ended locally; the partial message dropped), as the server
does to a branch; the messages before it are still returned first.

A raw gRPC server on loopback without TLS (the hostile server sends frames at its own
pace, which the transport's server does not); the deadline is made small, every wait
has a generous bound.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from _threads import BOUND

from secagg.errors import ConfigurationError
from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import (
    IDENTITY_METADATA_KEY,
    SERVICE_NAME,
    GrpcClientTransport,
    TransportClosed,
)

CHUNK = 1024
PACE = 0.05  # seconds between the hostile server's frames


class TricklingServer:
    """Accepts one session, sends one whole message, then a long message a frame at a
    time until told to stop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.server = grpc.server(ThreadPoolExecutor(4))
        handler = grpc.stream_stream_rpc_method_handler(
            self._session, request_deserializer=None, response_serializer=None
        )
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Session": handler}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _session(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        context.send_initial_metadata(((IDENTITY_METADATA_KEY, b"branch-a"),))
        yield from encode_frames(0, b"whole", CHUNK)
        for frame in encode_frames(1, bytes(CHUNK * 1000), CHUNK):  # 50 s at PACE
            if self.stop.wait(PACE):
                return
            yield frame
        self.stop.wait(BOUND)

    def close(self) -> None:
        self.stop.set()
        self.server.stop(grace=0)


@pytest.fixture
def trickling() -> Iterator[TricklingServer]:
    server = TricklingServer()
    yield server
    server.close()


def test_a_message_sent_a_frame_at_a_time_ends_the_session(trickling: TricklingServer) -> None:
    client = GrpcClientTransport(
        f"127.0.0.1:{trickling.port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        chunk_bytes=CHUNK,
        message_receive_timeout=1.0,
    )
    try:
        client.connect(timeout=BOUND)
        assert client.receive(timeout=BOUND) == b"whole"  # what came before is kept
        with pytest.raises(TransportClosed) as ended:
            client.receive(timeout=BOUND)  # long before the server is done sending
        assert ended.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "is not whole" in ended.value.details
        assert client.queued == (0, 0)
    finally:
        client.close()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), "60"])
def test_the_deadline_is_checked(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="message_receive_timeout"):
        GrpcClientTransport(
            "127.0.0.1:1",
            channel_credentials=None,
            allow_insecure=True,
            max_message_bytes=1 << 20,
            message_receive_timeout=bad,  # type: ignore[arg-type]
        )
