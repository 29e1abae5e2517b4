"""A message must be whole within ``message_receive_timeout`` of its first frame.

Transport review (2026-12-06): the server's stall bound (``partial_idle_timeout``,
300 s) restarts at every frame, so a branch sending one frame of a message just before
each deadline kept the message, and up to its budget of server memory, open for the
message's frames times 300 s (5 hours for 64 MiB in 1 MiB chunks), and with one byte
a second inside a frame, longer. Now a message not whole within
``message_receive_timeout`` of its first frame (default an hour) ends its session
(``DEADLINE_EXCEEDED``, a Disconnected, its bytes freed), like a stalled one.

Real gRPC with TLS on loopback; the deadline is made small here (a second), the stall
bound large, and every wait has a generous bound: the hostile sender keeps sending
well inside the stall bound until the server ends its session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from _threads import BOUND

from secagg.apps import devca
from secagg.errors import ConfigurationError
from secagg.transport import certs
from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import (
    IDENTITY_METADATA_KEY,
    SESSION_METHOD,
    Disconnected,
    GrpcClientTransport,
    GrpcServerTransport,
)

CHUNK = 1024
#: how often the hostile sender sends the next frame: far inside the stall bound
PACE = 0.05


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("message-deadline")
    devca.init_ca(directory)
    for name in ("branch-a", "mallory"):
        devca.issue_client(directory, name)
    return directory


@pytest.fixture
def server(ca_dir: Path) -> Iterator[GrpcServerTransport]:
    verifier = certs.PeerVerifier(ca_dir)
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=lambda context: verifier.identify(context.auth_context()).name,
        max_message_bytes=1 << 20,
        chunk_bytes=CHUNK,
        partial_idle_timeout=BOUND,
        message_receive_timeout=1.0,
    )
    transport.start()
    yield transport
    transport.stop(grace=1.0)


def test_a_message_sent_a_frame_at_a_time_ends_at_its_deadline(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    stop = threading.Event()
    frames = list(encode_frames(0, bytes(CHUNK * 1000), CHUNK))  # 1000 frames: 50 s at PACE

    def one_frame_at_a_time() -> Iterator[bytes]:
        for frame in frames:
            if stop.wait(PACE):
                return
            yield frame
        stop.wait(BOUND)

    channel = grpc.secure_channel(
        f"127.0.0.1:{server.port}",
        certs.load_client_credentials(ca_dir, "mallory").to_grpc(),
    )
    try:
        call = channel.stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )(one_frame_at_a_time())
        assert any(key == IDENTITY_METADATA_KEY for key, _ in call.initial_metadata() or ())
        assert call.exception(timeout=BOUND) is not None  # long before the sender is done
        assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert call.details() == "message took too long"
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
        ends = [e for e in events if isinstance(e, Disconnected) and e.name == "mallory"]
        assert len(ends) == 1 and "is not whole" in ends[0].reason, ends
        assert server.queued_bytes("mallory") == 0 and "mallory" not in server.connected()
    finally:
        stop.set()
        channel.close()


def test_whole_messages_within_the_deadline_are_delivered(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    with GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=certs.load_client_credentials(ca_dir, "branch-a").to_grpc(),
        max_message_bytes=1 << 20,
        chunk_bytes=CHUNK,
    ) as honest:
        honest.connect(timeout=BOUND)
        for size in (10 * CHUNK + 7, 3 * CHUNK, 1):  # each message gets its own deadline
            honest.send(bytes(size))
            assert server.receive(timeout=BOUND) == ("branch-a", bytes(size))
        assert "branch-a" in server.connected()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), True])
def test_the_deadline_is_checked(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="message_receive_timeout"):
        GrpcServerTransport(
            "127.0.0.1:0",
            server_credentials=None,
            allow_insecure=True,
            max_message_bytes=1 << 20,
            identify=str,
            message_receive_timeout=bad,
        )
