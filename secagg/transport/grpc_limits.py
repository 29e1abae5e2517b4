"""What both ends of the gRPC transport agree on, and the limits they are built with.

The wire names (the one service and its ``Session`` method, the metadata key that
tells a client its name, the probe method no server serves), the channel options
(keepalive, reconnect back-off), every default limit with the reason for its value,
and the checks that refuse a limit gRPC or a timer could not take (one line naming
the argument, :class:`~secagg.errors.ConfigurationError`).

Why a module of its own: the server (:mod:`secagg.transport.grpc_server`) and the
client (:mod:`secagg.transport.grpc_client`) read the same values, and a limit is
easier to review beside its siblings than inside the class that enforces it. The
theory of operation, the framing and the limits as a whole are specified in
:mod:`secagg.transport.grpc_transport`, from which every name here is also importable.
"""

from __future__ import annotations

import threading
from typing import Final

from secagg.errors import ConfigurationError
from secagg.transport.base import MAX_WAIT_SECONDS

SERVICE_NAME: Final = "secagg.transport.v1.Transport"


SESSION_METHOD: Final = f"/{SERVICE_NAME}/Session"


IDENTITY_METADATA_KEY: Final = "secagg-client-name-bin"  # -bin: names may be any UTF-8


#: how fast a dialling client retries a connection: gRPC's default backoff grows to
#: 120 s, so a branch would notice a restarted server minutes late (review D1)
_CLIENT_RECONNECT: Final = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)


#: every client transport on a connection of its own: gRPC's global subchannel pool
#: put the channels of one process with the same target and arguments (plaintext test
#: clients, a party's redial on the same credentials object) on one connection, so they
#: shared its streams, and the server's cap on them (:data:`MAX_STREAMS_PER_CONNECTION`)
#: refused the ninth party of a process; one transport is one session, one connection
_CLIENT_OWN_CONNECTION: Final = (("grpc.use_local_subchannel_pool", 1),)


#: the most streams one connection may hold open at once (HTTP/2's
#: SETTINGS_MAX_CONCURRENT_STREAMS, the server's ``grpc.max_concurrent_streams``); gRPC's
#: default is no limit. Why: a party opens one session stream per connection, but one
#: enrolled branch that sent 100 000 stream openings down one connection made the server
#: queue every one for its handler: its memory grew from 53 MB to 384 MB, and 16 such
#: connections held an honest branch's messages up to 7.9 s and made its redial fail
#: (liveness review, 2026-12-07). Past the cap gRPC refuses a stream at once
#: (``REFUSED_STREAM``) without the handler, a thread or a token; measured with the
#: cap, the same 16 connections: 111 MB, 1.3 s, the redial made (one connection: 64 MB).
#: Why not lower: a stream gRPC still counts for a moment after its session ended (a
#: client that opens and cancels sessions on one channel) held the slots, and at 8 the
#: transport's session-churn test stalled (at 16 the flood cost 88 MB and 0.36 s).
MAX_STREAMS_PER_CONNECTION: Final = 100


_SERVER_STREAMS: Final = (("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),)


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


#: how long a connection may take from TCP accept to a finished TLS handshake: gRPC's
#: default is 120 s, so anyone who reaches the port held a file descriptor for two
#: minutes per silent connection (review, 2026-12-05); an honest handshake takes two
#: round trips, well under a second even across continents
DEFAULT_HANDSHAKE_SECONDS: Final = 10.0


#: how long a connection with no open call is kept (gRPC's ``grpc.max_connection_idle_ms``):
#: a branch's session stream is open for its connection's whole life, so only a
#: connection opened for nothing (an enrolled party holding descriptors, or a dial
#: abandoned half-way) is idle this long. Every call restarts the clock, one refused at
#: once included, so a party that makes a call on a connection now and then keeps it:
#: this bounds a connection left alone, not one held on purpose (gRPC has no
#: per-peer connection limit; tests/transport/test_grpc_identity_connection_hold.py)
DEFAULT_IDLE_CONNECTION_SECONDS: Final = 60.0


#: the longest duration gRPC takes as a channel argument: milliseconds in a C ``int``
#: (2**31 - 1 ms, about 24.8 days); one more and ``start()`` died in grpcio with a bare
#: ``OverflowError`` naming no argument
GRPC_MAX_MILLISECONDS: Final = 2**31 - 1


#: the most incoming connections the default connection cap allows: far above the
#: sessions of any federation, so the cap binds only on a flood
_MAX_DEFAULT_CONNECTIONS: Final = 4096


_POLL_SECONDS: Final = 1.0  # how often an idle writer re-checks that its stream is alive


#: how long a half-closed session's call may take to end once the server ended its side
#: of the stream (a live client takes that end at once, and gives up on it after its own
#: close timeout of 5 s; gRPC ends the call of a dropped one when it handles the drop):
#: past it the session is ended as lost (or, if it half-closed mid-message, as closed
#: mid-message and the end not taken). Generous, and no time decides how a session
#: ended: the call's end says that (see the server's reader)
_HALF_CLOSE_END_SECONDS: Final = 10.0


#: how long the writer of a session the server ended with a status may stay inside one
#: write before its call is cancelled: a writer waiting in gRPC's flow control (a peer
#: that reads nothing) never comes back to send that status, and its call held one of
#: the server's ``max_clients`` calls and a thread for as long as the peer kept the
#: connection (transport review, 2026-12-06). Long enough for a slow but reading peer to
#: take a chunk and be told why its session ended (a superseded one is not redialled)
_ENDED_WRITER_GRACE_SECONDS: Final = 10.0


DEFAULT_MAX_QUEUED_MESSAGES: Final = 32  # unread messages per session before its reader waits


MIN_QUEUED_BYTES: Final = 64 << 20  # the smallest default budget of unread bytes per session


#: connection events kept for next_event(): nothing in the runtime reads them (it polls
#: connected() and session_id()), so an unbounded queue grew with every session (audit B)
DEFAULT_MAX_PENDING_EVENTS: Final = 1024


#: how long a message begun may wait for its next frame: longer than any stall of a live
#: link (keepalive notices a dead one within about 140 s), short enough that a peer
#: cannot park its budget's worth of server memory for the server's lifetime (audit A)
DEFAULT_PARTIAL_IDLE_SECONDS: Final = 300.0


#: how long a message may take from its first frame to its last: the idle bound above
#: restarts at every frame, so a peer sending one frame every 299 s kept a message (and
#: up to its budget of server memory) open for frames times 299 s, 5 hours for a 64 MiB
#: message of 1 MiB chunks (transport review, 2026-12-06). An hour is a hundred times the
#: runtime's default phase deadline (a message later than its phase is refused anyway)
#: and lets a 256 MiB message (the runtime's default limit) come at 75 KB/s
DEFAULT_MESSAGE_RECEIVE_SECONDS: Final = 3600.0


#: messages a client holds from the server unread before its session ends (InboxOverflow):
#: an honest server sends a branch a handful per round, a hostile one could send without end
DEFAULT_MAX_INBOX_MESSAGES: Final = 1024


#: new sessions one identity may open at once, and per second after that (a token bucket):
#: an honest branch opens one per server start or network cut (its redials are at least a
#: quarter second apart, and at most 4 s once it keeps failing); one that churns costs
#: the server a TLS handshake, a certificate check and a thread per session (audit)
DEFAULT_SESSION_BURST: Final = 10


DEFAULT_SESSION_RATE: Final = 1.0

#: The least ``session_rate``: one session a week, so a refused branch is told to wait at
#: most the longest deadline a federation has (``MAX_WAIT_SECONDS``). Why: a refused
#: branch is told to retry in ``(1 - tokens) / rate`` seconds, and ``session_rate =
#: 5e-324`` was taken: its first refusal said "retry in inf s" (1e-300: a wait of 10^300
#: s), a limit no branch could ever come back from (config review, 2026-12-06). Defined
#: here, the lowest layer that needs it, for the transport's constructor and the
#: ``[server] session_rate`` key (secagg.runtime.config) alike. No limit is
#: ``session_burst=None`` (the key's 0).
MIN_SESSION_RATE: Final = 1 / MAX_WAIT_SECONDS

#: The largest ``session_burst`` the token buckets count exactly: they hold tokens as
#: floats, exact to 2^53 (past it, taking a token leaves the count as it was, a limit
#: that never limits). Why a bound: ``session_burst=10**400`` was taken, and then every
#: new session raised OverflowError in ``float(burst)`` at its admission, so no client
#: could open one (upper-bounds review, 2026-12-06). Defined here, the lowest layer that
#: needs it, for the transport's constructor and the ``[server] session_burst`` key
#: (secagg.runtime.config) alike: two copies could drift apart.
MAX_SESSION_BURST: Final = 2**53


#: identities whose buckets are kept before full (idle) ones are forgotten
_MAX_TRACKED_IDENTITIES: Final = 4096


DEFAULT_RECHECK_SECONDS: Final = 30.0  # how often open sessions' identities are re-checked


TLS_VERSIONS: Final = {"TLSv1": 10, "TLSv1.1": 11, "TLSv1.2": 12, "TLSv1.3": 13}


_TLS_VERSION_KEY: Final = "ssl_tls_version"  # grpcio's auth-context property


_PEER_CERT_KEY: Final = "x509_pem_cert"


#: a method no server serves: a call to it opens no session, and its failure carries
#: the channel's last connection error (the real cause of a failed dial)
_PROBE_METHOD: Final = f"/{SERVICE_NAME}/Probe"


_END: Final = object()  # outbox sentinel: finish the stream after what is queued


def default_max_connections(max_clients: int, descriptor_limit: int | None = None) -> int:
    """The default cap on a server's open connections: half the process's file
    descriptors (``RLIMIT_NOFILE``'s soft limit; ``descriptor_limit`` for tests), at most
    :data:`_MAX_DEFAULT_CONNECTIONS`, and never below two per client plus 16.

    Why: without a cap every connection took a descriptor, and a flood of connections
    from anyone who reaches the port ran the process out of them, so the server could
    no longer open its own database or ledger; with the cap, a flood is refused at
    accept and the process keeps the other half. Two per client: after a network cut a
    branch's new connection arrives while its half-open old one still counts, until
    keepalive notices (about 140 s)."""
    if descriptor_limit is None:
        try:
            import resource  # POSIX only
        except ImportError:
            descriptor_limit = 2 * _MAX_DEFAULT_CONNECTIONS
        else:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            unlimited = soft == resource.RLIM_INFINITY or soft <= 0
            descriptor_limit = 2 * _MAX_DEFAULT_CONNECTIONS if unlimited else soft
    return max(2 * max_clients + 16, min(descriptor_limit // 2, _MAX_DEFAULT_CONNECTIONS))


def _queue_budgets(
    max_message_bytes: int,
    max_queued_messages: int,
    max_queued_bytes: int | None,
    max_outbox_bytes: int | None,
) -> tuple[int, int]:
    """A session's inbox and outbox budgets in bytes, checked (the same rules for a
    server's session and a client's): None is max(2 x max_message_bytes,
    MIN_QUEUED_BYTES); a budget below one largest message could never pass it."""
    if not isinstance(max_queued_messages, int) or max_queued_messages < 1:
        raise ConfigurationError("max_queued_messages must be at least 1")
    budgets: list[int] = []
    for name, budget, verb in (
        ("max_queued_bytes", max_queued_bytes, "received"),
        ("max_outbox_bytes", max_outbox_bytes, "sent"),
    ):
        if budget is None:
            budget = max(2 * max_message_bytes, MIN_QUEUED_BYTES)
        if not isinstance(budget, int) or budget < max_message_bytes:
            raise ConfigurationError(
                f"{name} must be at least max_message_bytes, or no message of the "
                f"largest allowed size could be {verb}"
            )
        budgets.append(budget)
    return budgets[0], budgets[1]


def _outbox_overrun(budget: int, unsent: int, size: int) -> str | None:
    """Why a message of ``size`` bytes may not be queued behind ``unsent`` bytes not yet
    written, under an outbox ``budget`` (None: it may). One rule for both ends: a
    server's session and a client's end theirs with this reason (each adds who is not
    reading)."""
    if unsent + size <= budget:
        return None
    return f"over its budget of {budget} unsent bytes ({unsent} queued, a message of {size} more)"


def grpc_milliseconds(name: str, seconds: object) -> int:
    """``seconds`` as the whole milliseconds gRPC takes for the channel argument of
    the constructor argument ``name``, refused (:class:`ConfigurationError`, one line
    naming ``name``) unless a positive finite number of at most
    :data:`GRPC_MAX_MILLISECONDS` ms.

    Why refused and not clamped: the value is a limit someone chose, and 30 days
    quietly becoming 24.8 is a different limit from the one they wrote; the ``[server]``
    configuration caps these at a day, but :class:`GrpcServerTransport` is also built
    directly. A positive value under half a millisecond is taken as 1 ms (gRPC's
    smallest): rounding it to 0 would turn the limit off."""
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not 0 < seconds < float("inf")
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {seconds!r}")
    milliseconds = max(1, round(seconds * 1000))
    if milliseconds > GRPC_MAX_MILLISECONDS:
        raise ConfigurationError(
            f"{name} must be at most {GRPC_MAX_MILLISECONDS / 1000:g} s (gRPC takes "
            f"milliseconds in a 32-bit integer), not {seconds!r}"
        )
    return milliseconds


def _check_timer_seconds(name: str, seconds: float | None) -> None:
    """Refuse (:class:`ConfigurationError`, naming ``name``) a timer duration the
    re-check thread cannot wait: not positive, not finite, or above
    ``threading.TIMEOUT_MAX``. Why: ``inf`` (or 1e10) was accepted and the timer
    thread died at its first wait with ``OverflowError``, silently leaving expired
    certificates and stalled messages unended; None is how to say "no limit"."""
    if seconds is None:
        return
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not 0 < seconds <= threading.TIMEOUT_MAX
    ):
        raise ConfigurationError(
            f"{name} must be a positive number of seconds, at most "
            f"{threading.TIMEOUT_MAX:g} (or None: no limit), not {seconds!r}"
        )
