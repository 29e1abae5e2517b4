"""A client that half-closes in the middle of a message has not closed cleanly.

Transport review (2026-12-06): a session whose client ended its request stream after
the first chunk of a two-chunk message, and took the server's end of the stream, was
reported exactly like a clean close (``Disconnected(name, "client closed the
session")``, one INFO line), its partial message dropped with no word anywhere. A
client of this transport never does that (it half-closes between messages), so it is
a broken or hostile peer, and an operator reading the log of a missing upload must
see it. Now the end says so (the reason names the message and the bytes dropped) and
is logged as a warning; a clean close between messages and a lost connection are
reported as before.

A raw HTTP/2 peer (tests/_raw_h2.py) against a real server on loopback; every wait
has a generous bound and ends on the event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from _raw_h2 import CHUNK, RawPeer, grpc_message, raw_server
from _threads import BOUND

from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import Connected, Disconnected, GrpcServerTransport

LOGGER = "secagg.transport.grpc_transport"


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    with raw_server() as transport:
        yield transport


def _ended(server: GrpcServerTransport) -> Disconnected:
    assert isinstance(server.next_event(timeout=BOUND), Connected)
    event = server.next_event(timeout=BOUND)
    assert isinstance(event, Disconnected), event
    return event


def test_a_half_close_mid_message_is_said_and_logged(
    server: GrpcServerTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    whole, first, _ = (
        *encode_frames(0, b"w" * 10, CHUNK),
        *encode_frames(1, b"x" * (CHUNK + 76), CHUNK),
    )
    peer = RawPeer(server.port)
    try:
        peer.data(grpc_message(whole))
        peer.data(grpc_message(first))
        peer.data(b"", end_stream=True)  # the half-close, the second chunk never sent
        ended = _ended(server)
    finally:
        peer.close()
    assert ended.reason != "client closed the session"
    assert "mid-message" in ended.reason
    assert f"{CHUNK} bytes of message 1 dropped" in ended.reason
    warned = [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.WARNING
    ]
    assert any("middle of a message" in line for line in warned), warned
    assert server.receive(timeout=0) == ("mallory", b"w" * 10)  # what was whole is kept


def test_a_half_close_between_messages_is_still_a_clean_close(
    server: GrpcServerTransport,
) -> None:
    (whole,) = encode_frames(0, b"w" * 10, CHUNK)
    peer = RawPeer(server.port)
    try:
        peer.data(grpc_message(whole))
        peer.data(b"", end_stream=True)
        ended = _ended(server)
    finally:
        peer.close()
    assert ended == Disconnected("mallory", "client closed the session")
