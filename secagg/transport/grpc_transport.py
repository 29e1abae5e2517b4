"""Message-oriented byte transport over gRPC with mutual TLS, for server and branches.

Theory of operation
-------------------
Branches sit behind firewalls that accept no inbound connection, so only clients
dial: each client opens ONE long-lived bidirectional stream, the *session*
(``/secagg.transport.v1.Transport/Session``), and the server talks back on that
same stream. There is no ``.proto`` file and no code generation: the method is
registered with :func:`grpc.method_handlers_generic_handler` and both ends pass
raw ``bytes`` through identity (de)serializers. The protocol layer above has its
own binary codec; this layer only moves opaque payloads and never unpickles or
interprets them.

Who is who. The server requires a client certificate (mTLS); a client without
one fails the TLS handshake and never reaches Python code. Once a stream is
open, the server asks the ``identify`` callable to map the connection (its
:class:`grpc.ServicerContext`, whose ``auth_context()`` holds the verified
certificate) to a client name. If ``identify`` raises or returns no name, the
stream is refused with ``UNAUTHENTICATED`` and the reason is logged. An accepted
client learns the name it was given from the initial metadata
(``secagg-client-name-bin``), which is also how :meth:`GrpcClientTransport.connect`
knows the session really is open (with TLS 1.3 a refused client certificate
only shows after the client believes the handshake is done). A second session
under a name that is already connected *replaces* the first (the old stream is
ended with ``ABORTED``): a branch that reconnects after a network failure must
not wait for keepalive to notice its half-open old connection, and both
sessions proved the same certificate identity anyway.

Framing. gRPC limits the size of one message, and a model update can be tens
of megabytes, so each logical message is cut into chunks of at most
``chunk_bytes`` and every chunk travels as one gRPC message (a *frame*)::

    offset size  field
    0      1     version        (1)
    1      1     flags          (0; reserved, must be zero)
    2      2     reserved       (0; must be zero)
    4      8     message id     (u64; 0, 1, 2, ... per stream and direction)
    12     4     chunk index    (u32; 0 .. chunk count - 1)
    16     4     chunk count    (u32; >= 1)
    20     8     total length   (u64; bytes of the whole message)
    28     ...   chunk data     (<= chunk_bytes; empty only for an empty message)

All integers are big-endian. The receiver reassembles strictly: message ids
consecutive from 0, chunk indices consecutive from 0, count and total repeated
unchanged on every chunk of a message, no chunk of another message in between,
no empty chunk in a non-empty message and exactly ``total`` bytes at the last
chunk. A declared total above the receiver's ``max_message_bytes`` is refused on
the *first* frame, before anything is buffered, and buffers grow only with data
actually received, so a peer cannot make the receiver allocate what it never
sends. gRPC's own ``grpc.max_receive_message_length`` and
``grpc.max_send_message_length`` are set to ``chunk_bytes + FRAME_SLACK`` on both
ends, so gRPC itself drops an oversized frame before Python sees it; both ends
must therefore use the same ``chunk_bytes`` (the default is 1 MiB).

Refusals. A sender checks its own ``max_message_bytes`` before queueing and
raises :class:`MessageTooLarge`. A receiver that nevertheless gets a message
declaring more than its limit aborts the whole stream with
``RESOURCE_EXHAUSTED``; a malformed frame aborts it with ``INVALID_ARGUMENT``.
Aborting (rather than an error frame and carrying on) is deliberate: a peer
that breaks the framing or the agreed limits is broken or hostile, and the round
treats it as a dropout. Each refusal is logged with its reason and touches only
the offending stream; other clients carry on.

Events. :meth:`GrpcServerTransport.receive` yields complete messages as
``(name, payload)`` tuples in arrival order, exactly like the in-process
transport. Connections are reported separately by
:meth:`GrpcServerTransport.next_event` as :class:`Connected` and
:class:`Disconnected` (with a reason). Ordering guarantee: ``Connected(name)`` is
published before any message of that session is, and ``Disconnected(name)``
after its last message was queued for :meth:`~GrpcServerTransport.receive`; once
a disconnect is published, nothing more from that session is delivered. The
runtime turns a ``Disconnected`` into a dropout.

Threads. The server is a synchronous ``grpc.server``: per session one pool
thread drives the response generator (the writer, blocked on an outbox queue)
and one daemon thread of ours consumes the request iterator (the reader). The
pool has ``max_clients + 4`` workers and ``maximum_concurrent_rpcs`` is
``max_clients``, so an extra stream is refused with ``RESOURCE_EXHAUSTED``
instead of waiting for a thread. All public methods are thread-safe.
:meth:`send` only queues: payloads are cut into frames lazily by the writer, so
one large payload sent to many clients is held in memory once, and gRPC's
flow control paces the writer.

Keepalive. A round can leave a client idle for minutes while the server waits
for the others, and firewalls and NAT boxes silently drop idle TCP flows
(often after 5 minutes, sometimes sooner). Clients therefore ping every 60 s
(20 s to answer) even when no data flows, with no cap on pings without data; the
server accepts pings from 30 s apart (below the client's interval, otherwise it
would answer with ``GOAWAY too_many_pings``), and pings every 120 s itself, so a
half-open session of a vanished client is noticed and reported as a disconnect
within a few minutes. No connection-age limit is set, because it would cut
long-lived sessions. The server binds with ``SO_REUSEPORT`` off, so a second
server on the same port fails loudly instead of silently sharing it.

Size: about 670 lines, a sixth of them this specification; the server and the client
transport share the session machinery and are kept together so the framing rules and
their two users are read side by side (the framing itself is :mod:`secagg.transport.framing`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import grpc

from secagg.errors import ConfigurationError
from secagg.transport.base import NotConnected, TransportError
from secagg.transport.framing import (
    DEFAULT_CHUNK_BYTES,
    MalformedFrame,
    MessageTooLarge,
    Reassembler,
    _as_bytes,
    _check_sizes,
    _grpc_size_options,
    encode_frames,
)

logger = logging.getLogger(__name__)

SERVICE_NAME: Final = "secagg.transport.v1.Transport"
SESSION_METHOD: Final = f"/{SERVICE_NAME}/Session"
IDENTITY_METADATA_KEY: Final = "secagg-client-name-bin"  # -bin: names may be any UTF-8

_CLIENT_KEEPALIVE: Final = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)
_SERVER_KEEPALIVE: Final = (
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
)
_POLL_SECONDS: Final = 1.0  # how often an idle writer re-checks that its stream is alive


# --- errors -------------------------------------------------------------------
# TransportError and NotConnected (no open session with that peer) are shared with the
# in-process transport and defined in secagg.transport.base; importing them from here works.


class TransportClosed(NotConnected):
    """The session ended; ``code`` and ``details`` are the gRPC status that ended it."""

    def __init__(self, code: grpc.StatusCode | None, details: str | None) -> None:
        self.code = code
        self.details = details or ""
        name = code.name if code is not None else "UNKNOWN"
        super().__init__(f"session closed ({name}): {self.details}")


# --- events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """A client opened a session; ``peer`` is gRPC's address string, for logs."""

    name: str
    peer: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """A client's session ended; the runtime counts the client as dropped out."""

    name: str
    reason: str


ConnectionEvent = Connected | Disconnected


# --- framing ------------------------------------------------------------------


_END: Final = object()  # outbox sentinel: finish the stream after what is queued


class _Session:
    """One client's stream as the server sees it (guarded by the transport's lock)."""

    __slots__ = ("abort", "finished", "name", "next_id", "outbox", "peer")

    def __init__(self, name: str, peer: str) -> None:
        self.name = name
        self.peer = peer
        self.outbox: queue.Queue[tuple[int, bytes] | object] = queue.Queue()
        self.next_id = 0
        self.finished = False
        self.abort: tuple[grpc.StatusCode, str] | None = None  # status to end the stream with


class GrpcServerTransport:
    """The server end: accepts client sessions, delivers messages, reports connections.

    ``identify`` maps an accepted mTLS connection to a client name (typically from
    the certificate's common name in ``context.auth_context()``); it runs on a gRPC
    thread and must not block. ``server_credentials=None`` (plaintext) is refused
    unless ``allow_insecure`` is set, which only tests should do.
    """

    def __init__(
        self,
        bind: str,
        *,
        server_credentials: grpc.ServerCredentials | None,
        max_message_bytes: int,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        identify: Callable[[grpc.ServicerContext], str],
        max_clients: int = 100,
        allow_insecure: bool = False,
    ) -> None:
        _check_sizes(max_message_bytes, chunk_bytes)
        if server_credentials is None and not allow_insecure:
            raise ConfigurationError("a server without TLS credentials needs allow_insecure=True")
        if max_clients < 1:
            raise ConfigurationError("max_clients must be at least 1")
        self._bind = bind
        self._credentials = server_credentials
        self._max_message_bytes = max_message_bytes
        self._chunk_bytes = chunk_bytes
        self._identify = identify
        self._max_clients = max_clients
        self._lock = threading.RLock()
        self._sessions: dict[str, _Session] = {}
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._events: queue.Queue[ConnectionEvent] = queue.Queue()
        self._server: grpc.Server | None = None
        self._port: int | None = None
        self._stopping = False

    # lifecycle

    def start(self) -> int:
        """Bind and start serving; return the bound port (useful with port 0)."""
        with self._lock:
            if self._server is not None:
                raise TransportError("server already started")
            options = [
                *_grpc_size_options(self._chunk_bytes),
                *_SERVER_KEEPALIVE,
                ("grpc.so_reuseport", 0),
            ]
            server = grpc.server(
                ThreadPoolExecutor(self._max_clients + 4, thread_name_prefix="secagg-grpc"),
                options=options,
                maximum_concurrent_rpcs=self._max_clients,
            )
            handler = grpc.stream_stream_rpc_method_handler(
                self._open_session, request_deserializer=None, response_serializer=None
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Session": handler}),)
            )
            try:
                if self._credentials is None:
                    port = server.add_insecure_port(self._bind)
                else:
                    port = server.add_secure_port(self._bind, self._credentials)
            except RuntimeError as exc:  # newer grpcio raises instead of returning 0
                raise TransportError(f"cannot bind {self._bind}: {exc}") from exc
            if not port:
                raise TransportError(f"cannot bind {self._bind}")
            server.start()
            self._server, self._port = server, port
            logger.info("gRPC transport listening on %s (port %d)", self._bind, port)
            return port

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise TransportError("server not started")
        return self._port

    def stop(self, grace: float | None = 5.0) -> None:
        """End every session (queued messages are still written) and stop within ``grace``."""
        with self._lock:
            self._stopping = True
            for session in list(self._sessions.values()):
                self._finish(session, "server stopping")
            server = self._server
        if server is not None:
            server.stop(grace).wait()

    def __enter__(self) -> GrpcServerTransport:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # the runtime's interface

    def connected(self) -> set[str]:
        """Names with an open session right now."""
        with self._lock:
            return set(self._sessions)

    def send(self, name: str, payload: bytes) -> None:
        """Queue one message to ``name``; it is written in order with earlier ones.

        Raises :class:`NotConnected` if ``name`` has no session and
        :class:`MessageTooLarge` above ``max_message_bytes``. Queued is not
        delivered: if the session ends first, the loss shows as a
        :class:`Disconnected` event.
        """
        data = _as_bytes(payload)
        if len(data) > self._max_message_bytes:
            raise MessageTooLarge(
                f"{len(data)} bytes to {name!r} exceed the limit of {self._max_message_bytes}"
            )
        with self._lock:
            session = self._sessions.get(name)
            if session is None:
                raise NotConnected(f"client {name!r} is not connected")
            session.outbox.put((session.next_id, data))
            session.next_id += 1

    def receive(self, timeout: float | None = None) -> tuple[str, bytes] | None:
        """The next complete message from any client, in arrival order; None on timeout."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def next_event(self, timeout: float | None = 0.0) -> ConnectionEvent | None:
        """The next :class:`Connected` or :class:`Disconnected`; None if none within ``timeout``."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    # gRPC side

    def _open_session(
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """The Session handler: identify, register, start the reader, return the writer."""
        peer = context.peer()
        name = self._identify_or_none(context, peer)
        if name is None:  # the reason is logged; the client only learns it was refused
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "client identity not accepted")
        session = _Session(name, peer)
        with self._lock:
            if self._stopping:
                context.abort(grpc.StatusCode.UNAVAILABLE, "server is stopping")
            old = self._sessions.get(name)
            if old is not None:
                self._finish(
                    old,
                    "superseded by a new session",
                    abort=(grpc.StatusCode.ABORTED, "superseded by a new session"),
                )
            self._sessions[name] = session
            self._events.put(Connected(name, peer))
        logger.info("session opened: %s from %s", name, peer)
        if not context.add_callback(lambda: self._finish(session, "connection lost")):
            self._finish(session, "connection lost")
        context.send_initial_metadata(((IDENTITY_METADATA_KEY, name.encode()),))
        threading.Thread(
            target=self._read,
            args=(session, request_iterator, context),
            name=f"secagg-grpc-read-{name}",
            daemon=True,
        ).start()
        return self._write(session, context)

    def _identify_or_none(self, context: grpc.ServicerContext, peer: str) -> str | None:
        """The client's name, or None (logged) if ``identify`` refuses or fails."""
        try:
            name = self._identify(context)
        except Exception as exc:  # any failure to identify is a refusal, never a crash
            logger.warning("refused session from %s: %s", peer, exc)
            return None
        if not isinstance(name, str) or not name:
            logger.warning("refused session from %s: identify returned %r", peer, name)
            return None
        return name

    def _read(
        self,
        session: _Session,
        request_iterator: Iterator[bytes],
        context: grpc.ServicerContext,
    ) -> None:
        """Reader thread: reassemble frames and deliver messages until the stream ends."""
        reassembler = Reassembler(self._max_message_bytes, self._chunk_bytes)
        try:
            for frame in request_iterator:
                message = reassembler.feed(frame)
                if message is None:
                    continue
                with self._lock:
                    if session.finished:
                        return
                    self._inbox.put((session.name, message))
        except MalformedFrame as exc:
            logger.warning("malformed frame from %s (%s): %s", session.name, session.peer, exc)
            self._finish(
                session,
                f"malformed frame: {exc}",
                abort=(grpc.StatusCode.INVALID_ARGUMENT, f"malformed frame: {exc}"),
            )
        except MessageTooLarge as exc:
            logger.warning("oversized message from %s (%s): %s", session.name, session.peer, exc)
            self._finish(
                session,
                f"message too large: {exc}",
                abort=(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)),
            )
        except grpc.RpcError:  # cancelled, or gRPC refused a frame above its size limit
            self._finish(session, "connection lost")
        except Exception as exc:  # a bug here must cost one stream, not the server
            logger.exception("reader of %s failed", session.name)
            self._finish(
                session, f"internal error: {exc}", abort=(grpc.StatusCode.INTERNAL, "internal")
            )
        else:
            # A frame above gRPC's size limit also ends the request stream cleanly, so
            # tell a half-close from a failed call by whether the call is still alive.
            alive = context.is_active()
            self._finish(session, "client closed the session" if alive else "connection lost")

    def _write(self, session: _Session, context: grpc.ServicerContext) -> Iterator[bytes]:
        """Response generator, run by a gRPC pool thread: drain the outbox into frames."""
        try:
            while True:
                if session.abort is not None:
                    context.abort(*session.abort)
                try:
                    item = session.outbox.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    if not context.is_active():
                        return
                    continue
                if item is _END:
                    if session.abort is not None:
                        context.abort(*session.abort)
                    return
                assert isinstance(item, tuple)
                message_id, payload = item
                for frame in encode_frames(message_id, payload, self._chunk_bytes):
                    if session.abort is not None:
                        context.abort(*session.abort)
                    yield frame
        finally:
            self._finish(session, "connection lost")

    def _finish(
        self,
        session: _Session,
        reason: str,
        *,
        abort: tuple[grpc.StatusCode, str] | None = None,
    ) -> None:
        """End a session once: unregister it, publish Disconnected, wake its writer."""
        with self._lock:
            if session.finished:
                return
            session.finished = True
            session.abort = abort
            if self._sessions.get(session.name) is session:
                del self._sessions[session.name]
            self._events.put(Disconnected(session.name, reason))
        session.outbox.put(_END)
        logger.info("session closed: %s (%s)", session.name, reason)


# --- client -------------------------------------------------------------------


class GrpcClientTransport:
    """The client end: dials the server, keeps one session open, sends and receives.

    ``name_override`` is the name to check the server certificate against when the
    dialled ``target`` is not in it (an IP address, a tunnel); it sets gRPC's
    ``grpc.ssl_target_name_override`` and means nothing without TLS. One instance
    is one session: after :meth:`close` or a failure, make a new one.
    """

    def __init__(
        self,
        target: str,
        *,
        channel_credentials: grpc.ChannelCredentials | None,
        name_override: str | None = None,
        max_message_bytes: int,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        allow_insecure: bool = False,
    ) -> None:
        _check_sizes(max_message_bytes, chunk_bytes)
        if channel_credentials is None and not allow_insecure:
            raise ConfigurationError("a client without TLS credentials needs allow_insecure=True")
        self._target = target
        self._credentials = channel_credentials
        self._name_override = name_override
        self._max_message_bytes = max_message_bytes
        self._chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        self._outbox: queue.Queue[tuple[int, bytes] | object] = queue.Queue()
        self._inbox: queue.Queue[bytes | TransportClosed] = queue.Queue()
        self._next_id = 0
        self._channel: grpc.Channel | None = None
        # grpc's stream object is at once a Call, a Future and the iterator of responses;
        # grpcio has no type for that combination.
        self._call: Any = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._ended: TransportClosed | None = None  # set once the stream is over
        self._closed = False
        self.identity: str | None = None  # the name the server identified us as

    def connect(self, timeout: float = 10.0) -> str:
        """Dial, open the session, and return the name the server gave us.

        Returns only once the server accepted the stream (its initial metadata
        arrived), so a refused certificate or identity fails here, not later.
        """
        with self._lock:
            if self._channel is not None or self._closed:
                raise TransportError("connect() is called once per transport")
            options: list[tuple[str, int | str]] = [
                *_grpc_size_options(self._chunk_bytes),
                *_CLIENT_KEEPALIVE,
            ]
            if self._name_override is not None:
                options.append(("grpc.ssl_target_name_override", self._name_override))
            if self._credentials is None:
                channel = grpc.insecure_channel(self._target, options=options)
            else:
                channel = grpc.secure_channel(self._target, self._credentials, options=options)
            self._channel = channel
        deadline = time.monotonic() + timeout
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            self._abandon()
            raise NotConnected(f"cannot reach {self._target} within {timeout} s") from None
        stream = channel.stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )
        call = stream(self._requests())  # no deadline: the session lives as long as the round
        self._call = call
        self._reader = threading.Thread(
            target=self._read, args=(call,), name="secagg-grpc-client-read", daemon=True
        )
        self._reader.start()
        if not self._ready.wait(max(0.0, deadline - time.monotonic())):
            self._abandon()
            raise NotConnected(f"no session with {self._target} within {timeout} s")
        if self._ended is not None:
            self._abandon()
            raise TransportClosed(self._ended.code, self._ended.details)
        assert self.identity is not None
        return self.identity

    def send(self, payload: bytes) -> None:
        """Queue one message to the server; raises once the session is over."""
        data = _as_bytes(payload)
        if len(data) > self._max_message_bytes:
            raise MessageTooLarge(
                f"{len(data)} bytes exceed the limit of {self._max_message_bytes}"
            )
        with self._lock:
            if self._call is None or self._closed:
                raise NotConnected("no open session")
            if self._ended is not None:
                raise TransportClosed(self._ended.code, self._ended.details)
            self._outbox.put((self._next_id, data))
            self._next_id += 1

    def receive(self, timeout: float | None = None) -> bytes | None:
        """The next message from the server; None on timeout; raises once the session is over.

        Messages that arrived before the end are still returned first.
        """
        if self._call is None:
            raise NotConnected("no open session")
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, TransportClosed):
            self._inbox.put(item)  # every later call raises too
            raise TransportClosed(item.code, item.details)
        return item

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, half-close, wait up to ``timeout`` for the server, then drop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._outbox.put(_END)
        if self._reader is not None:
            self._reader.join(timeout)
        self._abandon()

    def __enter__(self) -> GrpcClientTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _abandon(self) -> None:
        """Cancel the stream and close the channel (idempotent)."""
        self._outbox.put(_END)
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            self._channel.close()
        self._end(TransportClosed(grpc.StatusCode.CANCELLED, "closed locally"))

    def _requests(self) -> Iterator[bytes]:
        """Request generator, consumed by a gRPC thread: drain the outbox into frames."""
        while True:
            item = self._outbox.get()
            if item is _END:
                return  # half-close
            assert isinstance(item, tuple)
            message_id, payload = item
            yield from encode_frames(message_id, payload, self._chunk_bytes)

    def _read(self, call: Any) -> None:
        """Reader thread: wait for acceptance, then reassemble the server's messages."""
        reassembler = Reassembler(self._max_message_bytes, self._chunk_bytes)
        try:
            metadata = call.initial_metadata() or ()
            for key, value in metadata:
                if key == IDENTITY_METADATA_KEY and isinstance(value, bytes):
                    self.identity = value.decode("utf-8", "replace")
            if self.identity is None:  # the stream ended before the server accepted it
                for _ in call:
                    pass
                raise TransportClosed(grpc.StatusCode.UNKNOWN, "session was not accepted")
            self._ready.set()
            for frame in call:
                message = reassembler.feed(frame)
                if message is not None:
                    self._inbox.put(message)
            self._end(TransportClosed(grpc.StatusCode.OK, "server ended the session"))
        except (MalformedFrame, MessageTooLarge) as exc:
            logger.warning("refused a message from the server: %s", exc)
            call.cancel()
            self._end(TransportClosed(grpc.StatusCode.CANCELLED, f"refused from server: {exc}"))
        except grpc.RpcError as exc:
            self._end(TransportClosed(exc.code(), exc.details()))
        except TransportClosed as exc:
            self._end(exc)
        finally:
            self._outbox.put(_END)  # let the request generator (and its thread) finish
            self._ready.set()

    def _end(self, closed: TransportClosed) -> None:
        """Record the first reason the session ended and wake a blocked receive()."""
        with self._lock:
            if self._ended is not None:
                return
            self._ended = closed
        self._inbox.put(closed)
