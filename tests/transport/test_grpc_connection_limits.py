"""What anyone who reaches the server's port can make it hold: connections.

Hostile review of the transport (2026-12-05): the session limits (budgets, the session
rate, supersession) act on gRPC streams, but a *connection* was not bounded at all. A
TCP connection that never speaks was kept for gRPC's default handshake timeout of
120 s (measured: 50 silent sockets, all still open after 119 s), no cap limited how
many were open at once (each a file descriptor: a flood of them ran the process out
of descriptors, and with them its database and ledger), and a TLS connection of an
enrolled party that opens no session was kept for as long as it answered pings.

Real gRPC on loopback; every wait has a generous upper bound and ends on the event.
"""

from __future__ import annotations

import queue
import select
import socket
import time
from pathlib import Path

import grpc
import pytest

from secagg.apps import devca
from secagg.errors import ConfigurationError
from secagg.transport import certs
from secagg.transport.grpc_transport import (
    DEFAULT_HANDSHAKE_SECONDS,
    GrpcServerTransport,
    default_max_connections,
)

BOUND = 60.0  # the upper bound of every wait: the events come within seconds


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("connection-limits")
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    return directory


def _server(ca_dir: Path, **kwargs: object) -> GrpcServerTransport:
    verifier = certs.PeerVerifier(ca_dir)
    options: dict[str, object] = {"max_message_bytes": 1 << 20, **kwargs}
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=lambda context: verifier.identify(context.auth_context()).name,
        **options,  # type: ignore[arg-type]
    )
    server.start()
    return server


def _closed_by_server(
    sockets: list[socket.socket], bound: float, enough: int | None = None
) -> dict[int, float]:
    """Wait up to ``bound`` s for the server to close ``sockets`` (which send nothing),
    or until ``enough`` of them are closed; the index of each one closed and the
    seconds it took."""
    start = time.monotonic()
    open_ = dict(enumerate(sockets))
    closed: dict[int, float] = {}
    enough = len(sockets) if enough is None else enough
    while len(closed) < enough and (left := start + bound - time.monotonic()) > 0:
        ready, _, _ = select.select(list(open_.values()), [], [], min(left, 1.0))
        for sock in ready:
            try:
                data = sock.recv(1)
            except OSError:  # reset: closed too
                data = b""
            if not data:
                index = next(i for i, s in open_.items() if s is sock)
                closed[index] = time.monotonic() - start
                del open_[index]
    return closed


def test_the_default_handshake_timeout_is_given_to_grpc() -> None:
    """``DEFAULT_HANDSHAKE_SECONDS`` (10 s), not gRPC's 120 s, is what gRPC is told
    (that gRPC keeps to what it is told is the test below, with a shorter timeout)."""
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=str,
    )
    options = dict(server._connection_options)
    assert options["grpc.server_handshake_timeout_ms"] == DEFAULT_HANDSHAKE_SECONDS * 1000
    assert DEFAULT_HANDSHAKE_SECONDS <= 10.0


def test_a_silent_connection_is_closed_after_the_handshake_timeout(ca_dir: Path) -> None:
    """A connection that never starts its TLS handshake holds a descriptor for
    ``handshake_timeout`` seconds, not gRPC's 120 s. (1 s here: at the default 10 s
    this test took 10 s of the suite's time.)"""
    timeout = 1.0
    server = _server(ca_dir, handshake_timeout=timeout)
    sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        closed = _closed_by_server(sockets, bound=BOUND)
    finally:
        for sock in sockets:
            sock.close()
        server.stop(grace=None)
    assert sorted(closed) == [0, 1, 2], f"still open after {BOUND} s"
    assert max(closed.values()) < BOUND / 2  # gRPC's own 120 s would not have closed them


def test_connections_past_the_cap_are_refused_at_once(ca_dir: Path) -> None:
    """Past ``max_connections`` a new connection is closed at accept, while the ones
    within the cap stay until their handshake times out: a flood costs the process a
    bounded number of descriptors."""
    server = _server(ca_dir, max_clients=2, max_connections=4, handshake_timeout=BOUND)
    sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(7)]
    try:
        closed = _closed_by_server(sockets, bound=BOUND / 2, enough=3)
        # the ones within the cap wait for their handshake (BOUND): none is closed yet
        still_open, _, _ = select.select(
            [s for i, s in enumerate(sockets) if i not in closed], [], [], 0
        )
    finally:
        for sock in sockets:
            sock.close()
        server.stop(grace=None)
    assert len(closed) == 3, f"closed within {BOUND / 2} s: {sorted(closed)} of 7, cap 4"
    assert still_open == [], "a connection within the cap was closed before its timeout"


def test_an_enrolled_party_cannot_hold_idle_connections(ca_dir: Path) -> None:
    """A TLS connection that opens no session (a branch with a valid certificate,
    holding descriptors) is closed after ``idle_connection_timeout``; its channel
    leaves READY without any call made."""
    server = _server(ca_dir, idle_connection_timeout=1.0)
    credentials = certs.load_client_credentials(ca_dir, "branch-a").to_grpc()
    channel = grpc.secure_channel(
        f"127.0.0.1:{server.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", "localhost")],
    )
    states: queue.SimpleQueue[grpc.ChannelConnectivity] = queue.SimpleQueue()
    watch = states.put
    channel.subscribe(watch, try_to_connect=True)
    left_ready = False
    try:
        deadline = time.monotonic() + BOUND
        was_ready = False
        while (left := deadline - time.monotonic()) > 0:
            try:
                state = states.get(timeout=left)
            except queue.Empty:
                break
            if state is grpc.ChannelConnectivity.READY:
                was_ready = True
            elif was_ready:  # the server closed it (GOAWAY): IDLE, no call was made
                left_ready = True
                break
    finally:
        channel.unsubscribe(watch)
        channel.close()
        server.stop(grace=None)
    assert was_ready, "the channel never connected"
    assert left_ready, f"an idle connection was still open after {BOUND} s"


def test_the_default_cap_keeps_half_the_descriptors() -> None:
    """Half the soft descriptor limit, at most 4096, and never below two per client."""
    assert default_max_connections(100, descriptor_limit=1024) == 512
    assert default_max_connections(100, descriptor_limit=1 << 20) == 4096
    assert default_max_connections(400, descriptor_limit=1024) == 816
    assert default_max_connections(1) >= 18


@pytest.mark.parametrize(
    "options",
    [
        {"handshake_timeout": 0},
        {"handshake_timeout": float("nan")},
        {"idle_connection_timeout": -1.0},
        {"idle_connection_timeout": True},
        {"max_clients": 10, "max_connections": 10},
        {"max_connections": 2.5},
    ],
)
def test_connection_limits_are_checked(ca_dir: Path, options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        GrpcServerTransport(
            "127.0.0.1:0",
            server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
            max_message_bytes=1 << 20,
            identify=lambda context: "x",
            **options,  # type: ignore[arg-type]
        )
