"""What one authenticated branch can make the gRPC server hold, beyond its unread data.

Audit finding B: connection events went into an unbounded queue that nothing in the
runtime reads, and the messages queued to a branch that never reads grew without end.
Both are bounded now; these tests drive a real mTLS server on loopback the way a
hostile branch would (raw gRPC streams, no :class:`GrpcClientTransport` manners).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from secagg.apps import devca
from secagg.errors import ConfigurationError
from secagg.transport import certs, grpc_server, grpc_transport
from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import (
    IDENTITY_METADATA_KEY,
    SESSION_METHOD,
    THROTTLE_DETAIL,
    Connected,
    Disconnected,
    GrpcClientTransport,
    GrpcServerTransport,
    NotConnected,
)

BOUND = 60.0  # generous upper bound on every wait; nothing here is timed
MAX_MESSAGE = 1 << 20
NAMES = ("branch-a", "mallory")


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca")
    devca.init_ca(directory)
    for name in NAMES:
        devca.issue_client(directory, name)
    return directory


def _server(ca_dir: Path, **kwargs: object) -> GrpcServerTransport:
    verifier = certs.PeerVerifier(ca_dir)
    options: dict[str, object] = {"max_message_bytes": MAX_MESSAGE, **kwargs}
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=lambda context: verifier.identify(context.auth_context()).name,
        **options,  # type: ignore[arg-type]
    )
    transport.start()
    return transport


@pytest.fixture
def channel_to(ca_dir: Path) -> Iterator[Callable[[GrpcServerTransport, str], grpc.Channel]]:
    """Raw channels, closed after the test: a hostile branch needs no client transport."""
    opened: list[grpc.Channel] = []

    def make(server: GrpcServerTransport, name: str) -> grpc.Channel:
        creds = certs.load_client_credentials(ca_dir, name).to_grpc()
        channel = grpc.secure_channel(f"127.0.0.1:{server.port}", creds)
        opened.append(channel)
        return channel

    yield make
    for channel in opened:
        channel.close()


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition up to a generous bound (no fixed sleep decides the outcome)."""
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _accepted(call: grpc.Call) -> bool:
    """Whether the server accepted the session (it sends the name only then)."""
    return any(key == IDENTITY_METADATA_KEY for key, _ in call.initial_metadata() or ())


def test_unread_connection_events_are_bounded(
    ca_dir: Path, channel_to: Callable[[GrpcServerTransport, str], grpc.Channel]
) -> None:
    """B: a branch reopening sessions on one connection published two events a session
    into an unbounded queue nothing reads. Now only the newest 1024 wait; the rest are
    dropped and counted, and the last one is still the latest news. (The per-identity
    session rate, which refuses most of these sessions by default, is off here.)"""
    server = _server(ca_dir, session_burst=None)
    try:
        stream = channel_to(server, "mallory").stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )
        sessions = 0
        while sessions < 1100:
            call = stream(iter(()))  # open a session and half-close at once
            sessions += _accepted(call)
            call.cancel()
        _wait_for(lambda: not server.connected(), "the last session to end")
        pending = []
        while (event := server.next_event()) is not None:
            pending.append(event)
        assert len(pending) <= 1024 < 2 * sessions
        assert isinstance(pending[-1], Disconnected) and pending[-1].name == "mallory"
        assert server.dropped_events == 2 * sessions - len(pending)
    finally:
        server.stop(grace=1.0)


def test_a_branch_that_stops_reading_is_disconnected_at_the_outbox_cap(
    ca_dir: Path, channel_to: Callable[[GrpcServerTransport, str], grpc.Channel]
) -> None:
    """B: a branch that keeps its session open but reads nothing made the server keep
    every message sent to it (one model a round). Past ``max_outbox_bytes`` unsent, the
    send ends its session instead: logged, a Disconnected, gone from connected(), and
    the send raises a NotConnected, which the runtime already treats as that party
    being gone. The server's side of the call really ends although its writer waited
    inside gRPC's flow control: with room for one session, another branch gets in."""
    server = _server(ca_dir, max_outbox_bytes=2 * MAX_MESSAGE, max_clients=1)
    stop = threading.Event()

    def never_half_close() -> Iterator[bytes]:
        stop.wait(BOUND)
        yield from ()

    def honest_gets_in() -> GrpcClientTransport | None:
        client = GrpcClientTransport(
            f"127.0.0.1:{server.port}",
            channel_credentials=certs.load_client_credentials(ca_dir, "branch-a").to_grpc(),
            max_message_bytes=MAX_MESSAGE,
        )
        try:
            client.connect(timeout=BOUND)
        except NotConnected:  # the one slot is still taken
            client.close()
            return None
        return client

    try:
        stream = channel_to(server, "mallory").stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )
        silent = stream(never_half_close())  # its responses are not read
        assert _accepted(silent)
        with pytest.raises(NotConnected) as caught:
            for _ in range(256):  # 128 MiB: far past any HTTP/2 window
                server.send("mallory", bytes(MAX_MESSAGE // 2))
        assert isinstance(caught.value, grpc_transport.OutboxOverflow)
        assert "mallory" not in server.connected()
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
        assert any(
            isinstance(e, Disconnected) and e.name == "mallory" and "unsent" in e.reason
            for e in events
        )
        with pytest.raises(NotConnected):
            server.send("mallory", b"gone")
        deadline = time.monotonic() + BOUND
        while (honest := honest_gets_in()) is None:  # each try waits on gRPC, no sleep
            assert time.monotonic() < deadline, "the silent session's slot was never freed"
        with honest:
            honest.send(b"still served")
            assert server.receive(timeout=BOUND) == ("branch-a", b"still served")
            server.send("branch-a", bytes(MAX_MESSAGE))
            assert honest.receive(timeout=BOUND) == bytes(MAX_MESSAGE)
        with pytest.raises(grpc.RpcError) as ended:  # what was written is read, then the end
            for _ in silent:
                pass
        assert ended.value.code() in (
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
    finally:
        stop.set()
        server.stop(grace=1.0)


def test_a_reading_branch_is_never_cut_by_the_outbox_cap(ca_dir: Path) -> None:
    """The cap bounds what waits, not what is sent: a branch that reads takes many
    times the cap in full-size messages, each one queued right after the last."""
    server = _server(ca_dir, max_outbox_bytes=MAX_MESSAGE)
    try:
        with GrpcClientTransport(
            f"127.0.0.1:{server.port}",
            channel_credentials=certs.load_client_credentials(ca_dir, "branch-a").to_grpc(),
            max_message_bytes=MAX_MESSAGE,
        ) as client:
            client.connect(timeout=BOUND)
            for index in range(16):
                payload = index.to_bytes(4, "big") * (MAX_MESSAGE // 4)
                server.send("branch-a", payload)
                assert client.receive(timeout=BOUND) == payload
                _wait_for(lambda: server.connected() == {"branch-a"}, "the session to stay")
    finally:
        server.stop(grace=1.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_outbox_bytes": MAX_MESSAGE - 1},
        {"max_pending_events": 0},
        {"partial_idle_timeout": 0.0},
    ],
)
def test_outbox_event_and_stall_limits_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        GrpcServerTransport(
            "127.0.0.1:0",
            server_credentials=None,
            allow_insecure=True,
            max_message_bytes=MAX_MESSAGE,
            identify=str,
            **bad,  # type: ignore[arg-type]
        )


class _LeapClock:
    """The server module's clock: real time plus ``leap`` seconds, which a test sets to
    move every deadline computed before closer by that much (later ones are unmoved: both
    ends of them read the same clock)."""

    def __init__(self) -> None:
        self.leap = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.leap


def test_a_message_that_stops_mid_way_ends_its_session(
    ca_dir: Path,
    channel_to: Callable[[GrpcServerTransport, str], grpc.Channel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A: a partial message was held for as long as its sender kept the connection.
    Now a message whose next frame does not come within ``partial_idle_timeout`` ends
    the session (DEADLINE_EXCEEDED, Disconnected, its bytes freed); another is served.

    The stalled message's deadline is not waited out: once its frame is held, the
    server's clock leaps past it (the test waited the 2 s before)."""
    chunk = 1024
    clock = _LeapClock()
    monkeypatch.setattr(grpc_server, "time", clock)
    # the honest message below must get each next frame within this too: 0.2 s was a
    # race with the scheduler on a busy machine
    server = _server(ca_dir, chunk_bytes=chunk, partial_idle_timeout=2.0)
    stop = threading.Event()

    def first_chunk_then_silence() -> Iterator[bytes]:
        yield next(encode_frames(0, bytes(chunk + 1), chunk))
        stop.wait(BOUND)

    try:
        stream = channel_to(server, "mallory").stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )
        stalled = stream(first_chunk_then_silence())
        assert _accepted(stalled)
        _wait_for(lambda: server.queued_bytes("mallory") == chunk, "the first chunk held")
        clock.leap = 3.0  # past the stalled message's deadline (set with its chunk)
        server._wake.set()  # the server's timer looks again now
        assert stalled.exception(timeout=BOUND) is not None
        assert stalled.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
        assert any(
            isinstance(e, Disconnected) and e.name == "mallory" and "partial message" in e.reason
            for e in events
        )
        assert server.queued_bytes("mallory") == 0 and "mallory" not in server.connected()
        with GrpcClientTransport(
            f"127.0.0.1:{server.port}",
            channel_credentials=certs.load_client_credentials(ca_dir, "branch-a").to_grpc(),
            max_message_bytes=MAX_MESSAGE,
            chunk_bytes=chunk,
        ) as honest:
            honest.connect(timeout=BOUND)
            honest.send(bytes(10 * chunk + 7))  # eleven frames, none stalled
            assert server.receive(timeout=BOUND) == ("branch-a", bytes(10 * chunk + 7))
    finally:
        stop.set()
        server.stop(grace=1.0)


# --- what the server can make a client hold ---------------------------------------------


def _client(ca_dir: Path, server: GrpcServerTransport, **kwargs: object) -> GrpcClientTransport:
    return GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=certs.load_client_credentials(ca_dir, "branch-a").to_grpc(),
        max_message_bytes=MAX_MESSAGE,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("limits", "count", "size"),
    [
        ({"max_queued_messages": 64}, 200, 16),  # many small messages: the count
        ({"max_queued_bytes": MAX_MESSAGE}, 8, MAX_MESSAGE // 4),  # large ones: the bytes
    ],
)
def test_a_server_that_floods_a_client_ends_its_own_session(
    ca_dir: Path, limits: dict[str, int], count: int, size: int
) -> None:
    """Before: the client's inbox was an unbounded queue, so a server could grow a branch
    (busy training, or a key holder between rounds) without end: 4000 messages of 256
    KiB were 1000 MiB held. Now past its cap the client ends the session itself
    (RESOURCE_EXHAUSTED), drops what it held, and receive raises InboxOverflow, a
    NotConnected: for a branch, a lost session."""
    server = _server(ca_dir, max_outbox_bytes=1 << 40)  # a hostile server has no cap
    try:
        with _client(ca_dir, server, **limits) as client:
            client.connect(timeout=BOUND)
            try:
                for _ in range(count):
                    server.send("branch-a", bytes(size))
            except NotConnected:  # the client ended the session before all were sent
                pass
            _wait_for(lambda: "branch-a" not in server.connected(), "the client to end it")
            with pytest.raises(grpc_transport.InboxOverflow) as overflow:
                client.receive(timeout=BOUND)  # nothing of the flood is delivered
            assert overflow.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "holds unread" in str(overflow.value)
            assert isinstance(overflow.value, NotConnected)
            assert client.queued == (0, 0)  # freed at once
            with pytest.raises(grpc_transport.InboxOverflow):
                client.receive(timeout=0)  # and it stays ended
            with pytest.raises(NotConnected):
                client.send(b"late")
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
        assert any(isinstance(e, Disconnected) and e.name == "branch-a" for e in events)
    finally:
        server.stop(grace=1.0)


def test_a_flooded_branch_loses_its_session_and_nothing_else(ca_dir: Path) -> None:
    """The branch's loop reads the overflow as a lost session (serve() redials)."""
    import numpy as np

    from secagg.runtime.client import FederationClient

    server = _server(ca_dir, max_outbox_bytes=1 << 40)
    try:
        with _client(ca_dir, server, max_queued_messages=8) as transport:
            transport.connect(timeout=BOUND)
            for _ in range(9):  # while the branch trains, say: it is not reading
                server.send("branch-a", b"\x00")
            _wait_for(lambda: "branch-a" not in server.connected(), "the client to end it")
            branch = FederationClient("branch-a", lambda m: np.zeros_like(m), transport)
            with pytest.raises(grpc_transport.InboxOverflow):
                branch.run(idle_timeout=BOUND)
            assert branch.stats.refused_messages == 0  # none of the flood was handled
    finally:
        server.stop(grace=1.0)


def test_a_client_that_reads_is_never_cut_by_its_inbox_cap(ca_dir: Path) -> None:
    server = _server(ca_dir)
    try:
        with _client(ca_dir, server, max_queued_messages=2) as client:
            client.connect(timeout=BOUND)
            for index in range(64):
                server.send("branch-a", index.to_bytes(2, "big") * 1000)
                assert client.receive(timeout=BOUND) == index.to_bytes(2, "big") * 1000
            assert client.queued == (0, 0) and server.connected() == {"branch-a"}
    finally:
        server.stop(grace=1.0)


def test_a_client_whose_server_stops_reading_ends_the_session_at_its_outbox_cap(
    ca_dir: Path,
) -> None:
    """Before: the client's outbox had no bound, so a server that stopped reading (no
    HTTP/2 window) while it kept sending round starts made a branch queue one update
    per start without end. Now the send past ``max_outbox_bytes`` unsent is refused
    with OutboxOverflow (a NotConnected: a lost session) and the session ends."""
    server = _server(ca_dir, max_queued_messages=1)  # reads one message, then waits
    try:
        with _client(ca_dir, server, max_outbox_bytes=MAX_MESSAGE) as client:
            client.connect(timeout=BOUND)
            with pytest.raises(grpc_transport.OutboxOverflow) as overflow:
                for _ in range(512):  # 128 MiB: far past any HTTP/2 window
                    client.send(bytes(MAX_MESSAGE // 4))
            assert "not reading" in str(overflow.value)
            with pytest.raises(NotConnected):
                client.receive(timeout=BOUND)
            with pytest.raises(NotConnected):
                client.send(b"late")
            _wait_for(lambda: "branch-a" not in server.connected(), "the session to end")
    finally:
        server.stop(grace=1.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_queued_messages": 0},
        {"max_queued_bytes": MAX_MESSAGE - 1},
        {"max_outbox_bytes": MAX_MESSAGE - 1},
    ],
)
def test_client_inbox_limits_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        GrpcClientTransport(
            "127.0.0.1:1",
            channel_credentials=None,
            allow_insecure=True,
            max_message_bytes=MAX_MESSAGE,
            **bad,  # type: ignore[arg-type]
        )


# --- new sessions per identity ----------------------------------------------------------


def test_one_identity_opening_sessions_in_a_loop_is_throttled_and_no_other(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: every new session was admitted, however fast one identity opened them
    (a TLS handshake, a certificate check, a thread and two events each). Now a token
    bucket per client certificate refuses the excess with RESOURCE_EXHAUSTED before
    any of that, which the client raises as SessionThrottled; the identity's open
    session is left alone, another identity gets in, one log line per streak."""
    import logging

    server = _server(ca_dir, session_burst=3, session_rate=0.01)  # no refill in the test
    opened: list[GrpcClientTransport] = []

    def dial(name: str) -> GrpcClientTransport:
        client = GrpcClientTransport(
            f"127.0.0.1:{server.port}",
            channel_credentials=certs.load_client_credentials(ca_dir, name).to_grpc(),
            max_message_bytes=MAX_MESSAGE,
        )
        opened.append(client)
        client.connect(timeout=BOUND)
        return client

    try:
        for _ in range(2):
            dial("mallory").close()
        kept = dial("mallory")  # the third: the burst is spent
        with caplog.at_level(logging.WARNING, logger=grpc_transport.__name__):
            for attempt in range(5):
                with pytest.raises(grpc_transport.SessionThrottled) as throttled:
                    dial("mallory")
                assert throttled.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert str(throttled.value.details).startswith(THROTTLE_DETAIL)
                assert "retry in" in throttled.value.details
                assert not isinstance(throttled.value, grpc_transport.NotAccepted)
                assert server.throttled_sessions == attempt + 1
        lines = [r.getMessage() for r in caplog.records if THROTTLE_DETAIL in r.getMessage()]
        assert len(lines) == 1 and "mallory" in lines[0]  # once per streak, named
        assert server.connected() == {"mallory"}  # the refusals did not end its session
        kept.send(b"still here")
        assert server.receive(timeout=BOUND) == ("mallory", b"still here")
        honest = dial("branch-a")  # another identity is not affected
        honest.send(b"hello")
        assert server.receive(timeout=BOUND) == ("branch-a", b"hello")
        connects = []
        while (event := server.next_event()) is not None:
            connects += [event.name] if isinstance(event, Connected) else []
        assert connects == ["mallory"] * 3 + ["branch-a"]  # no event for a refusal
    finally:
        for client in opened:
            client.close()
        server.stop(grace=1.0)


def test_the_session_bucket_refills_at_its_rate() -> None:
    rate = grpc_transport._SessionRate(burst=2, rate=0.5)
    assert rate.admit("k", 0.0) == (0.0, 0) and rate.admit("k", 0.0) == (0.0, 0)
    assert rate.admit("k", 0.0) == (2.0, 1)  # a token in 2 s; one refusal in a row
    assert rate.admit("k", 1.0) == (1.0, 2)  # a refusal takes nothing
    assert rate.admit("k", 2.0) == (0.0, 0)  # refilled one token
    assert rate.admit("other", 2.0) == (0.0, 0)  # buckets are per identity
    assert rate.admit("k", 100.0) == (0.0, 0) and rate.admit("k", 100.0) == (0.0, 0)
    assert rate.admit("k", 100.0)[0] > 0  # refilled to the burst, not beyond
    assert rate.refused == 3


@pytest.mark.parametrize(
    "bad",
    [{"session_burst": 0}, {"session_rate": 0.0}, {"session_rate": float("inf")}],
)
def test_session_rate_limits_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        GrpcServerTransport(
            "127.0.0.1:0",
            server_credentials=None,
            allow_insecure=True,
            max_message_bytes=MAX_MESSAGE,
            identify=str,
            **bad,  # type: ignore[arg-type]
        )
