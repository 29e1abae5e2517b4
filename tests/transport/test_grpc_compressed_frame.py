"""A compressed frame is held to gRPC's size limit after it is decompressed.

Transport review (2026-12-06, helper 213), a check of the memory bound the transport's
specification states ("gRPC itself drops an oversized frame before Python sees it"):
gRPC decompresses a message whose stream says ``grpc-encoding: gzip`` before the
server sees it, so a frame of 520 bytes could be half a megabyte of zeros (at the
default chunk size, a gigabyte). It holds: the limit (``chunk_bytes`` + 64) applies to the
decompressed size, and such a frame ends the session (measured at the default 1 MiB
chunk: a 1 GiB bomb of 1 MB raised the server's peak memory by 3 MiB). A compressed
frame within the limit is delivered, so the refusal is the limit's, not compression
being off. Pinned here because nothing in this project sets it: a grpcio that changed
it would let one branch make the server inflate a gigabyte per frame.

A raw HTTP/2 peer (tests/_raw_h2.py) against a real server on loopback.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from _raw_h2 import CHUNK, RawPeer, grpc_message, raw_server
from _threads import BOUND

from secagg.transport.framing import FRAME_SLACK, encode_frames
from secagg.transport.grpc_transport import Connected, Disconnected, GrpcServerTransport

GZIP = (("grpc-encoding", "gzip"),)


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    with raw_server() as transport:
        yield transport


def test_a_compressed_frame_within_the_limit_is_delivered(server: GrpcServerTransport) -> None:
    (frame,) = encode_frames(0, b"y" * 500, CHUNK)
    peer = RawPeer(server.port, GZIP)
    try:
        assert isinstance(server.next_event(timeout=BOUND), Connected)
        peer.data(grpc_message(gzip.compress(frame), compressed=True))
        received = server.receive(timeout=BOUND)
    finally:
        peer.close()
    assert received == ("mallory", b"y" * 500)


def test_a_compressed_frame_over_the_limit_once_inflated_ends_the_session(
    server: GrpcServerTransport,
) -> None:
    bomb = gzip.compress(bytes(1 << 19))  # half a megabyte of zeros in about 520 bytes
    assert len(bomb) <= CHUNK + FRAME_SLACK  # under gRPC's limit as sent: only inflated is it over
    peer = RawPeer(server.port, GZIP)
    try:
        assert isinstance(server.next_event(timeout=BOUND), Connected)
        peer.data(grpc_message(bomb, compressed=True))
        ended = server.next_event(timeout=BOUND)
    finally:
        peer.close()
    assert isinstance(ended, Disconnected), ended
    assert server.receive(timeout=0) is None
