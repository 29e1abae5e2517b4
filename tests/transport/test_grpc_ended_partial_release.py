"""A session the server ends frees the message it was reassembling at once.

Transport review (2026-12-06, helper 213): a session ended for what it sent (a message
stalled mid-way, over its budget of unread bytes) or for who it is had its unread
messages dropped and :meth:`~GrpcServerTransport.queued_bytes` said 0, but the message
being reassembled stayed in the reader's reassembler until gRPC ended the call. When
the peer reads nothing and the server has something for it (a round start bigger than
HTTP/2's first window), the writer waits in flow control and the call ends only when
``_ENDED_WRITER_GRACE_SECONDS`` (10 s) cancels it: up to a budget's worth of memory
(``max_queued_bytes``) held after its session was gone and no longer counted, while
the same branch could open a new session with a new budget. Now the partial message is
dropped when the session ends.

A raw HTTP/2 peer (tests/_raw_h2.py) that never sends WINDOW_UPDATE; the reassemblers
the reader makes are recorded (a subclass in its place) so the test reads what they
hold. The grace is made long (60 s) so the old behaviour cannot pass by timing; every
wait is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from _raw_h2 import CHUNK, RawPeer, grpc_message, raw_server
from _threads import BOUND, wait_until

from secagg.transport import grpc_server
from secagg.transport.framing import Reassembler, encode_frames
from secagg.transport.grpc_transport import Connected, Disconnected, GrpcServerTransport

STALL = 0.1  # partial_idle_timeout


class _Recorded(Reassembler):
    """A reassembler that keeps a list of its instances, for the test to look into."""

    made: ClassVar[list[Reassembler]] = []

    def __init__(self, max_message_bytes: int, chunk_bytes: int) -> None:
        super().__init__(max_message_bytes, chunk_bytes)
        _Recorded.made.append(self)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[GrpcServerTransport]:
    monkeypatch.setattr(grpc_server, "_ENDED_WRITER_GRACE_SECONDS", 60.0)
    monkeypatch.setattr(grpc_server, "Reassembler", _Recorded)
    _Recorded.made.clear()
    with raw_server(1 << 17, partial_idle_timeout=STALL) as transport:
        yield transport


def test_a_session_ended_mid_message_frees_the_partial_message_at_once(
    server: GrpcServerTransport,
) -> None:
    first, _ = encode_frames(0, b"x" * (CHUNK + 76), CHUNK)
    peer = RawPeer(server.port)
    try:
        assert isinstance(server.next_event(timeout=BOUND), Connected)
        # more than the 65 535 bytes of window HTTP/2 grants before a WINDOW_UPDATE,
        # which this peer never sends: the server's writer waits in flow control
        server.send("mallory", b"z" * (1 << 16))
        peer.data(grpc_message(first))  # and nothing more: the message stalls
        ended = server.next_event(timeout=BOUND)
        assert isinstance(ended, Disconnected), ended
        assert "got no frame" in ended.reason
        (reassembler,) = _Recorded.made
        freed = wait_until(lambda: reassembler.buffered == 0, BOUND / 9)
        held = reassembler.buffered
    finally:
        peer.close()
    assert server.queued_bytes("mallory") == 0
    assert freed, f"the ended session's reader still holds {held} bytes of its message"
