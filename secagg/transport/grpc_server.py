"""The server end of the gRPC transport: sessions, their limits, identities and events.

:class:`GrpcServerTransport` accepts client sessions (one bidirectional stream each),
refuses or throttles them, reassembles their messages for :meth:`~GrpcServerTransport.receive`,
writes what :meth:`~GrpcServerTransport.send` queues, re-checks identities while
sessions last, and reports :class:`Connected` and :class:`Disconnected`. Beside it are
the per-session record it keeps (:class:`_Session`), the token buckets of new sessions
per identity, and the helpers that read a connection's certificate from gRPC's auth
context.

Why a module of its own: the server's session machinery is the largest part of the
transport and the one that holds other parties' data, so it is read apart from the
client's dialling. The contract it implements (threads, back-pressure, budgets,
ordering of events) is specified in :mod:`secagg.transport.grpc_transport`, from which
every name here is also importable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from secagg.errors import ConfigurationError
from secagg.transport.base import NotConnected, PeerClosing, TransportError, waitable_seconds
from secagg.transport.framing import (
    DEFAULT_CHUNK_BYTES,
    HEADER_BYTES,
    MAX_INCOMING_CONNECTIONS,
    MalformedFrame,
    MessageParts,
    MessageTooLarge,
    Reassembler,
    _as_bytes,
    _check_sizes,
    _grpc_size_options,
    encode_frames,
)
from secagg.transport.grpc_errors import (
    SUPERSEDED_DETAIL,
    THROTTLE_DETAIL,
    OutboxOverflow,
)
from secagg.transport.grpc_limits import (
    _END,
    _ENDED_WRITER_GRACE_SECONDS,
    _HALF_CLOSE_END_SECONDS,
    _MAX_TRACKED_IDENTITIES,
    _PEER_CERT_KEY,
    _POLL_SECONDS,
    _SERVER_KEEPALIVE,
    _SERVER_STREAMS,
    _TLS_VERSION_KEY,
    DEFAULT_HANDSHAKE_SECONDS,
    DEFAULT_IDLE_CONNECTION_SECONDS,
    DEFAULT_MAX_PENDING_EVENTS,
    DEFAULT_MAX_QUEUED_MESSAGES,
    DEFAULT_MESSAGE_RECEIVE_SECONDS,
    DEFAULT_PARTIAL_IDLE_SECONDS,
    DEFAULT_RECHECK_SECONDS,
    DEFAULT_SESSION_BURST,
    DEFAULT_SESSION_RATE,
    IDENTITY_METADATA_KEY,
    MAX_SESSION_BURST,
    MIN_SESSION_RATE,
    SERVICE_NAME,
    TLS_VERSIONS,
    _check_timer_seconds,
    _outbox_overrun,
    _queue_budgets,
    default_max_connections,
    grpc_milliseconds,
)
from secagg.transport.waiting import (
    STOP_LOOK_SECONDS,
    InterruptSafeCondition,
    raise_if_stop_asked,
    raise_stop_within,
    release_kept,
)

#: one logger for the whole gRPC transport (the name operators' log settings and the
#: tests address), whichever of its modules logs
logger = logging.getLogger("secagg.transport.grpc_transport")


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


class _Session:
    """One client's stream as the server sees it (guarded by the transport's lock).

    Besides the stream, it keeps what the session was admitted on (the snapshot of
    the auth context, the certificate, its fingerprint and expiry), so the identity
    can be checked again while the session lasts, and what it holds in server
    memory (messages delivered but not read yet, the message being received, and the
    bytes queued to it and not yet written).
    """

    __slots__ = (
        "abort",
        "auth",
        "certificate",
        "context",
        "cut_short",
        "feeding",
        "fingerprint",
        "finished",
        "half_closed",
        "id",
        "message_deadline",
        "name",
        "next_id",
        "not_valid_after",
        "outbox",
        "outbox_bytes",
        "partial_bytes",
        "partial_deadline",
        "peer",
        "queued_bytes",
        "queued_messages",
        "reassembler",
        "writing",
    )

    def __init__(
        self,
        name: str,
        peer: str,
        context: grpc.ServicerContext,
        auth: Mapping[str, Sequence[bytes]],
        certificate: x509.Certificate | None,
    ) -> None:
        self.id = 0  # set when registered: see GrpcServerTransport.session_id
        self.name = name
        self.peer = peer
        self.context = context
        self.auth = auth
        self.certificate = (
            None if certificate is None else certificate.public_bytes(serialization.Encoding.DER)
        )
        self.fingerprint = (
            None if certificate is None else certificate.fingerprint(hashes.SHA256()).hex()
        )
        self.not_valid_after = None if certificate is None else certificate.not_valid_after_utc
        # SimpleQueue: a stop in the main thread's put keeps no lock (see transport.waiting)
        self.outbox: queue.SimpleQueue[tuple[int, bytes | MessageParts] | object] = (
            queue.SimpleQueue()
        )
        self.outbox_bytes = 0  # payload bytes queued by send() whose writing has not begun
        self.next_id = 0
        self.finished = False
        # the client ended its request stream and the server its side: the call's end says
        # how the session ended (see GrpcServerTransport._call_ended)
        self.half_closed = False
        # what of a message in progress the client's half-close cut off (None: it
        # half-closed between messages): a clean close then says so (see _call_ended)
        self.cut_short: str | None = None
        # the writer handed a frame to gRPC and has not come back for the next: it may be
        # waiting in flow control, where it never sees the session's end
        self.writing = False
        # the reader's reassembler, so the session's end can drop the message it holds
        # half-built, and the lock its reader feeds it under (see _drop_partial)
        self.reassembler: Reassembler | None = None
        self.feeding = threading.RLock()
        self.abort: tuple[grpc.StatusCode, str] | None = None  # status to end the stream with
        self.queued_messages = 0  # delivered to the inbox, not yet taken by receive()
        self.queued_bytes = 0  # their payload bytes
        self.partial_bytes = 0  # the message being reassembled, or held while the inbox is full
        self.partial_deadline: float | None = None  # monotonic: the next frame of it is due
        self.message_deadline: float | None = None  # monotonic: all of it is due


class _AdmittedContext:
    """The servicer context as it was when the session opened, for re-running ``identify``.

    ``auth_context()`` answers from the snapshot taken at admission (the certificate
    cannot change during a TLS session); anything else is the live context's.
    """

    def __init__(self, context: grpc.ServicerContext, auth: Mapping[str, Sequence[bytes]]):
        self._context = context
        self._auth = auth

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self._auth

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._context, attribute)


#: the values grpcio's internal call state takes (``grpc._server``: ``_OPEN``,
#: ``_CLOSED``, ``_CANCELLED``); anything else is a grpcio this code does not know
_CALL_STATES = frozenset({"open", "closed", "cancelled"})

#: set once the "cannot read grpcio's call state" warning was logged: one line per
#: process says it, not one per session end
_call_state_unreadable = threading.Event()


def _call_cancelled(context: grpc.ServicerContext) -> bool:
    """Whether gRPC ended the call as cancelled (the peer went, its stream was reset),
    read once the call has ended.

    Why gRPC's own record of it: grpcio's public context says only "active or not",
    which is "not" once the server sent its status, however the call then ended, while
    how it ended is what tells a client that took the server's end of the stream from
    one that was gone. grpcio offers no public accessor for it (``is_active``,
    ``code``, ``add_callback`` are the same for both ends), so the record read is
    grpcio's internal call state (``context._state.client``: ``cancelled`` when the core
    reported the call cancelled). A grpcio without it, or with a value this code does
    not know, reads as cancelled, so the report errs towards "connection lost"; that
    used to happen silently, every clean close then logged as a lost connection with
    nothing saying why (transport review, 2026-12-06), so the first such read logs one
    warning naming the grpcio version, and the transport's clean-close tests fail
    loudly (tests/transport/test_grpc_drop_under_load.py)."""
    state = getattr(context, "_state", None)
    client = getattr(state, "client", None)
    if isinstance(client, str) and client in _CALL_STATES:
        return client == "cancelled"
    if not _call_state_unreadable.is_set():
        _call_state_unreadable.set()
        logger.warning(
            "cannot tell a clean close from a lost connection: grpcio %s keeps no call "
            "state where this transport reads it (context._state.client is %s); every "
            "session end is reported as 'connection lost' (check the grpcio version "
            "secagg supports)",
            getattr(grpc, "__version__", "(unknown version)"),
            "missing" if client is None else "of an unknown kind",
        )
    return True


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _auth_snapshot(context: grpc.ServicerContext) -> dict[str, list[bytes]]:
    """A copy of the auth context (gRPC builds a new dict per call; this one stays put)."""
    try:
        auth = context.auth_context() or {}
    except Exception:  # an insecure test server, or a context gRPC can no longer read
        return {}
    return {
        str(k): [v if isinstance(v, bytes) else str(v).encode() for v in vs]
        for k, vs in auth.items()
    }


def _certificate_of(auth: Mapping[str, Sequence[bytes]]) -> x509.Certificate | None:
    """The peer certificate TLS verified, or None (no TLS, or not exactly one PEM)."""
    values = list(auth.get(_PEER_CERT_KEY) or [])
    if len(values) != 1:
        return None
    try:
        return x509.load_pem_x509_certificate(bytes(values[0]))
    except ValueError:
        return None


class _SessionRate:
    """Token buckets of new sessions, one per identity (not thread-safe: the caller locks).

    A bucket holds up to ``burst`` tokens and gains ``rate`` a second; opening a
    session takes one, and an identity without a whole token is refused. A refusal
    takes nothing, so a churning identity gets ``rate`` sessions a second however
    fast it dials, and one that pauses gets its burst back. Full buckets are forgotten
    when more than :data:`_MAX_TRACKED_IDENTITIES` are kept (a full bucket and none are
    the same), so memory follows the identities active lately.
    """

    def __init__(self, burst: int, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last update, streak]
        self.refused = 0

    def admit(self, key: str, now: float) -> tuple[float, int]:
        """(0, 0) if ``key`` may open a session now (a token is taken); else the seconds
        until it may and how many it has been refused in a row."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_TRACKED_IDENTITIES:
                self._forget_full(now)
            bucket = self._buckets[key] = [float(self.burst), now, 0.0]
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0], bucket[2] = tokens - 1.0, 0.0
            return 0.0, 0
        bucket[0] = tokens
        bucket[2] += 1
        self.refused += 1
        return (1.0 - tokens) / self.rate, int(bucket[2])

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, (tokens, last, _) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def _identity_key(auth: Mapping[str, Sequence[bytes]]) -> str | None:
    """The key of a connection's rate bucket: the digest of the signed part of the client
    certificate TLS verified against the CA (cheap: one parse, no revocation check), or
    None without one.

    Why the signed part, not the whole certificate: anyone holding an ECDSA certificate
    can flip its signature (``s`` -> ``n - s``) and TLS takes it, so the digest of the
    whole certificate gave one identity two buckets, twice the burst and the rate of new
    sessions (transport review, 2026-12-07). A certificate that does not parse (TLS
    verified it, so never expected) is keyed by its bytes."""
    values = list(auth.get(_PEER_CERT_KEY) or [])
    if len(values) != 1:
        return None
    pem = bytes(values[0])
    try:
        signed = x509.load_pem_x509_certificate(pem).tbs_certificate_bytes
    except ValueError:
        signed = pem
    return "cert:" + hashlib.sha256(signed).hexdigest()


def _common_name(auth: Mapping[str, Sequence[bytes]]) -> str:
    """The client certificate's common name quoted with escapes, for a log line ("?"
    if none).

    Why quoted: it is read before ``identify`` checks it against the branch-name
    pattern (a throttled session is refused first), and TLS proves only that the CA
    signed it; a newline or a terminal escape in it forged log lines (transport review,
    2026-12-06)."""
    certificate = _certificate_of(auth)
    if certificate is None:
        return "?"
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return repr(str(names[0].value)) if names else "?"


class GrpcServerTransport:
    """The server end: accepts client sessions, delivers messages, reports connections.

    ``identify`` maps an accepted mTLS connection to a client name (typically from
    the certificate's common name in ``context.auth_context()``); it runs on a gRPC
    thread and must not block. It is called again for every open session every
    ``recheck_interval`` seconds (None: only at admission and on
    :meth:`recheck_sessions`), with a context whose
    ``auth_context()`` is the one the session was admitted with; a session it now
    refuses (a revoked certificate: :class:`~secagg.transport.certs.PeerVerifier`
    re-reads the revocation list) or names differently is ended with
    ``UNAUTHENTICATED`` and reported as :class:`Disconnected`. Independently of
    ``identify``, a session whose client certificate expires is ended at its
    expiry (checked on every message and by the re-check timer).

    Memory. Each session may have at most ``max_queued_messages`` messages delivered
    but not yet taken by :meth:`receive`; then its reader stops reading, so HTTP/2
    flow control pushes back on the sender (back-pressure, not loss). On top of that,
    the bytes a session holds unread (delivered messages and the message being
    reassembled) may not exceed ``max_queued_bytes`` (default: twice
    ``max_message_bytes``, at least 64 MiB); a session that exceeds it is ended with
    ``RESOURCE_EXHAUSTED`` and its unread messages are dropped, freeing the memory at
    once. So one branch can hold at most ``max_queued_bytes`` of server memory,
    whatever it sends (review finding M2), however often it reconnects: what its name's
    earlier sessions left unread counts against a new session's budget
    (:meth:`_adopt_earlier_unread`), and is still delivered.
    Likewise the bytes queued by :meth:`send` to one client behind the message being
    written may not exceed ``max_outbox_bytes`` (same default): a client that stops
    reading is disconnected rather than growing the server by one model a round (audit
    finding B). At most ``max_pending_events`` connection events wait for
    :meth:`next_event`; older ones are dropped. A message whose next frame does not
    come within ``partial_idle_timeout`` seconds (None: no limit) ends its session
    (``DEADLINE_EXCEEDED``, its data dropped): the budget bounds what a half-sent
    message holds, this how long. Likewise one not whole within
    ``message_receive_timeout`` seconds of its first frame (default
    :data:`DEFAULT_MESSAGE_RECEIVE_SECONDS`; None: no limit), which bounds a message
    sent one frame at a time just inside the idle limit. Both start at a message's
    first whole frame: gRPC hands over no frame before all of it has arrived, so a peer
    trickling a message's first frame a byte at a time is not seen by either (nor by
    anything else here: it looks like a session idle between rounds), and grpcio has
    no server option that bounds it (none of its channel arguments is a per-stream or
    per-message read deadline). What it holds is bounded (gRPC keeps at most one frame,
    ``chunk_bytes`` + 64 bytes, per session, its length prefix checked first; one of
    ``max_clients`` calls and two threads; an identity has one session); how long is
    not, at the transport: the session lasts while its peer keeps the connection, and
    the runtime's phase deadline drops it from the round it owes a message
    (tests/transport/test_grpc_trickled_frame.py, a strict xfail, says so).

    New sessions are rate-limited per identity (the client certificate; the name on a
    plaintext test server): a token bucket of ``session_burst`` sessions (default 10)
    refilled at ``session_rate`` a second (default 1). An identity over it is refused
    before anything else is done for it (no identify, no thread, no event, its open
    session left alone) with ``RESOURCE_EXHAUSTED`` and :data:`THROTTLE_DETAIL`, which
    its client raises as :class:`SessionThrottled`; refusals are counted
    (:attr:`throttled_sessions`) and logged once per streak (then at 10, 100, ...).
    Other identities are not affected. ``session_burst=None`` turns the limit off.

    ``min_tls_version`` (default ``"TLSv1.3"``; None: no check) refuses a session whose
    TLS handshake negotiated an older version, before ``identify`` runs. grpcio offers
    no minimum version for server credentials, so the handshake itself may complete
    with TLS 1.2; the session is refused right after it, and no message is read.
    ``server_credentials=None`` (plaintext) is refused unless ``allow_insecure`` is
    set, which only tests should do.

    Connections, which hold a file descriptor before any certificate is seen: one whose
    TLS handshake has not finished within ``handshake_timeout`` seconds (default 10) is
    closed, one without a call for ``idle_connection_timeout`` seconds (default 60)
    too, and at most ``max_connections`` are open at once (None:
    :func:`default_max_connections`), the next one closed at accept. None of the three
    is per peer: gRPC counts a connection at accept, before its certificate is seen, and
    every call (one refused at once too) restarts the idle clock, so an enrolled party
    that calls on each of its connections now and then holds them all, and other
    parties cannot dial in while it does (a per-source connection limit in front of the
    server bounds it; tests/transport/test_grpc_identity_connection_hold.py). The two reach
    gRPC in milliseconds and are refused above :data:`GRPC_MAX_MILLISECONDS` (about
    24.8 days, :func:`grpc_milliseconds`); ``recheck_interval`` and
    ``partial_idle_timeout``, waited on by the timer thread, above
    ``threading.TIMEOUT_MAX``.
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
        max_queued_messages: int = DEFAULT_MAX_QUEUED_MESSAGES,
        max_queued_bytes: int | None = None,
        max_outbox_bytes: int | None = None,
        max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS,
        recheck_interval: float | None = DEFAULT_RECHECK_SECONDS,
        partial_idle_timeout: float | None = DEFAULT_PARTIAL_IDLE_SECONDS,
        message_receive_timeout: float | None = DEFAULT_MESSAGE_RECEIVE_SECONDS,
        min_tls_version: str | None = "TLSv1.3",
        session_burst: int | None = DEFAULT_SESSION_BURST,
        session_rate: float = DEFAULT_SESSION_RATE,
        handshake_timeout: float = DEFAULT_HANDSHAKE_SECONDS,
        idle_connection_timeout: float = DEFAULT_IDLE_CONNECTION_SECONDS,
        max_connections: int | None = None,
    ) -> None:
        _check_sizes(max_message_bytes, chunk_bytes)
        handshake_ms = grpc_milliseconds("handshake_timeout", handshake_timeout)
        idle_ms = grpc_milliseconds("idle_connection_timeout", idle_connection_timeout)
        _check_timer_seconds("recheck_interval", recheck_interval)
        _check_timer_seconds("partial_idle_timeout", partial_idle_timeout)
        _check_timer_seconds("message_receive_timeout", message_receive_timeout)
        if session_burst is not None and (
            not isinstance(session_burst, int)
            or isinstance(session_burst, bool)
            or not 1 <= session_burst <= MAX_SESSION_BURST
        ):
            # the value left out: repr(10**5000) itself raises ValueError (int digits limit)
            raise ConfigurationError(
                "session_burst must be an integer in [1, 2**53] (the floats of the token "
                "buckets count exactly to there), or None: no limit"
            )
        if (
            isinstance(session_rate, bool)  # a bool is an int: True passed as 1 a second
            or not isinstance(session_rate, int | float)
            or not MIN_SESSION_RATE <= session_rate < float("inf")
        ):
            raise ConfigurationError(
                f"session_rate must be a finite number of sessions a second, at least "
                f"{MIN_SESSION_RATE:.3g} (one a week: a refused branch is told to wait up to "
                f"1 / session_rate seconds), not {session_rate!r}"
            )
        if server_credentials is None and not allow_insecure:
            raise ConfigurationError("a server without TLS credentials needs allow_insecure=True")
        if max_clients < 1:
            raise ConfigurationError("max_clients must be at least 1")
        if max_connections is None:
            max_connections = default_max_connections(max_clients)
        if (
            not isinstance(max_connections, int)
            or isinstance(max_connections, bool)
            or max_connections <= max_clients
        ):
            raise ConfigurationError(
                "max_connections must be an integer above max_clients, or every client "
                "could not hold a connection"
            )
        if max_connections > MAX_INCOMING_CONNECTIONS:
            raise ConfigurationError(
                f"max_connections must be at most {MAX_INCOMING_CONNECTIONS} (gRPC's limit), "
                f"not {max_connections}"
            )
        max_queued_bytes, max_outbox_bytes = _queue_budgets(
            max_message_bytes, max_queued_messages, max_queued_bytes, max_outbox_bytes
        )
        if not isinstance(max_pending_events, int) or max_pending_events < 1:
            raise ConfigurationError("max_pending_events must be at least 1")
        if min_tls_version is not None and min_tls_version not in TLS_VERSIONS:
            raise ConfigurationError(f"min_tls_version must be one of {sorted(TLS_VERSIONS)}")
        self._bind = bind
        self._credentials = server_credentials
        self._max_message_bytes = max_message_bytes
        self._chunk_bytes = chunk_bytes
        self._identify = identify
        self._max_clients = max_clients
        self._connection_options = (
            ("grpc.server_handshake_timeout_ms", handshake_ms),
            ("grpc.max_connection_idle_ms", idle_ms),
            ("grpc.max_allowed_incoming_connections", max_connections),
        )
        self._max_queued_messages = max_queued_messages
        self._max_queued_bytes = max_queued_bytes
        self._max_outbox_bytes = max_outbox_bytes
        self._recheck_interval = recheck_interval
        self._partial_idle_timeout = partial_idle_timeout
        self._message_receive_timeout = message_receive_timeout
        self._min_tls_version = min_tls_version
        self._session_rate = (
            None if session_burst is None else _SessionRate(session_burst, float(session_rate))
        )
        self._lock = threading.RLock()
        # a Ctrl-C or SIGTERM in the main thread's wait on these arrives as itself, never
        # as "cannot release un-acquired lock" (see transport.waiting)
        self._changed = InterruptSafeCondition(self._lock)  # inbox, queue room, a session ended
        self._sessions: dict[str, _Session] = {}
        self._session_serial = 0  # the last session id given out
        self._inbox: deque[tuple[_Session, bytes]] = deque()
        # sessions ended so far, and the count receive() is to compare with at its next
        # call when an end came while a call returned a message (else None): see receive
        self._ended_sessions = 0
        self._end_untold: int | None = None
        self._opened_sessions = 0  # sessions opened so far: an open wakes a waiting receive
        # bumped whenever a session opens or ends, or the server stops: what
        # wait_for_sessions() waits on (the runtime's quorum wait)
        self._sessions_serial = 0
        # the newest events only: the oldest is dropped (and counted) when it is full
        self._events: deque[ConnectionEvent] = deque(maxlen=max_pending_events)
        self._event_ready = InterruptSafeCondition(self._lock)
        self._dropped_events = 0
        self._server: grpc.Server | None = None
        self._pool: ThreadPoolExecutor | None = None  # the handlers' threads: ended by stop()
        self._port: int | None = None
        self._stopping = False
        self._wake = threading.Event()  # the re-check timer: stop, or a new session to watch
        self._rechecker: threading.Thread | None = None

    # lifecycle

    def start(self) -> int:
        """Bind and start serving; return the bound port (useful with port 0)."""
        with self._lock:
            if self._server is not None:
                raise TransportError("server already started")
            options = [
                *_grpc_size_options(self._chunk_bytes),
                *_SERVER_KEEPALIVE,
                *_SERVER_STREAMS,
                *self._connection_options,
                ("grpc.so_reuseport", 0),
            ]
            pool = ThreadPoolExecutor(self._max_clients + 4, thread_name_prefix="secagg-grpc")
            server = grpc.server(
                pool,
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
                pool.shutdown(wait=False)
                raise TransportError(f"cannot bind {self._bind}: {exc}") from exc
            if not port:
                pool.shutdown(wait=False)
                raise TransportError(f"cannot bind {self._bind}")
            server.start()
            self._server, self._port, self._pool = server, port, pool
            self._rechecker = threading.Thread(
                target=self._recheck_loop, name="secagg-grpc-recheck", daemon=True
            )
            self._rechecker.start()
            logger.info("gRPC transport listening on %s (port %d)", self._bind, port)
            return port

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called: no session opens any more (a server waiting
        for its branches to come back can stop waiting)."""
        with self._lock:
            return self._stopping

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise TransportError("server not started")
        return self._port

    def stop(self, grace: float | None = 5.0) -> None:
        """End every session (queued messages are still written) and stop within ``grace``.

        The handlers' thread pool is shut down too: grpcio never does (its server only
        stops using the executor it was given), so each stopped server left its idle
        threads until the transport was garbage-collected (10 more per server started and
        stopped in one process). ``shutdown(wait=False)``: gRPC's stop already waited for
        the calls to end (cancelled after ``grace``); a handler that still has not
        returned ends its thread when it does, and stop never blocks on it.
        """
        with self._lock:
            self._stopping = True
            for session in list(self._sessions.values()):
                self._finish(session, "server stopping")
            self._sessions_changed()  # a quorum wait stops waiting: nobody comes now
            server = self._server
            pool = self._pool
            rechecker = self._rechecker
        release_kept(self._lock)  # a hold an interrupt kept: gRPC's threads need it now
        self._wake.set()
        if server is not None:
            server.stop(grace).wait()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if rechecker is not None and rechecker is not threading.current_thread():
            rechecker.join(timeout=5.0)

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

    def session_id(self, name: str) -> int | None:
        """The id of ``name``'s open session, or None. Every session gets a new id (never
        reused), so a caller that recorded it can tell that a participant's session ended
        even after the participant reconnected under the same name (review D6)."""
        with self._lock:
            session = self._sessions.get(name)
            return None if session is None else session.id

    def send(self, name: str, payload: bytes) -> None:
        """Queue one message to ``name``; it is written in order with earlier ones.

        Raises :class:`NotConnected` if ``name`` has no session, or its client has
        half-closed it (:class:`~secagg.transport.base.PeerClosing`: the end of the
        stream is queued, nothing sent after it would be written), and
        :class:`MessageTooLarge` above ``max_message_bytes``. Queued is not delivered:
        if the session ends first, the loss shows as a
        :class:`Disconnected` event. A client that does not read cannot make the
        server hold its messages without end: when ``name``'s unsent bytes would
        exceed ``max_outbox_bytes``, its session is ended (logged, a
        :class:`Disconnected`, gone from :meth:`connected`) and
        :class:`OutboxOverflow` (a :class:`NotConnected`) is raised.
        """
        self._queue(name, _as_bytes(payload))

    def send_parts(self, name: str, parts: Sequence[bytes]) -> None:
        """As :meth:`send`, for one message given as consecutive parts: the message is
        their concatenation, queued without joining them, so a part shared by the
        messages to many clients is held once, not once per client. The runtime's server
        sends each round start so (its model is one object for every branch: memory
        O(d) at a round start, not O(n * d)); a transport without it gets the joined
        message."""
        self._queue(name, MessageParts(parts))

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        """As :meth:`send_parts`, but only while ``name``'s open session is ``session``
        (an id :meth:`session_id` gave); raises :class:`NotConnected` otherwise.

        Why: the runtime looked at a participant's session, then sent by name; a
        reconnect between the two put a round's message on a new session that never
        took the round, while the server counted it delivered. The id is compared
        under the lock the message is queued under."""
        self._queue(name, MessageParts(parts), session_id=session)

    def _queue(
        self, name: str, data: bytes | MessageParts, *, session_id: int | None = None
    ) -> None:
        """Queue ``data`` to ``name`` within its outbox budget (see :meth:`send`), to its
        session ``session_id`` only when given (see :meth:`send_to_session`)."""
        if len(data) > self._max_message_bytes:
            raise MessageTooLarge(
                f"{len(data)} bytes to {name!r} exceed the limit of {self._max_message_bytes}"
            )
        with self._lock:
            session = self._sessions.get(name)
            if session is None:
                raise NotConnected(f"client {name!r} is not connected")
            if session_id is not None and session.id != session_id:
                raise NotConnected(f"client {name!r} is on another session than {session_id}")
            if session.half_closed:
                # the end of the stream is queued (see _read): anything queued now would
                # wait behind it and never be written, while the sender believed it sent
                raise PeerClosing(
                    f"client {name!r} closed its session: nothing more is written to it"
                )
            overrun = _outbox_overrun(self._max_outbox_bytes, session.outbox_bytes, len(data))
            if overrun is None:
                session.outbox.put((session.next_id, data))
                session.next_id += 1
                session.outbox_bytes += len(data)
                return
        reason = f"{overrun}: it is not reading"
        self._end_for_cause(
            session, reason, grpc.StatusCode.RESOURCE_EXHAUSTED, "too much unsent data queued"
        )
        # the writer is stuck in gRPC's flow control (the client grants no window), where
        # it never sees the abort: cancelling the call frees it and closes the stream
        session.context.cancel()
        raise OutboxOverflow(f"session of {name!r} ended: {reason}")

    def receive(self, timeout: float | None = None) -> tuple[str, bytes] | None:
        """The next complete message from any client, in arrival order; None on timeout,
        and at once when a session ends while this call waits. An end that comes while
        a call finds a message waiting is said (None) by the next call that finds none,
        so the messages a session queued before its end come first (also when a new
        session of its name opened meanwhile: they count against its budget, and come
        out under the name, as the runtime reads them). Ends before the call
        are not said: the caller that wants them looks at :meth:`connected`. A session
        that opens while this call waits (with an empty inbox) wakes it too, and only
        then: the runtime waiting for a key holder back mid-phase sends it its request
        again at once, not at its next poll (up to 0.5 s later).

        Why the early None: a session's end is no message, so a server blocked here
        learnt of it only when its wait ran out (the runtime waits half a second at a
        time), and every branch that vanished cost its round up to that long waiting for
        nobody; the end now wakes it, and it looks at who is still connected. Ends are
        counted, not queued: however many sessions ended, one None says so, and a
        branch that churns sessions grows nothing here. Why not ends before the call
        too (the in-process hub says those): a caller that waits for one client's
        message after another's session ended, as the transport's own tests do, would
        get a None it did not wait for.

        Taking a message makes room in its session's queue, which lets a reader that
        waits for room (back-pressure) read on.

        A stop asked of the process (:func:`~secagg.transport.waiting.ask_stop`) is
        raised from here within :data:`~secagg.transport.waiting.STOP_LOOK_SECONDS`,
        whatever the timeout (:class:`~secagg.transport.waiting.StopAsked`): a stop a
        library swallowed before or inside this wait left the server waiting for as long
        as it was asked to, or for good.
        """
        timeout = waitable_seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            ends = self._ended_sessions if self._end_untold is None else self._end_untold
            self._end_untold = None
            opens = self._opened_sessions
            while not self._inbox:
                raise_if_stop_asked()
                if self._ended_sessions != ends:  # what the caller waits for may never come
                    return None
                if self._opened_sessions != opens:  # who it waits for may be back
                    return None
                if deadline is None:
                    self._changed.wait(STOP_LOOK_SECONDS)
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(min(left, STOP_LOOK_SECONDS))
            if self._ended_sessions != ends:  # said by the next call that finds none
                self._end_untold = ends
            session, payload = self._inbox.popleft()
            session.queued_messages -= 1
            session.queued_bytes -= len(payload)
            self._changed.notify_all()
            return session.name, payload

    def queued_bytes(self, name: str | None = None) -> int:
        """Bytes held for :meth:`receive`: delivered messages not read yet and messages
        being reassembled, of client ``name`` or of all clients (for monitoring and tests)."""
        with self._lock:
            held = sum(
                len(payload)
                for session, payload in self._inbox
                if name is None or session.name == name
            )
            partial = sum(
                s.partial_bytes for s in self._sessions.values() if name is None or s.name == name
            )
            return held + partial

    def peer_certificate(self, name: str) -> bytes | None:
        """The DER client certificate ``name``'s open session was admitted with.

        None if ``name`` has no open session or the session has no certificate (a
        plaintext test server). The certificate passed TLS verification against the
        server's roots and ``identify``; callers bind per-session keys to it.
        """
        with self._lock:
            session = self._sessions.get(name)
            return None if session is None else session.certificate

    def recheck_sessions(self) -> list[str]:
        """Check every open session's identity again now; end and return those that fail.

        A session fails when its certificate has expired, when ``identify`` now raises
        (revoked, or the revocation list no longer reads: fail closed; a
        :class:`~secagg.transport.certs.PeerVerifier` bridges a list unreadable for a
        moment with the last good one, so a hand edit does not end every session) or
        when it returns another name. The timer calls this every ``recheck_interval``; the
        runtime may also call it, e.g. before sampling a round.
        """
        with self._lock:
            sessions = list(self._sessions.values())
        ended = []
        for session in sessions:
            reason = self._revalidate(session)
            if reason is not None:
                self._end_identity(session, reason)
                ended.append(session.name)
        return ended

    def next_event(self, timeout: float | None = 0.0) -> ConnectionEvent | None:
        """The next :class:`Connected` or :class:`Disconnected`; None if none within ``timeout``."""
        timeout = waitable_seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._event_ready:
            while not self._events:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._event_ready.wait(left)
            return self._events.popleft()

    def queued(self) -> int:
        """How many complete messages wait for :meth:`receive` now."""
        with self._changed:
            return len(self._inbox)

    def wait_for_sessions(self, seen: int | None, timeout: float | None) -> int:
        """Wait until a session opened or ended, or the server stopped, after the
        change numbered ``seen`` (None: return at once), for at most ``timeout``
        seconds; returns the number of the latest change.

        For a caller waiting for parties to connect (the runtime's quorum wait): it
        reads the number, checks :meth:`connected`, and passes the number back, so a
        session that opened between its check and its wait wakes it at once (a
        change is counted, never missed). Before, that wait polled with a back-off up
        to a second apart, so a quorum was noticed up to a second after its last
        branch connected. A stop asked of the process is raised from here, as from
        :meth:`receive`, within :data:`~secagg.transport.waiting.STOP_LOOK_SECONDS`."""
        timeout = waitable_seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while seen is not None and self._sessions_serial == seen:
                raise_if_stop_asked()
                left = STOP_LOOK_SECONDS
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                    if left <= 0:
                        break
                self._changed.wait(left)
            return self._sessions_serial

    def _sessions_changed(self) -> None:
        """Count a change of the open sessions and wake every waiter (lock held)."""
        self._sessions_serial += 1
        self._changed.notify_all()

    @property
    def throttled_sessions(self) -> int:
        """New sessions refused so far because their identity opened too many lately."""
        with self._lock:
            return 0 if self._session_rate is None else self._session_rate.refused

    @property
    def dropped_events(self) -> int:
        """Events dropped unread because ``max_pending_events`` newer ones were pending."""
        with self._lock:
            return self._dropped_events

    def _publish(self, event: ConnectionEvent) -> None:
        """Queue an event for :meth:`next_event` (lock held), dropping the oldest if full.

        Events are a convenience for callers that want them (tests, tools); who is
        connected is always answered by :meth:`connected` and :meth:`session_id`, so
        losing old events loses no state, while keeping all of them let one branch
        that reopens sessions grow server memory without end (audit finding B).
        """
        if len(self._events) == self._events.maxlen:
            self._dropped_events += 1
            if self._dropped_events in (1, 10, 100, 1000) or self._dropped_events % 10000 == 0:
                logger.warning(
                    "%d connection events dropped unread (at most %d are kept)",
                    self._dropped_events,
                    self._events.maxlen,
                )
        self._events.append(event)
        self._event_ready.notify_all()

    # gRPC side

    def _open_session(
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """The Session handler: identify, register, start the reader, return the writer."""
        peer = context.peer()
        auth = _auth_snapshot(context)
        key = _identity_key(auth)
        if key is not None:  # before any other work for it: the check costs one digest
            self._throttle(context, key, auth, peer)
        if not self._tls_version_ok(auth, peer):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "TLS version not accepted")
        name = self._identify_or_none(context, peer)
        if name is None:  # the reason is logged; the client only learns it was refused
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "client identity not accepted")
        if key is None:  # no certificate (a plaintext test server): the name is the identity
            self._throttle(context, f"name:{name}", auth, peer, name)
        session = _Session(name, peer, context, auth, _certificate_of(auth))
        if session.not_valid_after is not None and _utcnow() >= session.not_valid_after:
            logger.warning("refused session from %s (%s): certificate expired", name, peer)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "client identity not accepted")
        with self._lock:
            if self._stopping:
                context.abort(grpc.StatusCode.UNAVAILABLE, "server is stopping")
            # the client gave up while identify ran (a dial abandoned by Ctrl-C, a
            # timeout): its call is over, so it must not supersede the live session of
            # the same name, which was then ended for a session already gone. is_active()
            # sees a call the client cancelled, add_callback one that ended since: gRPC
            # takes a call's callbacks when it ends, so it either refuses this one (the
            # call is over: refused here, nothing replaced) or runs it at the call's end,
            # where _call_ended waits for this lock, so after the session is registered.
            # Registered only after the supersession, a call that ended in between still
            # replaced the live session (transport review, 2026-12-07)
            if not context.is_active() or not context.add_callback(
                lambda: self._call_ended(session, context)
            ):
                logger.info("session from %s (%s) ended before it opened", name, peer)
                context.abort(grpc.StatusCode.CANCELLED, "call ended before the session opened")
            old = self._sessions.get(name)
            if old is not None:
                self._finish(
                    old, SUPERSEDED_DETAIL, abort=(grpc.StatusCode.ABORTED, SUPERSEDED_DETAIL)
                )
            adopted = self._adopt_earlier_unread(name, session)
            self._session_serial += 1
            session.id = self._session_serial
            self._sessions[name] = session
            self._publish(Connected(name, peer))
            self._opened_sessions += 1  # wakes a waiting receive(): see there
            self._sessions_changed()
        self._wake.set()  # the re-check timer may need to wake for this expiry
        if adopted:
            logger.info(
                "%d unread message(s) of the earlier session(s) of %s count against the "
                "budget of its new one",
                adopted,
                name,
            )
        logger.info("session opened: %s from %s (certificate %s)", name, peer, session.fingerprint)
        context.send_initial_metadata(((IDENTITY_METADATA_KEY, name.encode()),))
        threading.Thread(
            target=self._read,
            args=(session, request_iterator, context),
            name=f"secagg-grpc-read-{name}",
            daemon=True,
        ).start()
        return self._write(session, context)

    def _adopt_earlier_unread(self, name: str, session: _Session) -> int:
        """Count what ``name``'s ended sessions delivered and :meth:`receive` has not taken
        against the budget of ``session``, the new session of ``name`` opening (lock
        held; the earlier sessions are all finished, so none delivers more); return how
        many messages. They stay in the inbox, in arrival order, and are still delivered.

        Why count them: the bound of unread data was a session's, so a branch that
        filled its budget, closed and reopened between rounds (the runtime's server reads
        only inside one) made the server hold one budget per session it opened, against
        the promise of one per branch (review finding M2): three sessions held three
        budgets. Counted as the new session's, they leave it only the rest of the one
        budget, and a session over it is ended with all of it dropped, as ever.

        Why not drop them (a95f8af and f90239c did): the runtime reads by name, round and
        phase, not by session (``FederationServer._receive``; an old session's last
        messages legitimately arrive after a reconnect, and the in-process hub, which the
        runtime's tests use in this transport's stead, delivers them), so an honest
        branch whose upload was in the inbox as its link blipped lost it to its redial:
        its round ran without it, or aborted below its quorum (review, 2026-12-06)."""
        kept: deque[tuple[_Session, bytes]] = deque()
        adopted = 0
        for earlier, payload in self._inbox:
            if earlier.name != name or earlier is session:
                kept.append((earlier, payload))
                continue
            adopted += 1
            earlier.queued_messages -= 1
            earlier.queued_bytes -= len(payload)
            session.queued_messages += 1
            session.queued_bytes += len(payload)
            kept.append((session, payload))
        if adopted:
            self._inbox = kept
        return adopted

    def _throttle(
        self,
        context: grpc.ServicerContext,
        key: str,
        auth: Mapping[str, Sequence[bytes]],
        peer: str,
        name: str | None = None,
    ) -> None:
        """Refuse (abort) a new session of an identity over its rate; else take a token."""
        if self._session_rate is None:
            return
        with self._lock:
            wait, streak = self._session_rate.admit(key, time.monotonic())
        if not wait:
            return
        if streak in (1, 10, 100, 1000) or streak % 10000 == 0:  # not one line per refusal
            logger.warning(
                "refused a new session of %s from %s: %s (%d in a row; at most %d at once "
                "and %g a second)",
                repr(name) if name else _common_name(auth),
                peer,
                THROTTLE_DETAIL,
                streak,
                self._session_rate.burst,
                self._session_rate.rate,
            )
        context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"{THROTTLE_DETAIL}; retry in {wait:.1f} s"
        )

    def _tls_version_ok(self, auth: Mapping[str, Sequence[bytes]], peer: str) -> bool:
        """Whether the negotiated TLS version is at least ``min_tls_version`` (logged if not).

        An auth context without the version (another grpcio, another credential type)
        fails closed: the promise is "TLS 1.3", not "TLS 1.3 when we can tell".
        """
        if self._credentials is None or self._min_tls_version is None:
            return True
        values = list(auth.get(_TLS_VERSION_KEY) or [])
        version = values[0].decode("ascii", "replace") if len(values) == 1 else None
        if (
            version is not None
            and TLS_VERSIONS.get(version, 0) >= TLS_VERSIONS[self._min_tls_version]
        ):
            return True
        logger.warning(
            "refused session from %s: negotiated %s, the minimum is %s",
            peer,
            version or "an unknown TLS version",
            self._min_tls_version,
        )
        return False

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
        session.reassembler = reassembler
        try:
            for frame in request_iterator:
                if not self._within_budget(session, reassembler, frame):
                    return
                with session.feeding:
                    if session.finished:  # ended meanwhile: its partial message is gone
                        return
                    message = reassembler.feed(frame)
                with self._lock:
                    now = time.monotonic()
                    session.partial_bytes = reassembler.buffered
                    begun = session.partial_deadline is None and session.message_deadline is None
                    session.partial_deadline = (
                        now + self._partial_idle_timeout
                        if reassembler.partial and self._partial_idle_timeout is not None
                        else None
                    )
                    if not reassembler.partial:
                        session.message_deadline = None
                    elif session.message_deadline is None:  # this frame began a message
                        session.message_deadline = (
                            None
                            if self._message_receive_timeout is None
                            else now + self._message_receive_timeout
                        )
                    due = (
                        session.partial_deadline is not None or session.message_deadline is not None
                    )
                if begun and due:
                    self._wake.set()  # the timer may need to wake for this deadline
                if message is None:
                    continue
                if not self._deliver(session, message, context):
                    return
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
            # A frame above gRPC's size limit, and a connection that drops (a killed
            # process, a cut network), also end the request stream without an error, like
            # a clean half-close (reliability review D6, D8). The two were told apart by
            # waiting a quarter of a second for the call to die and then asking
            # is_active(): the call's cancellation is a second event of gRPC's one event
            # thread, and on a loaded server (a long computation holding the GIL) it came
            # later, so a drop was logged as a clean close (transport review,
            # 2026-12-06). Now the server ends its side (what is queued is written, then
            # OK), and the session ends when the call has: the call's end says whether a
            # client took that end (_call_ended). No time decides it; the bound only ends
            # a session whose call never ends.
            with self._changed:
                session.half_closed = True
                if reassembler.partial:  # the message in progress never ends: dropped
                    message_id = reassembler.message_id
                    # freed now, not when the call ends (up to _HALF_CLOSE_END_SECONDS
                    # later for a peer that takes no end): nothing can complete it
                    dropped = reassembler.discard()
                    session.cut_short = f"{dropped} bytes of message {message_id} dropped"
                    session.partial_bytes = 0
                    # the deadlines of a message that cannot go on: the call's end, not
                    # the stall timer, says how the session ended
                    session.partial_deadline = session.message_deadline = None
            session.outbox.put(_END)
            with self._changed:
                ended = self._changed.wait_for(lambda: session.finished, _HALF_CLOSE_END_SECONDS)
            if not ended:  # nobody takes the end: a peer that reads nothing, or a wedged call
                with self._lock:
                    cut_short = session.cut_short
                # mid-message, the end names what was dropped, as when the peer takes the
                # end (_call_ended): "connection lost" alone hid a broken or hostile peer
                where = "" if cut_short is None else f" in the middle of a message ({cut_short})"
                logger.warning(
                    "ending session of %s (%s): it half-closed%s and took no end of the "
                    "stream for %g s",
                    session.name,
                    session.peer,
                    where,
                    _HALF_CLOSE_END_SECONDS,
                )
                self._finish(
                    session,
                    "connection lost"
                    if cut_short is None
                    else f"client closed the session mid-message ({cut_short}) and took no "
                    "end of the stream",
                )
                # its writer may wait in flow control, holding one of max_clients calls
                context.cancel()

    def _call_ended(self, session: _Session, context: grpc.ServicerContext) -> None:
        """The call's termination callback (gRPC's event thread): end the session, as a
        clean close if the client half-closed and took the server's end of the stream,
        else as a lost connection."""
        with self._lock:
            half_closed, cut_short = session.half_closed, session.cut_short
        if not (half_closed and not _call_cancelled(context)):
            self._finish(session, "connection lost")
        elif cut_short is not None:
            # a client closing mid-message is broken or hostile, never a clean close that
            # the message log may read as complete (transport review, 2026-12-06)
            logger.warning(
                "session of %s (%s) closed in the middle of a message: %s",
                session.name,
                session.peer,
                cut_short,
            )
            self._finish(session, f"client closed the session mid-message ({cut_short})")
        else:
            self._finish(session, "client closed the session")

    def _within_budget(self, session: _Session, reassembler: Reassembler, frame: bytes) -> bool:
        """Whether the session may hold this frame's data too; if not, end it (logged)."""
        with self._lock:
            if session.finished:
                return False
            held = session.queued_bytes + reassembler.buffered
            if held + max(0, len(frame) - HEADER_BYTES) <= self._max_queued_bytes:
                return True
        reason = (
            f"over its budget of {self._max_queued_bytes} unread bytes "
            f"({held} held, a chunk of {len(frame) - HEADER_BYTES} more)"
        )
        self._end_for_cause(
            session, reason, grpc.StatusCode.RESOURCE_EXHAUSTED, "too much unread data queued"
        )
        return False

    def _deliver(self, session: _Session, message: bytes, context: grpc.ServicerContext) -> bool:
        """Queue one message for :meth:`receive`, waiting while the session's queue is full.

        While the reader waits it reads no frame, so gRPC stops granting the peer HTTP/2
        flow-control window: the sender blocks, and its data stays on its side. Returns
        False once the session is over (nothing more of it is delivered).
        """
        if session.not_valid_after is not None and _utcnow() >= session.not_valid_after:
            self._end_identity(session, "certificate expired")
            return False
        with self._changed:
            session.partial_bytes = len(message)  # held here while the queue is full
        while True:
            with self._changed:
                if session.finished:
                    session.partial_bytes = 0
                    return False
                if session.queued_messages < self._max_queued_messages:
                    session.partial_bytes = 0
                    self._inbox.append((session, message))
                    session.queued_messages += 1
                    session.queued_bytes += len(message)
                    self._changed.notify_all()
                    return True
                woken = self._changed.wait(_POLL_SECONDS)
            if not woken and not context.is_active():  # outside our lock: gRPC takes its own
                self._finish(session, "connection lost")
                return False

    def _revalidate(self, session: _Session) -> str | None:
        """Why an open session's identity no longer holds, or None if it still does."""
        if session.not_valid_after is not None and _utcnow() >= session.not_valid_after:
            return "certificate expired"
        context = _AdmittedContext(session.context, session.auth)
        try:
            name = self._identify(context)  # type: ignore[arg-type]
        except Exception as exc:  # a refusal, or a revocation list that no longer reads
            raise_stop_within(exc)  # a Ctrl-C or SIGTERM that surfaced as this: the stop
            # asked once more before the party is ended for good: a stop taken inside the
            # certificate check came out as "signature does not match" with no trace of
            # it (cryptography's verifier, stop stress of 2026-12-07), and the server
            # evicted an honest branch with a permanent refusal; a real refusal repeats
            try:
                name = self._identify(context)  # type: ignore[arg-type]
            except Exception:
                return f"identify refuses it now: {exc}"
        if name != session.name:
            return f"identify now names it {name!r}"
        return None

    def _end_identity(self, session: _Session, reason: str) -> None:
        """End a session whose identity no longer holds; its unread messages are dropped."""
        logger.warning(
            "ending session of %s (%s, certificate %s): %s",
            session.name,
            session.peer,
            session.fingerprint,
            reason,
        )
        self._finish(
            session,
            f"identity no longer accepted: {reason}",
            abort=(grpc.StatusCode.UNAUTHENTICATED, "client identity no longer accepted"),
            purge=True,
        )

    def _recheck_loop(self) -> None:
        """Timer thread: re-check identities every ``recheck_interval``, expiries on time."""
        next_full = (
            None if self._recheck_interval is None else time.monotonic() + self._recheck_interval
        )
        while True:
            with self._lock:
                if self._stopping:
                    return
                expiries = [s.not_valid_after for s in self._sessions.values() if s.not_valid_after]
                stalls = [
                    due
                    for s in self._sessions.values()
                    for due in (s.partial_deadline, s.message_deadline)
                    if due is not None
                ]
            delays = [] if next_full is None else [next_full - time.monotonic()]
            if expiries:
                delays.append((min(expiries) - _utcnow()).total_seconds())
            if stalls:
                delays.append(min(stalls) - time.monotonic())
            delay = max(0.01, min(delays)) if delays else None
            self._wake.wait(delay)
            self._wake.clear()
            try:
                if next_full is not None and time.monotonic() >= next_full:
                    next_full = time.monotonic() + (self._recheck_interval or 0.0)
                    self.recheck_sessions()
                else:
                    with self._lock:
                        sessions = list(self._sessions.values())
                    now = _utcnow()
                    for session in sessions:
                        if session.not_valid_after is not None and now >= session.not_valid_after:
                            self._end_identity(session, "certificate expired")
                self._end_stalled()
            except Exception:  # the timer must outlive one bad check
                logger.exception("re-checking session identities failed")

    def _end_stalled(self) -> None:
        """End the sessions whose message in progress got no frame in time, or is not
        whole in time (logged).

        The budget bounds how much a partial message holds, this how long: a peer
        that sends most of a message and stops would otherwise keep that memory for
        as long as it keeps the connection, and one that sends a frame just before each
        idle deadline for the message's frames times that deadline. The stream cannot
        resume past a dropped message (ids must be consecutive), so the session ends,
        like any framing fault.
        """
        now = time.monotonic()
        with self._lock:
            stalled = [
                s
                for s in self._sessions.values()
                if s.partial_deadline is not None and now >= s.partial_deadline
            ]
            slow = [
                s
                for s in self._sessions.values()
                if s.message_deadline is not None and now >= s.message_deadline and s not in stalled
            ]
        for session in stalled:
            reason = (
                f"a partial message of {session.partial_bytes} bytes got no frame for "
                f"{self._partial_idle_timeout:g} s"
            )
            self._end_for_cause(
                session, reason, grpc.StatusCode.DEADLINE_EXCEEDED, "message stalled mid-way"
            )
        for session in slow:
            reason = (
                f"a message begun {self._message_receive_timeout:g} s ago is not whole "
                f"({session.partial_bytes} bytes of it received)"
            )
            self._end_for_cause(
                session, reason, grpc.StatusCode.DEADLINE_EXCEEDED, "message took too long"
            )

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
                with self._lock:  # being written now: the cap is on what waits behind it
                    session.outbox_bytes -= len(payload)
                for frame in encode_frames(message_id, payload, self._chunk_bytes):
                    # set before the check: an end that comes between the two sees it and
                    # watches the write (see _finish), one that comes before is seen here
                    session.writing = True
                    if session.abort is not None:
                        context.abort(*session.abort)
                    yield frame
                    session.writing = False
        finally:
            with self._lock:
                half_closed = session.half_closed
            if not half_closed:  # else the call's end ends the session: see _call_ended
                self._finish(session, "connection lost")

    def _drop_partial(self, session: _Session) -> None:
        """Free the message an ended session's reader was reassembling.

        Why now: nothing of an ended session is delivered, so the message can never be
        whole, yet its reader, blocked in gRPC for the next frame, held it until gRPC
        ended the call; with a writer waiting in flow control (a peer that reads nothing)
        that was ``_ENDED_WRITER_GRACE_SECONDS`` later, up to a budget's worth of memory
        no longer counted anywhere while the same branch could open a new session
        (transport review, 2026-12-06). Taken under the reader's ``feeding`` lock, which
        it holds only inside one ``feed`` (it takes no other lock there), so a frame is
        never fed into a buffer being dropped; the reader checks ``finished`` under it."""
        reassembler = session.reassembler
        if reassembler is None:
            return
        with session.feeding:
            reassembler.discard()

    def _cancel_stuck_writer(self, session: _Session) -> None:
        """Cancel the call of an ended session whose writer is still inside one write.

        Why: the session's status (superseded, identity refused, a limit broken) reaches
        the peer through the writer; one waiting in gRPC's flow control never comes
        back to send it, and the call then held one of the server's ``max_clients``
        concurrent calls and a thread while the peer kept its connection, so a branch
        that reads nothing and reopens its session locked the others out (transport
        review, 2026-12-06). The peer learns only that the call was cancelled."""
        if session.writing and session.context.is_active():
            logger.info(
                "cancelled the call of %s (%s): it took no data for %g s after its session ended",
                session.name,
                session.peer,
                _ENDED_WRITER_GRACE_SECONDS,
            )
            session.context.cancel()

    def _end_for_cause(
        self, session: _Session, reason: str, status: grpc.StatusCode, detail: str
    ) -> None:
        """End a session that broke one of the transport's limits: logged, its call
        aborted with ``status``, whatever it had queued dropped."""
        logger.warning("ending session of %s (%s): %s", session.name, session.peer, reason)
        self._finish(session, reason, abort=(status, detail), purge=True)

    def _finish(
        self,
        session: _Session,
        reason: str,
        *,
        abort: tuple[grpc.StatusCode, str] | None = None,
        purge: bool = False,
    ) -> None:
        """End a session once: unregister it, publish Disconnected, wake its reader and writer.

        ``purge`` also drops its messages not read yet (a session ended for what it sent,
        or for who it no longer is): their memory is freed now, and none is delivered.
        (Those of a session ended otherwise count against the budget of the next session
        of its name: :meth:`_adopt_earlier_unread`.)
        """
        with self._changed:
            if session.finished:
                return
            session.finished = True
            session.abort = abort
            if self._sessions.get(session.name) is session:
                del self._sessions[session.name]
            dropped = 0
            if purge and session.queued_messages:
                kept = deque(item for item in self._inbox if item[0] is not session)
                dropped = len(self._inbox) - len(kept)
                self._inbox = kept
                session.queued_messages = session.queued_bytes = 0
            session.partial_bytes = 0
            session.partial_deadline = session.message_deadline = None
            if abort is not None:  # nothing more is written: free what was waiting for it
                while True:
                    try:
                        item = session.outbox.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, tuple):
                        session.outbox_bytes -= len(item[1])
            self._publish(Disconnected(session.name, reason))
            self._ended_sessions += 1  # wakes receive(): see there
            self._sessions_changed()
        self._drop_partial(session)
        session.outbox.put(_END)
        if abort is not None and session.writing:
            watch = threading.Timer(
                _ENDED_WRITER_GRACE_SECONDS, self._cancel_stuck_writer, args=(session,)
            )
            watch.daemon = True
            watch.start()
        if dropped:
            logger.info("dropped %d unread messages of %s", dropped, session.name)
        logger.info("session closed: %s (%s)", session.name, reason)
