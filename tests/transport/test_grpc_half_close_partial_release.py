"""A half-close in the middle of a message frees the partial message at once.

Transport review (2026-12-06, helper 213): a client that half-closes after the first
chunk of a two-chunk message cannot finish it (its request stream is over), yet the
server's reader kept the chunks received in its reassembler, and counted them in
:meth:`~GrpcServerTransport.queued_bytes`, until the call ended: up to
``_HALF_CLOSE_END_SECONDS`` (10 s) when the peer takes no end of the stream (its
writer waits in flow control: the peer grants no HTTP/2 window). The wait is for the
call's end, which says how the session ended; the buffer has no reason to wait for it.
Now the partial message is dropped when the half-close is read. And when that wait ran
out, the end read "connection lost", with no word of the message dropped (the end of a
peer that takes the stream's end names it since 6ee8718); now it says mid-message and the
bytes dropped, in the reason and the warning.

A raw HTTP/2 peer (tests/_raw_h2.py) that never sends WINDOW_UPDATE, so a message of
64 KiB to it fills the connection's initial window and the server's writer waits.
The bound is made long (60 s) where the test looks at the session inside it, so the
old behaviour cannot pass by timing, and short (0.3 s) where it waits for the end;
every wait is bounded well past what it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from _raw_h2 import CHUNK, RawPeer, grpc_message, raw_server
from _threads import BOUND, wait_until

from secagg.transport import grpc_server
from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import Connected, Disconnected, GrpcServerTransport

LOGGER = "secagg.transport.grpc_transport"
#: the server's bound on a half-closed call: long where the test looks inside it, short
#: where it waits for its end
LONG, SHORT = 60.0, 0.3


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    with raw_server(1 << 17) as transport:
        yield transport


def _half_close_mid_message(server: GrpcServerTransport, peer: RawPeer) -> None:
    """Make the server's writer wait (the peer grants no window), send the first chunk
    of a two-chunk message and half-close: a session whose call cannot end yet."""
    first, _ = encode_frames(0, b"x" * (CHUNK + 76), CHUNK)
    assert isinstance(server.next_event(timeout=BOUND), Connected)
    # more than the 65 535 bytes of window HTTP/2 grants before a WINDOW_UPDATE, which
    # this peer never sends: the server's writer waits, so the call cannot end
    server.send("mallory", b"z" * (1 << 16))
    peer.data(grpc_message(first))
    assert wait_until(lambda: server.queued_bytes("mallory") == CHUNK, BOUND)
    peer.data(b"", end_stream=True)  # the half-close; the second chunk never comes


def test_a_half_close_mid_message_frees_the_partial_message_at_once(
    server: GrpcServerTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grpc_server, "_HALF_CLOSE_END_SECONDS", LONG)
    peer = RawPeer(server.port)
    try:
        _half_close_mid_message(server, peer)
        # well inside LONG: the session is still waiting for its call's end
        freed = wait_until(lambda: server.queued_bytes("mallory") == 0, BOUND / 9)
        still_open = "mallory" in server.connected()
    finally:
        peer.close()
    assert freed and still_open, (
        "the partial message was held after the half-close, until the session ended"
    )


def test_a_half_close_mid_message_that_takes_no_end_says_what_was_dropped(
    server: GrpcServerTransport, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grpc_server, "_HALF_CLOSE_END_SECONDS", SHORT)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    peer = RawPeer(server.port)
    try:
        _half_close_mid_message(server, peer)
        ended = server.next_event(timeout=BOUND)  # at SHORT
    finally:
        peer.close()
    assert isinstance(ended, Disconnected), ended
    assert ended.reason != "connection lost"
    assert "mid-message" in ended.reason
    assert f"{CHUNK} bytes of message 0 dropped" in ended.reason
    warned = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(f"{CHUNK} bytes of message 0 dropped" in line for line in warned), warned
