"""The gRPC transport over real mTLS on loopback: framing, limits, refusals and events.

Certificates come from the federation's development CA (``secagg.apps.devca``), so
the names the server sees are the common names of real client certificates. Every
server binds 127.0.0.1:0 and clients dial the port it got.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
#: seconds: the upper bound of a wait for something that must happen (a busy 2-core CI
#: machine stretches a moment into seconds; nothing here is timed)
BOUND = 120.0
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
    server: GrpcServerTransport, match: Callable[[object], bool], timeout: float = 60.0
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
    received = server.receive(timeout=60)
    assert received is not None and received[1] == payload
    server.send(received[0], payload[::-1])
    assert client.receive(timeout=60) == payload[::-1]


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
        (
            [_header(0, 0, 2, 1001) + bytes(1000), _header(0, 2, 2, 1001) + b"y"],
            "expected chunk 1/2",
        ),
        (
            [_header(0, 0, 2, 1001) + bytes(1000), _header(0, 1, 2, 1002) + b"y"],
            "expected chunk 1/2",
        ),
        ([_header(0, 0, 2, 1001) + bytes(1000), _header(1, 0, 1, 1) + b"y"], "interleaved"),
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
                assert client.connect(timeout=60) == name
                for payload in payloads[name]:
                    client.send(payload)
                for payload in payloads[name]:  # in order, each exactly
                    assert client.receive(timeout=60) == payload[::-1]
        except BaseException as exc:
            failures.append(exc)

    echoer = threading.Thread(target=echo, daemon=True)
    echoer.start()
    threads = [threading.Thread(target=branch, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
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
        client.connect(timeout=60)
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
        honest.connect(timeout=60)
        greedy.connect(timeout=60)
        with caplog.at_level(logging.WARNING):
            greedy.send(bytes(MAX_MESSAGE + 1))
            with pytest.raises(TransportClosed) as closed:
                greedy.receive(timeout=60)
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
        honest.connect(timeout=60)
        odd.connect(timeout=60)
        odd.send(bytes(2 * DEFAULT_CHUNK_BYTES))
        with pytest.raises(TransportClosed) as closed:
            odd.receive(timeout=60)
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
        honest.connect(timeout=60)
        channel = _raw_channel(ca_dir, server, "mallory")
        try:
            stream = channel.stream_stream(SESSION_METHOD)  # raw bytes, no (de)serializers
            with caplog.at_level(logging.WARNING), pytest.raises(grpc.RpcError) as failed:
                list(stream(iter(garbage), timeout=BOUND))
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
    client.connect(timeout=60)
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


def test_close_leaves_no_reader_thread_running(ca_dir: Path, server: GrpcServerTransport) -> None:
    """A closed session's reader has stopped when close() returns, even when close()
    does not wait for the server at all: a daemon thread left inside gRPC's core at
    interpreter exit can deadlock gRPC's shutdown, and a branch that had printed
    "finished" then never exited (seen once in CI)."""
    for _ in range(5):
        client = _client(ca_dir, server, "branch-a")
        client.connect(timeout=60)
        _echo_once(server, client, b"ping")
        client.close(timeout=0.0)  # no grace: straight to the cancel
        assert client._reader is not None and not client._reader.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "secagg-grpc-client-read"]


def test_client_without_certificate_cannot_connect(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    with _client(ca_dir, server, "branch-a") as honest:
        honest.connect(timeout=60)
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
                stranger.connect(timeout=60)
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "refused session from" in caplog.text and "unknown client name" in caplog.text
        assert transport.next_event() is None  # a refused stream never counted as connected
        with _client(ca_dir, transport, "branch-a") as admitted:
            assert admitted.connect(timeout=60) == "branch-a"
            _echo_once(transport, admitted, b"welcome")
    finally:
        transport.stop(grace=1.0)


def test_reconnect_under_the_same_name_replaces_the_old_session(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    first = _client(ca_dir, server, "replaced")
    first.connect(timeout=60)
    with _client(ca_dir, server, "replaced") as second:
        second.connect(timeout=60)
        with pytest.raises(TransportClosed) as ended:
            first.receive(timeout=60)
        assert ended.value.code == grpc.StatusCode.ABORTED
        events = [server.next_event(timeout=60) for _ in range(3)]
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
            assert client.connect(timeout=60) == "branch-a"
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


# --- back-pressure and the per-session budget (review finding M2) --------------------------


def _transport(ca_dir: Path, **kwargs: Any) -> GrpcServerTransport:
    options: dict[str, Any] = {"max_message_bytes": MAX_MESSAGE, **kwargs}
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=_identify(ca_dir),
        **options,
    )
    transport.start()
    return transport


class _Sampler:
    """Polls ``queued_bytes()`` on a thread; keeps the largest value seen."""

    def __init__(self, server: GrpcServerTransport) -> None:
        self.peak = 0
        self._server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._server.queued_bytes())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait on a condition with a generous upper bound (polled, no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_flooding_branch_is_held_back_and_the_others_are_served(ca_dir: Path) -> None:
    """M2: 64 x 512 KiB from one branch while the server reads nothing; its queue stops at
    max_queued_messages, the reader waits, HTTP/2 flow control holds the rest at the
    sender. Nothing is lost: once the server reads, every message arrives in order."""
    size, count, queue_limit, budget = 512 << 10, 64, 4, 4 << 20
    server = _transport(
        ca_dir, max_message_bytes=1 << 20, max_queued_messages=queue_limit, max_queued_bytes=budget
    )
    sampler = _Sampler(server)
    try:
        with (
            _client(ca_dir, server, "mallory", max_message_bytes=1 << 20) as flooder,
            _client(ca_dir, server, "branch-a", max_message_bytes=1 << 20) as honest,
        ):
            flooder.connect(timeout=60)
            honest.connect(timeout=60)
            for index in range(count):
                flooder.send(index.to_bytes(4, "big") + bytes(size - 4))
            _wait_for(
                lambda: server.queued_bytes("mallory") >= (queue_limit + 1) * size,
                BOUND,
                "the flooder's queue to fill",
            )
            held = server.queued_bytes("mallory")
            assert held <= budget and server.connected() == {"mallory", "branch-a"}
            honest.send(b"hello from an honest branch")
            seen: list[int] = []
            while True:  # honest messages get through, interleaved with the flood
                item = server.receive(timeout=60)
                assert item is not None
                if item[0] == "branch-a":
                    break
                seen.append(int.from_bytes(item[1][:4], "big"))
                assert len(seen) <= count
            server.send("branch-a", b"served")
            assert honest.receive(timeout=60) == b"served"
            while len(seen) < count:  # the rest of the flood, none lost, in order
                item = server.receive(timeout=60)
                assert item is not None and item[0] == "mallory"
                seen.append(int.from_bytes(item[1][:4], "big"))
            assert seen == list(range(count))
        peak = sampler.stop()
        assert peak <= budget
        logging.getLogger(__name__).info(
            "flood of %d MiB: peak queued %d bytes, budget %d", count * size >> 20, peak, budget
        )
    finally:
        sampler.stop()
        server.stop(grace=1.0)


def test_a_branch_over_its_byte_budget_is_closed_and_its_data_dropped(ca_dir: Path) -> None:
    """M2: with room for many messages but a 2 MiB budget, the fifth 512 KiB message ends
    the session (RESOURCE_EXHAUSTED, Disconnected), its unread data is freed at once, and
    another branch is served as before."""
    size, budget = 512 << 10, 2 << 20
    server = _transport(
        ca_dir, max_message_bytes=1 << 20, max_queued_messages=1000, max_queued_bytes=budget
    )
    sampler = _Sampler(server)
    try:
        with (
            _client(ca_dir, server, "mallory", max_message_bytes=1 << 20) as flooder,
            _client(ca_dir, server, "branch-a", max_message_bytes=1 << 20) as honest,
        ):
            flooder.connect(timeout=60)
            honest.connect(timeout=60)
            for _ in range(16):
                flooder.send(bytes(size))
            event = _wait_event(
                server, lambda e: isinstance(e, Disconnected) and e.name == "mallory", BOUND
            )
            assert "budget" in event.reason
            with pytest.raises(TransportClosed) as closed:
                while flooder.receive(timeout=60) is not None:
                    pass
            assert closed.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert server.queued_bytes("mallory") == 0 and server.connected() == {"branch-a"}
            _echo_once(server, honest, os.urandom(size))
        assert sampler.stop() <= budget
    finally:
        sampler.stop()
        server.stop(grace=1.0)


def test_queue_limits_are_checked() -> None:
    for bad in ({"max_queued_messages": 0}, {"max_queued_bytes": MAX_MESSAGE - 1}):
        with pytest.raises(ConfigurationError):
            GrpcServerTransport(
                "127.0.0.1:0",
                server_credentials=None,
                allow_insecure=True,
                max_message_bytes=MAX_MESSAGE,
                identify=str,
                **bad,  # type: ignore[arg-type]
            )


# --- identity during a session (review finding M4) -----------------------------------------


@pytest.fixture
def own_ca(tmp_path: Path) -> Path:
    """A CA of this test only: revoking here leaves the module's CA alone."""
    devca.init_ca(tmp_path / "ca")
    for name in ("branch-a", "branch-b"):
        devca.issue_client(tmp_path / "ca", name)
    return tmp_path / "ca"


def test_revoking_a_branch_ends_its_open_session(own_ca: Path) -> None:
    server = _transport(own_ca, recheck_interval=0.2)
    try:
        with (
            _client(own_ca, server, "branch-a") as doomed,
            _client(own_ca, server, "branch-b") as other,
        ):
            doomed.connect(timeout=60)
            other.connect(timeout=60)
            _echo_once(server, doomed, b"before")
            doomed.send(b"queued, never read")
            _wait_for(lambda: server.queued_bytes("branch-a") > 0, BOUND, "the message to queue")
            devca.revoke(own_ca, "branch-a")
            event = _wait_event(
                server, lambda e: isinstance(e, Disconnected) and e.name == "branch-a", BOUND
            )
            assert "identity no longer accepted" in event.reason and "revoked" in event.reason
            with pytest.raises(TransportClosed) as ended:
                doomed.receive(timeout=60)
            assert ended.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert server.queued_bytes("branch-a") == 0  # its unread message was dropped
            assert server.connected() == {"branch-b"}
            _echo_once(server, other, b"unaffected")
        with _client(own_ca, server, "branch-a") as again, pytest.raises(TransportClosed):
            again.connect(timeout=60)
    finally:
        server.stop(grace=1.0)


def test_recheck_sessions_on_demand_and_a_lost_revocation_list_fails_closed(
    own_ca: Path,
) -> None:
    """A list unreadable for a moment (a hand edit rewriting it in place) keeps the open
    sessions on the last good list; one that stays unreadable past the verifier's grace
    ends them (fail closed). The verifier's clock is injected: no sleeps."""
    now = [0.0]
    verifier = certs.PeerVerifier(own_ca, revocation_grace=30.0, clock=lambda: now[0])
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(own_ca).to_grpc(),
        max_message_bytes=MAX_MESSAGE,
        identify=lambda context: verifier.identify(context.auth_context()).name,
        recheck_interval=None,
    )
    server.start()
    listing = own_ca / "revoked.json"
    good = listing.read_bytes()
    try:
        with _client(own_ca, server, "branch-a") as client:
            client.connect(timeout=60)
            assert server.recheck_sessions() == []
            listing.write_bytes(good[: len(good) // 2])  # an edit half-way
            assert server.recheck_sessions() == []  # the last good list holds
            listing.unlink()
            now[0] = 29.0
            assert server.recheck_sessions() == []
            listing.write_bytes(good)  # the edit is done
            assert server.recheck_sessions() == []
            _echo_once(server, client, b"the session went on")
            listing.unlink()  # and now lost for good
            now[0] = 100.0
            assert server.recheck_sessions() == []  # a new episode's grace begins
            now[0] = 130.5
            assert server.recheck_sessions() == ["branch-a"]
            event = _wait_event(server, lambda e: isinstance(e, Disconnected))
            assert "revocation list not found" in event.reason
            assert "failing closed" in event.reason
    finally:
        server.stop(grace=1.0)


def _short_lived(ca_dir: Path, name: str, seconds: float) -> tuple[Path, Path]:
    """A certificate for ``name`` that expires ``seconds`` from now, and its key."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = cx509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(seconds=seconds))
        .add_extension(cx509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            cx509.SubjectAlternativeName([cx509.UniformResourceIdentifier(certs.client_uri(name))]),
            critical=False,
        )
        .add_extension(
            cx509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = ca_dir / f"{name}-short.pem", ca_dir / f"{name}-short.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


#: seconds a certificate in the expiry test lives, tried in turn: the session must open
#: and echo before its expiry, which takes well under a second on an idle machine; a
#: busy one that misses the first moves to the next (x509 keeps whole seconds, so 3 is
#: 2-3 s). 15 s was the only one before, and the test waited all of it
EXPIRY_LIFETIMES = (3, 15, 60)


def _ended_at_expiry(ca_dir: Path, lifetime: int) -> bool:
    """Open a session on a certificate that lives ``lifetime`` seconds and check that
    the server ends it when the certificate expires; False when the session could not
    even open and echo before the expiry (a machine too busy for this lifetime)."""
    from cryptography import x509 as cx509

    server = _transport(ca_dir, recheck_interval=None)  # expiry is enforced regardless
    try:
        cert_path, key_path = _short_lived(ca_dir, "branch-b", seconds=lifetime)
        expiry = cx509.load_pem_x509_certificate(cert_path.read_bytes()).not_valid_after_utc
        creds = certs.load_client_credentials(
            ca_dir, "branch-b", certificate=cert_path, key=key_path
        )
        with GrpcClientTransport(
            f"127.0.0.1:{server.port}",
            channel_credentials=creds.to_grpc(),
            max_message_bytes=MAX_MESSAGE,
        ) as client:
            try:
                assert client.connect(timeout=60) == "branch-b"
                _echo_once(server, client, b"while valid")
            except (TransportError, AssertionError):
                if dt.datetime.now(dt.UTC) >= expiry:
                    return False  # expired before it could open: a longer lifetime
                raise
            if dt.datetime.now(dt.UTC) >= expiry:
                return False  # opened, but the expiry may have come first: no proof
            event = _wait_event(
                server, lambda e: isinstance(e, Disconnected) and e.name == "branch-b", BOUND
            )
            assert "certificate expired" in event.reason
            assert dt.datetime.now(dt.UTC) >= expiry  # ended by the expiry, not before
            with pytest.raises(TransportClosed):
                client.receive(timeout=60)
        return True
    finally:
        server.stop(grace=1.0)


def test_a_session_ends_when_its_certificate_expires(own_ca: Path) -> None:
    assert any(_ended_at_expiry(own_ca, lifetime) for lifetime in EXPIRY_LIFETIMES), (
        f"no session opened and echoed within {EXPIRY_LIFETIMES[-1]} s"
    )


def test_peer_certificate_is_the_verified_client_certificate(
    ca_dir: Path, server: GrpcServerTransport
) -> None:
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import serialization

    assert server.peer_certificate("branch-a") is None
    with _client(ca_dir, server, "branch-a") as client:
        client.connect(timeout=60)
        der = server.peer_certificate("branch-a")
        issued = cx509.load_pem_x509_certificate((ca_dir / "clients" / "branch-a.pem").read_bytes())
        assert der == issued.public_bytes(serialization.Encoding.DER)
        assert server.peer_certificate("branch-b") is None
    _wait_event(server, lambda e: isinstance(e, Disconnected))
    assert server.peer_certificate("branch-a") is None


# --- TLS 1.3 minimum (review finding L4) ----------------------------------------------------


def _h2_session_request(host: str) -> bytes:
    """An HTTP/2 preface, SETTINGS and the HEADERS of one Session call (HPACK, no Huffman)."""

    def literal(index: int, value: bytes) -> bytes:  # literal without indexing, indexed name
        prefix = bytes([index]) if index < 15 else bytes([15, index - 15])
        return prefix + bytes([len(value)]) + value

    block = (
        b"\x83\x87"  # :method POST, :scheme https
        + literal(4, SESSION_METHOD.encode())
        + literal(1, host.encode())
        + literal(31, b"application/grpc")
        + b"\x00\x02te\x08trailers"
    )

    def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return (
            len(payload).to_bytes(3, "big")
            + bytes([kind, flags])
            + stream.to_bytes(4, "big")
            + payload
        )

    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    return preface + frame(4, 0, 0, b"") + frame(1, 4, 1, block)


class _Flag(logging.Handler):
    """Sets an event when a log record contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_tls12_session_is_refused_before_identify(
    ca_dir: Path, server: GrpcServerTransport, version: str
) -> None:
    """L4: Python's ssl module as the client, with a valid branch certificate, speaking
    HTTP/2 by hand. Over TLS 1.2 the handshake completes (grpcio has no minimum-version
    setting for servers) but the Session call is refused before identify runs; over
    TLS 1.3 the same bytes open a session."""
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca_dir / "ca.pem")
    context.load_cert_chain(
        ca_dir / "clients" / "branch-a.pem", ca_dir / "clients" / "branch-a.key"
    )
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    context.set_alpn_protocols(["h2"])
    flag = _Flag("the minimum is TLSv1.3")
    logger = logging.getLogger("secagg.transport.grpc_transport")
    logger.addHandler(flag)
    try:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() == version.replace("_", ".")
            tls.sendall(_h2_session_request("localhost"))
            if version == "TLSv1_2":
                assert flag.seen.wait(BOUND), "the TLS 1.2 session was not refused"
                assert server.next_event(timeout=0.5) is None  # never connected
            else:
                event = _wait_event(server, lambda e: isinstance(e, Connected), BOUND)
                assert event.name == "branch-a" and not flag.seen.is_set()
    finally:
        logger.removeHandler(flag)


def test_min_tls_version_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        GrpcServerTransport(
            "127.0.0.1:0",
            server_credentials=None,
            allow_insecure=True,
            max_message_bytes=1,
            identify=str,
            min_tls_version="SSLv3",
        )


_CIPHER_PROBE = """
import socket, ssl, sys
from pathlib import Path
from secagg.transport import certs
from secagg.transport.grpc_transport import GrpcServerTransport
ca = Path(sys.argv[1])
server = GrpcServerTransport("127.0.0.1:0", max_message_bytes=1 << 20, identify=lambda c: "x",
                             server_credentials=certs.load_server_credentials(ca).to_grpc())
port = server.start()
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(ca / "ca.pem")
context.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \\
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        print("handshake", tls.version())
except (ssl.SSLError, OSError) as exc:
    print("refused", type(exc).__name__)
server.stop(0)
"""


def test_the_environment_can_refuse_tls12_at_the_handshake(ca_dir: Path) -> None:
    """L4, handshake level: grpcio reads GRPC_SSL_CIPHER_SUITES once, at import. Listing only
    RSA suites leaves an ECDSA-keyed server (every key here is ECDSA P-256) no TLS 1.2 suite,
    so a TLS 1.2 handshake fails; TLS 1.3 suites are not governed by that list."""
    import subprocess
    import sys

    env = {**os.environ, "GRPC_SSL_CIPHER_SUITES": "ECDHE-RSA-AES128-GCM-SHA256"}
    out = subprocess.run(
        [sys.executable, "-c", _CIPHER_PROBE, str(ca_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip().startswith("refused"), out.stdout + out.stderr
