"""A hand-made plaintext HTTP/2 client for tests of what gRPC's own client never sends:
a frame trickled a byte at a time, a stream that ends in the middle of a message.

No HTTP/2 library is a dependency of the project, and the few frames needed (the
preface, SETTINGS, one HEADERS block of literal fields, DATA, PING answers) are a few
lines each. Only for a server started with ``allow_insecure=True``: :func:`raw_server`
starts the one these tests share.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _plaintext_grpc import plaintext_server
from _threads import BOUND

from secagg.transport.grpc_transport import SESSION_METHOD, GrpcServerTransport

#: the chunk size of the server :func:`raw_server` starts: small, so a message of two
#: chunks (what a test cuts short) is a few kilobytes
CHUNK = 1024
#: the name the server :func:`raw_server` starts gives every session
PEER_NAME = "mallory"


@contextmanager
def raw_server(max_message_bytes: int = 1 << 16, **options: Any) -> Iterator[GrpcServerTransport]:
    """A started plaintext server on a free loopback port for a :class:`RawPeer`: chunks of
    :data:`CHUNK` bytes, every session named :data:`PEER_NAME`, ``options`` passed on (a
    test's deadlines); stopped at once when the block ends."""
    with plaintext_server(
        PEER_NAME, max_message_bytes=max_message_bytes, chunk_bytes=CHUNK, **options
    ) as transport:
        yield transport


def h2_frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, stream id, payload."""
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _literal(name: str, value: str) -> bytes:
    """One HPACK header field, literal without indexing, no Huffman (all short)."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def grpc_message(frame: bytes, *, compressed: bool = False) -> bytes:
    """One of our frames as a gRPC message: the compressed flag, 4-byte length, bytes
    (``compressed``: the bytes as the stream's ``grpc-encoding`` compressed them)."""
    return bytes([int(compressed)]) + len(frame).to_bytes(4, "big") + frame


def session_headers(port: int, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The HEADERS block that opens a stream on the Session method of the server on
    ``port`` (``extra_headers`` after the usual ones)."""
    fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", SESSION_METHOD),
        (":authority", f"127.0.0.1:{port}"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *extra_headers,  # e.g. ("grpc-encoding", "gzip")
    ]
    return b"".join(_literal(*field) for field in fields)


class RawPeer:
    """A plaintext HTTP/2 client with one stream on the Session method; it answers
    the server's SETTINGS and PINGs (as a live hostile peer would) and sends what the
    test gives it, one DATA frame at a time; ``extra_headers`` go into its HEADERS
    block after the usual ones."""

    def __init__(self, port: int, extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        self._lock = threading.Lock()
        # the preface first: an answer to the server's SETTINGS must not precede it
        self._send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0))
        threading.Thread(target=self._answer, daemon=True).start()
        self._send(h2_frame(1, 0x4, 1, session_headers(port, extra_headers)))

    def _send(self, data: bytes) -> None:
        with self._lock:
            self._socket.sendall(data)

    def data(self, payload: bytes, *, end_stream: bool = False) -> None:
        """One DATA frame on the session's stream (``end_stream``: the half-close)."""
        self._send(h2_frame(0, 0x1 if end_stream else 0, 1, payload))

    def _answer(self) -> None:
        pending = b""
        while True:
            try:
                received = self._socket.recv(65536)
            except OSError:
                return
            if not received:
                return
            pending += received
            while len(pending) >= 9:
                length, kind, flags = int.from_bytes(pending[:3], "big"), pending[3], pending[4]
                if len(pending) < 9 + length:
                    break
                payload, pending = pending[9 : 9 + length], pending[9 + length :]
                try:
                    if kind == 4 and not flags & 1:  # SETTINGS: acknowledge
                        self._send(h2_frame(4, 1, 0))
                    elif kind == 6 and not flags & 1:  # PING: answer
                        self._send(h2_frame(6, 1, 0, payload))
                except OSError:
                    return

    def close(self) -> None:
        self._socket.close()
