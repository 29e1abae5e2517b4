"""A session the server ends gives back its call, even while its writer waits on the peer.

Hostile review of the transport (2026-12-06): the server ends a session with a status
(superseded by a newer session of its identity, a revoked certificate, a broken
limit) by queueing that status for the session's writer. A writer inside gRPC's flow
control (a peer that reads nothing while the server writes to it) never came back to
see it, so the call stayed open: one of the server's ``max_clients`` concurrent calls
and one of its threads, for as long as the peer kept its connection. One enrolled
branch that reads nothing and reopens its session took a slot each time, until no
other branch could open a session. Only the outbox cap (``send``) cancelled such a
call. Now every end with a status cancels a call whose writer has not come back
within ``_ENDED_WRITER_GRACE_SECONDS``.

Real gRPC with TLS on loopback; every wait has a generous upper bound and ends on the
event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from secagg.apps import devca
from secagg.transport import certs, grpc_server
from secagg.transport.base import NotConnected
from secagg.transport.grpc_transport import (
    IDENTITY_METADATA_KEY,
    SESSION_METHOD,
    GrpcClientTransport,
    GrpcServerTransport,
)

BOUND = 60.0  # the upper bound of every wait: the events come within seconds
MESSAGE = 1 << 20
#: the server's two waits before it cancels such a call (10 s each in production), made
#: short here: what is checked is that the call is given back, not how long it waits
#: (at 10 s these two tests took 21 s of the suite's time)
SHORT_WAIT = 1.0


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grpc_server, "_ENDED_WRITER_GRACE_SECONDS", SHORT_WAIT)
    monkeypatch.setattr(grpc_server, "_HALF_CLOSE_END_SECONDS", SHORT_WAIT)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ended-writer")
    devca.init_ca(directory)
    for name in ("mallory", "branch-a"):
        devca.issue_client(directory, name)
    return directory


@pytest.fixture
def server(ca_dir: Path) -> Iterator[GrpcServerTransport]:
    verifier = certs.PeerVerifier(ca_dir)
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=lambda context: verifier.identify(context.auth_context()).name,
        max_message_bytes=MESSAGE,
        max_outbox_bytes=64 * MESSAGE,  # the outbox cap is not what ends it here
        max_clients=2,
    )
    transport.start()
    try:
        yield transport
    finally:
        transport.stop(grace=0)


def _silent_session(channel: grpc.Channel, stop: threading.Event) -> grpc.Call:
    """A session that sends nothing and reads nothing (its call is never iterated)."""

    def never_half_close() -> Iterator[bytes]:
        stop.wait(BOUND)
        yield from ()

    call = channel.stream_stream(
        SESSION_METHOD, request_serializer=None, response_deserializer=None
    )(never_half_close())
    assert any(key == IDENTITY_METADATA_KEY for key, _ in call.initial_metadata() or ())
    return call


def _wait_until_the_writer_stalls(server: GrpcServerTransport, name: str) -> None:
    """Until the bytes queued to ``name`` stop going out (the peer's window is full).

    A pause is the only sign of a stall; it decides only whether the old code is
    caught (a writer not stuck yet sees its end), never whether the fixed code passes."""
    deadline = time.monotonic() + BOUND
    with server._lock:
        left = server._sessions[name].outbox_bytes
    while True:
        threading.Event().wait(0.2)
        with server._lock:
            now = server._sessions[name].outbox_bytes
        if now == left and now > 0:
            return
        assert time.monotonic() < deadline, "the writer never stalled"
        left = now


def _honest_gets_in(ca_dir: Path, server: GrpcServerTransport) -> GrpcClientTransport | None:
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=certs.load_client_credentials(ca_dir, "branch-a").to_grpc(),
        max_message_bytes=MESSAGE,
    )
    try:
        client.connect(timeout=BOUND)
    except NotConnected:  # no call slot free
        client.close()
        return None
    return client


def test_a_superseded_session_stuck_writing_gives_its_call_back(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    stop = threading.Event()
    mallory = certs.load_client_credentials(ca_dir, "mallory").to_grpc()
    channels = [grpc.secure_channel(f"127.0.0.1:{server.port}", mallory) for _ in range(2)]
    try:
        calls = [_silent_session(channels[0], stop)]  # kept: a dropped call is cancelled
        for _ in range(32):  # 32 MiB: far past any HTTP/2 window, under the outbox cap
            server.send("mallory", bytes(MESSAGE))
        first_id = server.session_id("mallory")
        _wait_until_the_writer_stalls(server, "mallory")
        calls.append(
            _silent_session(channels[1], stop)
        )  # supersedes the first, whose writer is stuck
        assert server.session_id("mallory") != first_id
        deadline = time.monotonic() + BOUND
        while (honest := _honest_gets_in(ca_dir, server)) is None:  # each try waits on gRPC
            assert time.monotonic() < deadline, "the superseded session's call was never freed"
        with honest:
            honest.send(b"still served")
            assert server.receive(timeout=BOUND) == ("branch-a", b"still served")
    finally:
        stop.set()
        for channel in channels:
            channel.close()


def test_a_half_closed_session_stuck_writing_gives_its_call_back(ca_dir: Path) -> None:
    """The same through a half-close: a peer that ends its request stream and reads
    nothing was reported as a clean close while its call stayed open."""
    verifier = certs.PeerVerifier(ca_dir)
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=lambda context: verifier.identify(context.auth_context()).name,
        max_message_bytes=MESSAGE,
        max_outbox_bytes=64 * MESSAGE,
        max_clients=1,  # mallory's call takes the only one
    )
    server.start()
    half_close = threading.Event()
    channel = grpc.secure_channel(
        f"127.0.0.1:{server.port}", certs.load_client_credentials(ca_dir, "mallory").to_grpc()
    )
    try:
        call = _silent_session(channel, half_close)  # kept: a dropped call is cancelled
        for _ in range(32):
            server.send("mallory", bytes(MESSAGE))
        _wait_until_the_writer_stalls(server, "mallory")
        half_close.set()
        deadline = time.monotonic() + BOUND
        while (honest := _honest_gets_in(ca_dir, server)) is None:
            assert time.monotonic() < deadline, "the half-closed session's call was never freed"
        with honest:
            honest.send(b"still served")
            assert server.receive(timeout=BOUND) == ("branch-a", b"still served")
        assert call is not None
    finally:
        half_close.set()
        channel.close()
        server.stop(grace=0)
