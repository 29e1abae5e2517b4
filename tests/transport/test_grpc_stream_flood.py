"""One connection holds at most ``MAX_STREAMS_PER_CONNECTION`` streams open at once, and
every client transport dials a connection of its own.

Liveness review (2026-12-07): the server set no HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
(gRPC's default: no limit), so one enrolled branch could open streams on one connection
as fast as it wrote HEADERS frames. Each one was queued for the session handler, which
refused it only then (the session rate's token bucket): 100 000 openings on one connection
raised the server's memory from 53 MB to 384 MB; 16 such connections held an honest
branch's messages up to 7.9 s and made its redial fail (measured on loopback with TLS,
``python /tmp/exp271/flood2.py 16 50000 0``). Now gRPC refuses a stream past the cap at
once (``REFUSED_STREAM``), before the handler, a thread or a token (the same flood: 111 MB,
1.3 s at most, the redial made).

The cap counts a connection's streams, and gRPC's global subchannel pool put the channels
of one process with the same target and arguments on one connection: plaintext clients in
one process shared it (measured with a cap of 8: the ninth never got its session). So a
client transport now asks for a connection of its own (one transport is one session).

A raw HTTP/2 peer (tests/_raw_h2.py) and plaintext clients on loopback; every wait ends
on its event, with a generous bound.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading

from _plaintext_grpc import plaintext_client, plaintext_server
from _raw_h2 import h2_frame, raw_server, session_headers
from _threads import BOUND

from secagg.transport.grpc_transport import MAX_STREAMS_PER_CONNECTION, Connected

#: stream openings sent down one connection at once: far past the cap
OPENINGS = 4 * MAX_STREAMS_PER_CONNECTION
CLIENTS = 10  # plaintext clients in one process
SETTINGS, RST_STREAM, PING = 4, 3, 6
MAX_CONCURRENT_STREAMS = 0x3  # the SETTINGS parameter
REFUSED_STREAM = 0x7  # the RST_STREAM error code


class _StreamFlood:
    """A plaintext HTTP/2 peer that reads the server's frames: the parameters of its
    SETTINGS, and the streams it refused."""

    def __init__(self, port: int) -> None:
        self.settings: dict[int, int] = {}
        self.settings_frames = 0  # the server's SETTINGS frames read (not acknowledgements)
        self.refused: set[int] = set()
        self.changed = threading.Condition()
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        self._lock = threading.Lock()
        self._send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(SETTINGS, 0, 0))
        threading.Thread(target=self._read, daemon=True).start()

    def _send(self, data: bytes) -> None:
        with self._lock:
            self._socket.sendall(data)

    def open_streams(self, headers: bytes, count: int) -> None:
        """``count`` new streams on the Session method in one write, none half-closed."""
        self._send(b"".join(h2_frame(1, 0x4, 1 + 2 * k, headers) for k in range(count)))

    def wait(self, condition: object) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, BOUND)  # type: ignore[arg-type]

    def _read(self) -> None:
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
                stream = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
                payload, pending = pending[9 : 9 + length], pending[9 + length :]
                with self.changed:
                    if kind == SETTINGS and not flags & 1:
                        self.settings_frames += 1
                        for at in range(0, len(payload) - 5, 6):
                            key, value = struct.unpack(">HI", payload[at : at + 6])
                            self.settings[key] = value
                    elif kind == RST_STREAM and payload == struct.pack(">I", REFUSED_STREAM):
                        self.refused.add(stream)
                    self.changed.notify_all()
                try:
                    if kind == SETTINGS and not flags & 1:
                        self._send(h2_frame(SETTINGS, 1, 0))
                    elif kind == PING and not flags & 1:
                        self._send(h2_frame(PING, 1, 0, payload))
                except OSError:
                    return

    def close(self) -> None:
        self._socket.close()


def test_streams_past_the_cap_are_refused_before_the_handler() -> None:
    """The server says its cap in its SETTINGS, and a burst of openings past it is
    refused by gRPC (REFUSED_STREAM), not queued for the session handler."""
    with raw_server() as server:
        flood = _StreamFlood(server.port)
        try:
            assert flood.wait(lambda: flood.settings_frames > 0), "the server sent no SETTINGS"
            assert flood.settings.get(MAX_CONCURRENT_STREAMS) == MAX_STREAMS_PER_CONNECTION, (
                f"the server's SETTINGS: {flood.settings} (no 3: no limit on streams)"
            )
            flood.open_streams(session_headers(server.port), OPENINGS)
            # at most the cap were open when the burst arrived; most of the rest refused
            assert flood.wait(lambda: len(flood.refused) >= OPENINGS // 2), (
                f"{len(flood.refused)} of {OPENINGS} openings refused by gRPC; "
                f"{server.throttled_sessions} reached the handler and were throttled"
            )
            assert server.throttled_sessions < OPENINGS // 2
        finally:
            flood.close()


def test_every_client_transport_has_a_connection_of_its_own() -> None:
    """Clients in one process each open their session from a connection of their own
    (their own peer address), not as streams of one shared connection."""
    serial = itertools.count()
    clients = []
    with plaintext_server(identify=lambda context: f"branch-{next(serial)}") as server:
        try:
            for _ in range(CLIENTS):
                client = plaintext_client(server)
                clients.append(client)
                client.connect(timeout=BOUND)
            peers = set()
            while (event := server.next_event(timeout=0)) is not None:
                if isinstance(event, Connected):
                    peers.add(event.peer)
            assert len(server.connected()) == len(clients)
            assert len(peers) == len(clients), f"{len(clients)} clients on {len(peers)} peers"
        finally:
            for client in clients:
                client.close(timeout=1)
