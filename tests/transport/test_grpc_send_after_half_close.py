"""A send to a session whose client has half-closed is refused, not lost in silence.

Transport review (2026-12-07, helper 252): once the server's reader has read a client's
half-close it queues the end of the stream (what is queued, then ``OK``) on the session's
outbox, and the session stays registered until the call has ended, which says how it
ended (up to ``_HALF_CLOSE_END_SECONDS`` for a peer that takes no end). A
:meth:`~GrpcServerTransport.send` in that window was accepted and queued *behind* the end
marker: the writer never reached it, the sender got no error, and the message was gone
(also through ``send_to_session``, which the runtime uses for a round's messages). Now
such a send raises :class:`~secagg.transport.base.NotConnected` saying the client closed
its session; what was queued before the half-close is still written.

A raw HTTP/2 peer (tests/_raw_h2.py) that never sends WINDOW_UPDATE: a message of 64 KiB
to it fills the connection's initial window, so the server's writer waits and the call
cannot end while the test looks. The server's bound on the half-closed call is made long
(60 s) so the old behaviour cannot pass by the session ending meanwhile; every wait ends
on its event.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _raw_h2 import CHUNK, PEER_NAME, RawPeer, grpc_message, raw_server
from _threads import BOUND, wait_until

from secagg.transport import grpc_server
from secagg.transport.base import NotConnected, PeerClosing
from secagg.transport.framing import encode_frames
from secagg.transport.grpc_transport import Connected, GrpcServerTransport

#: the server's bound on a half-closed call: long, so the session lasts while the test looks
LONG = 60.0


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[GrpcServerTransport]:
    monkeypatch.setattr(grpc_server, "_HALF_CLOSE_END_SECONDS", LONG)
    with raw_server(1 << 17) as transport:
        yield transport


def _half_closed(server: GrpcServerTransport, peer: RawPeer) -> int:
    """Open a session, make its writer wait (the peer grants no window), half-close it
    and wait until the server has read the half-close; the session's id."""
    assert isinstance(server.next_event(timeout=BOUND), Connected)
    session = server.session_id(PEER_NAME)
    assert session is not None
    # more than the 65 535 bytes of window HTTP/2 grants before a WINDOW_UPDATE, which
    # this peer never sends: the server's writer waits, so the call cannot end
    server.send(PEER_NAME, b"z" * (1 << 16))
    peer.data(b"", end_stream=True)
    assert wait_until(lambda: server._sessions[PEER_NAME].half_closed, BOUND)
    return session


def test_a_send_after_the_half_close_raises_not_connected(server: GrpcServerTransport) -> None:
    peer = RawPeer(server.port)
    try:
        session = _half_closed(server, peer)
        with pytest.raises(NotConnected, match="closed its session"):
            server.send(PEER_NAME, b"never written")
        with pytest.raises(NotConnected, match="closed its session"):
            server.send_to_session(PEER_NAME, session, [b"never ", b"written"])
        # nothing was queued behind the end: the outbox holds the end marker only
        assert server._sessions[PEER_NAME].outbox_bytes == 0
    finally:
        peer.close()


def test_the_refusal_says_the_peer_is_closing_and_its_last_upload_is_delivered(
    server: GrpcServerTransport,
) -> None:
    """A client's normal end: its last upload, then its half-close. The send after it is
    refused as :class:`PeerClosing` (the runtime sends the round's key holder its request
    again when it is back: tests/runtime/test_keyholder_half_close_in_send.py; a branch
    is a dropout), and the upload read before the half-close still reaches the server:
    the session's end comes after what it queued. Before the refusal had a kind of its
    own it was a bare NotConnected for a session still listed under the same id."""
    peer = RawPeer(server.port)
    try:
        assert isinstance(server.next_event(timeout=BOUND), Connected)
        session = server.session_id(PEER_NAME)
        server.send(PEER_NAME, b"z" * (1 << 16))  # the writer waits: the call lasts
        (frame,) = encode_frames(0, b"last upload", CHUNK)
        peer.data(grpc_message(frame))
        peer.data(b"", end_stream=True)
        assert wait_until(lambda: server._sessions[PEER_NAME].half_closed, BOUND)
        with pytest.raises(PeerClosing, match="closed its session"):
            server.send_to_session(PEER_NAME, session, [b"round end"])
        assert server.session_id(PEER_NAME) == session  # still listed: hence the kind
        assert server.receive(timeout=BOUND) == (PEER_NAME, b"last upload")
    finally:
        peer.close()
