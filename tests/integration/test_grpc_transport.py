"""The gRPC transport over real mTLS on loopback: framing, limits, refusals and events.

Certificates come from the federation's development CA (``secagg.apps.devca``), so
the names the server sees are the common names of real client certificates. Every
server binds 127.0.0.1:0 and clients dial the port it got.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from secagg.apps import devca
from secagg.errors import ConfigurationError, MalformedMessage, SecAggError
from secagg.transport import base, certs, inprocess
from secagg.transport.framing import (
    DEFAULT_CHUNK_BYTES,
    FRAME_VERSION,
    HEADER_BYTES,
    MalformedFrame,
    MessageTooLarge,
    Reassembler,
    encode_frames,
)
from secagg.transport.grpc_transport import (
    SESSION_METHOD,
    Connected,
    Disconnected,
    GrpcClientTransport,
    GrpcServerTransport,
    NotConnected,
    TransportClosed,
    TransportError,
)

MAX_MESSAGE = 32 << 20
CLIENTS = ("branch-a", "branch-b", "branch-c", "mallory", "replaced")


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca")
    devca.init_ca(directory)
    for name in CLIENTS:
        devca.issue_client(directory, name)
    return directory


def _identify(ca_dir: Path) -> Callable[[grpc.ServicerContext], str]:
    verifier = certs.PeerVerifier(ca_dir)
    return lambda context: verifier.identify(context.auth_context()).name


@pytest.fixture
def server(ca_dir: Path) -> Iterator[GrpcServerTransport]:
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        max_message_bytes=MAX_MESSAGE,
        identify=_identify(ca_dir),
    )
    transport.start()
    yield transport
    transport.stop(grace=1.0)


def _client(
    ca_dir: Path, server: GrpcServerTransport, name: str, **kwargs: object
) -> GrpcClientTransport:
    options: dict[str, object] = {"max_message_bytes": MAX_MESSAGE, **kwargs}
    return GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=certs.load_client_credentials(ca_dir, name).to_grpc(),
        **options,  # type: ignore[arg-type]
    )


def _raw_channel(ca_dir: Path, server: GrpcServerTransport, name: str) -> grpc.Channel:
    creds = certs.load_client_credentials(ca_dir, name).to_grpc()
    return grpc.secure_channel(f"127.0.0.1:{server.port}", creds)


def _wait_event(
    server: GrpcServerTransport, match: Callable[[object], bool], timeout: float = 5.0
) -> Connected | Disconnected:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = server.next_event(timeout=left)
        if event is not None and match(event):
            return event
    raise AssertionError("expected event did not arrive")


def _echo_once(server: GrpcServerTransport, client: GrpcClientTransport, payload: bytes) -> None:
    """One message each way through a live session, checked byte for byte."""
    client.send(payload)
    received = server.receive(timeout=5)
    assert received is not None and received[1] == payload
    server.send(received[0], payload[::-1])
    assert client.receive(timeout=5) == payload[::-1]


def _header(message_id: int, index: int, count: int, total: int, version: int = 1) -> bytes:
    return (
        version.to_bytes(1, "big")
        + b"\x00\x00\x00"
        + message_id.to_bytes(8, "big")
        + index.to_bytes(4, "big")
        + count.to_bytes(4, "big")
        + total.to_bytes(8, "big")
    )


# --- framing, without a network ----------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000])
def test_frames_round_trip_at_chunk_boundaries(size: int) -> None:
    payload = os.urandom(size)
    reassembler = Reassembler(max_message_bytes=10_000, chunk_bytes=1000)
    for message_id in range(2):
        frames = list(encode_frames(message_id, payload, 1000))
        assert len(frames) == max(1, -(-size // 1000))
        assert all(len(f) <= 1000 + HEADER_BYTES for f in frames)
        assert frames[0][0] == FRAME_VERSION
        results = [reassembler.feed(f) for f in frames]
        assert results[:-1] == [None] * (len(frames) - 1)
        assert results[-1] == payload


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        ([b"\x01\x00"], "shorter than the header"),
        ([_header(0, 0, 1, 1, version=2) + b"x"], "version"),
        ([b"\x01\x01" + _header(0, 0, 1, 1)[2:] + b"x"], "reserved"),
        ([_header(1, 0, 1, 1) + b"x"], "expected 0"),
        ([_header(0, 1, 2, 2) + b"x"], "starts at chunk 1"),
        ([_header(0, 0, 0, 0)], "chunks cannot carry"),
        ([_header(0, 0, 5, 2) + b"x"], "chunks cannot carry"),
        ([_header(0, 0, 2, 2) + b"x", _header(0, 2, 2, 2) + b"y"], "expected chunk 1/2"),
        ([_header(0, 0, 2, 2) + b"x", _header(0, 1, 2, 3) + b"y"], "expected chunk 1/2"),
        ([_header(0, 0, 2, 2) + b"x", _header(1, 0, 1, 1) + b"y"], "interleaved"),
        ([_header(0, 0, 2, 2) + b"xyz"], "overruns"),
        ([_header(0, 0, 1, 3) + b"xy"], "ends at 2 of 3"),
        ([_header(0, 0, 2, 2), _header(0, 1, 2, 2) + b"xy"], "empty chunk"),
        ([_header(0, 0, 1, 2000) + bytes(2000)], "exceeds 1000"),
    ],
)
def test_reassembler_refuses_malformed_frames(frames: list[bytes], error: str) -> None:
    reassembler = Reassembler(max_message_bytes=10_000, chunk_bytes=1000)
    with pytest.raises(MalformedFrame, match=error) as caught:
        for frame in frames:
            reassembler.feed(frame)
    assert isinstance(caught.value, MalformedMessage)  # the protocol layer's refusal type


def test_reassembler_refuses_declared_oversize_before_buffering() -> None:
    reassembler = Reassembler(max_message_bytes=100, chunk_bytes=1000)
    with pytest.raises(MessageTooLarge):
        reassembler.feed(_header(0, 0, 1, 101) + b"x")


def test_plaintext_needs_explicit_opt_in() -> None:
    with pytest.raises(ConfigurationError):
        GrpcServerTransport(
            "127.0.0.1:0", server_credentials=None, max_message_bytes=1, identify=str
        )
    with pytest.raises(ConfigurationError):
        GrpcClientTransport("127.0.0.1:1", channel_credentials=None, max_message_bytes=1)
    with pytest.raises(ConfigurationError):
        GrpcClientTransport(
            "127.0.0.1:1",
            channel_credentials=None,
            max_message_bytes=1,
            chunk_bytes=0,
            allow_insecure=True,
        )


# --- over the network --------------------------------------------------------------


def test_small_and_large_messages_both_ways_with_concurrent_clients(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    """Three branches at once, 20 MB each way (20 chunks), names taken from their certs."""
    names = ["branch-a", "branch-b", "branch-c"]
    big = os.urandom(20 << 20)
    payloads = {name: [name.encode(), b"", big[:-1] + name[-1].encode()] for name in names}
    stop = threading.Event()

    def echo() -> None:  # the server runtime: send every message back, reversed
        while not stop.is_set():
            message = server.receive(timeout=0.1)
            if message is not None:
                server.send(message[0], message[1][::-1])

    failures: list[BaseException] = []

    def branch(name: str) -> None:
        try:
            with _client(ca_dir, server, name) as client:
                assert client.connect(timeout=5) == name
                for payload in payloads[name]:
                    client.send(payload)
                for payload in payloads[name]:  # in order, each exactly
                    assert client.receive(timeout=20) == payload[::-1]
        except BaseException as exc:
            failures.append(exc)

    echoer = threading.Thread(target=echo, daemon=True)
    echoer.start()
    threads = [threading.Thread(target=branch, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop.set()
    echoer.join(5)
    assert not failures, failures
    seen = set()
    while (event := server.next_event()) is not None:
        if isinstance(event, Connected):
            seen.add(event.name)
    assert seen == set(names)


def test_send_to_unknown_client_and_oversized_send_raise(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    with pytest.raises(NotConnected):
        server.send("nobody", b"x")
    with _client(ca_dir, server, "branch-a") as client:
        client.connect(timeout=5)
        with pytest.raises(MessageTooLarge):
            client.send(bytes(MAX_MESSAGE + 1))
        with pytest.raises(MessageTooLarge):
            server.send("branch-a", bytes(MAX_MESSAGE + 1))
        _echo_once(server, client, b"still fine")  # a local refusal leaves the session open


def test_message_over_the_server_limit_aborts_only_that_stream(
    ca_dir: Path, server: GrpcServerTransport, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        _client(ca_dir, server, "branch-a") as honest,
        _client(ca_dir, server, "mallory", max_message_bytes=2 * MAX_MESSAGE) as greedy,
    ):
        honest.connect(timeout=5)
        greedy.connect(timeout=5)
        with caplog.at_level(logging.WARNING):
            greedy.send(bytes(MAX_MESSAGE + 1))
            with pytest.raises(TransportClosed) as closed:
                greedy.receive(timeout=10)
        assert closed.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        event = _wait_event(server, lambda e: isinstance(e, Disconnected))
        assert event == Disconnected("mallory", event.reason)
        assert "too large" in event.reason
        assert "oversized message from mallory" in caplog.text
        assert server.receive(timeout=0.2) is None  # nothing of it was delivered
        assert server.connected() == {"branch-a"}
        _echo_once(server, honest, os.urandom(3 << 20))


def test_frame_above_grpc_limit_is_dropped_by_grpc(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    """A peer with a larger chunk size than agreed: gRPC's own limit refuses the frame."""
    with (
        _client(ca_dir, server, "branch-a") as honest,
        _client(ca_dir, server, "mallory", chunk_bytes=4 * DEFAULT_CHUNK_BYTES) as odd,
    ):
        honest.connect(timeout=5)
        odd.connect(timeout=5)
        odd.send(bytes(2 * DEFAULT_CHUNK_BYTES))
        with pytest.raises(TransportClosed) as closed:
            odd.receive(timeout=10)
        assert closed.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        event = _wait_event(server, lambda e: isinstance(e, Disconnected))
        assert event.name == "mallory"  # the reason depends on which end noticed first
        _echo_once(server, honest, b"unaffected")


@pytest.mark.parametrize(
    "garbage",
    [
        [b"not a frame at all"],
        [os.urandom(200)],
        [_header(0, 0, 3, 30) + bytes(10), _header(0, 0, 3, 30) + bytes(10)],
        [_header(7, 0, 1, 1) + b"x"],
    ],
    ids=["text", "random", "repeated-chunk", "wrong-message-id"],
)
def test_malformed_frames_close_that_stream_with_invalid_argument(
    ca_dir: Path,
    server: GrpcServerTransport,
    caplog: pytest.LogCaptureFixture,
    garbage: list[bytes],
) -> None:
    with _client(ca_dir, server, "branch-a") as honest:
        honest.connect(timeout=5)
        channel = _raw_channel(ca_dir, server, "mallory")
        try:
            stream = channel.stream_stream(SESSION_METHOD)  # raw bytes, no (de)serializers
            with caplog.at_level(logging.WARNING), pytest.raises(grpc.RpcError) as failed:
                list(stream(iter(garbage), timeout=10))
        finally:
            channel.close()
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed frame" in failed.value.details()
        assert "malformed frame from mallory" in caplog.text
        event = _wait_event(server, lambda e: isinstance(e, Disconnected))
        assert event.name == "mallory" and event.reason.startswith("malformed frame")
        _echo_once(server, honest, os.urandom(1500))


def test_disconnects_are_reported_after_the_last_message(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    client = _client(ca_dir, server, "branch-a")
    client.connect(timeout=5)
    assert _wait_event(server, lambda e: isinstance(e, Connected)).name == "branch-a"
    assert server.connected() == {"branch-a"}
    client.send(b"last words")
    client.close()
    event = _wait_event(server, lambda e: isinstance(e, Disconnected))
    assert event == Disconnected("branch-a", "client closed the session")
    assert server.receive(timeout=0) == ("branch-a", b"last words")  # queued before the event
    assert server.connected() == set()
    with pytest.raises(NotConnected):
        server.send("branch-a", b"too late")
    with pytest.raises(NotConnected):
        client.send(b"after close")

    # an abrupt loss (the channel vanishes without half-closing) is a disconnect too
    channel = _raw_channel(ca_dir, server, "branch-b")
    idle = threading.Event()
    call = channel.stream_stream(SESSION_METHOD)(iter(idle.wait, True))
    assert call.initial_metadata() is not None
    assert _wait_event(server, lambda e: isinstance(e, Connected)).name == "branch-b"
    channel.close()
    idle.set()
    event = _wait_event(server, lambda e: isinstance(e, Disconnected))
    assert event.name == "branch-b"  # gRPC may show a cancel as a clean end or as a failure
    assert server.connected() == set()


def test_client_without_certificate_cannot_connect(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    with _client(ca_dir, server, "branch-a") as honest:
        honest.connect(timeout=5)
        roots = certs.load_client_credentials(ca_dir, "branch-a").root_certificates
        anonymous = GrpcClientTransport(
            f"127.0.0.1:{server.port}",
            channel_credentials=grpc.ssl_channel_credentials(root_certificates=roots),
            max_message_bytes=MAX_MESSAGE,
        )
        with pytest.raises(NotConnected):
            anonymous.connect(timeout=1.0)
        anonymous.close()
        assert server.connected() == {"branch-a"}
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
        assert [(type(e), e.name) for e in events] == [(Connected, "branch-a")]
        _echo_once(server, honest, b"unaffected")


def test_identity_refusal_is_unauthenticated_and_logged(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = certs.PeerVerifier(ca_dir, allowed={"branch-a"})
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        max_message_bytes=MAX_MESSAGE,
        identify=lambda context: verifier.identify(context.auth_context()).name,
    )
    transport.start()
    try:
        with caplog.at_level(logging.WARNING), _client(ca_dir, transport, "mallory") as stranger:
            with pytest.raises(TransportClosed) as refused:
                stranger.connect(timeout=5)
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "refused session from" in caplog.text and "unknown client name" in caplog.text
        assert transport.next_event() is None  # a refused stream never counted as connected
        with _client(ca_dir, transport, "branch-a") as admitted:
            assert admitted.connect(timeout=5) == "branch-a"
            _echo_once(transport, admitted, b"welcome")
    finally:
        transport.stop(grace=1.0)


def test_reconnect_under_the_same_name_replaces_the_old_session(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    first = _client(ca_dir, server, "replaced")
    first.connect(timeout=5)
    with _client(ca_dir, server, "replaced") as second:
        second.connect(timeout=5)
        with pytest.raises(TransportClosed) as ended:
            first.receive(timeout=5)
        assert ended.value.code == grpc.StatusCode.ABORTED
        events = [server.next_event(timeout=1) for _ in range(3)]
        assert [type(e) for e in events] == [Connected, Disconnected, Connected]
        assert server.connected() == {"replaced"}
        _echo_once(server, second, b"the new session")
    first.close()


def test_server_name_override_for_a_target_outside_the_certificate(tmp_path: Path) -> None:
    devca.init_ca(tmp_path, server_names=("aggregator.bank.example",))
    devca.issue_client(tmp_path, "branch-a")
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(tmp_path).to_grpc(),
        max_message_bytes=1 << 20,
        identify=_identify(tmp_path),
    )
    transport.start()
    creds = certs.load_client_credentials(tmp_path, "branch-a").to_grpc()
    target = f"127.0.0.1:{transport.port}"
    try:
        mismatched = GrpcClientTransport(target, channel_credentials=creds, max_message_bytes=1)
        with pytest.raises(NotConnected):
            mismatched.connect(timeout=1.0)
        mismatched.close()
        with GrpcClientTransport(
            target,
            channel_credentials=creds,
            name_override="aggregator.bank.example",
            max_message_bytes=1 << 20,
        ) as client:
            assert client.connect(timeout=5) == "branch-a"
            _echo_once(transport, client, b"over an IP address")
    finally:
        transport.stop(grace=1.0)


# --- one error and one interface for both transports -------------------------------------


def test_both_transports_raise_the_one_not_connected(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    """One class, importable from base and from both transports, caught either way."""
    assert NotConnected is base.NotConnected is inprocess.NotConnected
    assert TransportError is base.TransportError
    assert issubclass(NotConnected, ConnectionError) and issubclass(NotConnected, SecAggError)
    assert issubclass(TransportClosed, NotConnected)
    assert inprocess.ServerEndpoint is base.ServerEndpoint
    assert inprocess.ClientEndpoint is base.ClientEndpoint
    hub = inprocess.InProcessHub()
    client = hub.connect("branch-a")
    client.close()
    raised = []
    for fail in (
        lambda: hub.send("nobody", b"x"),
        lambda: client.receive(timeout=0),
        lambda: server.send("nobody", b"x"),
    ):
        with pytest.raises(ConnectionError) as caught:  # what the server runtime catches
            fail()
        raised.append(caught.type)
    assert raised == [NotConnected] * 3


def test_both_transports_offer_the_endpoint_methods() -> None:
    """The protocols are structural; check the methods exist with the protocol's parameters."""
    hub = inprocess.InProcessHub()
    pairs = [
        (base.ServerEndpoint, inprocess.InProcessHub),
        (base.ServerEndpoint, GrpcServerTransport),
        (base.ClientEndpoint, type(hub.connect("x"))),
        (base.ClientEndpoint, GrpcClientTransport),
    ]
    for protocol, transport in pairs:
        for name in ("send", "receive", "connected"):
            if not hasattr(protocol, name):
                continue
            wanted = list(inspect.signature(getattr(protocol, name)).parameters)
            offered = list(inspect.signature(getattr(transport, name)).parameters)
            assert offered[: len(wanted)] == wanted, (transport.__name__, name)
