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
sessions proved the same certificate identity anyway. Every session gets a new
id (:meth:`GrpcServerTransport.session_id`), so the runtime can tell that a
participant's session ended even when the participant is already back under the
same name (reliability review D6).

Dial failures name their cause. When a client's dial times out, a call to a
method no server serves (it opens no session) fetches the channel's last
connection error: a certificate the other side refused or could not verify is a
:class:`HandshakeFailed`, a server certificate from the right CA that lacks the name
checked (the host dialled, or ``name_override``) a :class:`ServerNameMismatch` naming
the names it holds, and a server that refuses the identity (``UNAUTHENTICATED``,
``PERMISSION_DENIED``) an :class:`IdentityRefused`; all are
:class:`~secagg.transport.base.NotAccepted`, which a branch does not redial.
With TLS 1.3 a server that refuses this client's certificate (another CA's, expired)
does so after the client's handshake is done, hanging up without an alert: gRPC says
only "Socket closed" (a peer that hangs up *during* the handshake reads "Handshake read
failed"). One such dial is a :class:`ClosedAfterHandshake`; the client dials once more
on a fresh channel, and the same again, with the server still accepting connections,
is a :class:`CertificateRefusalInferred` (a :class:`HandshakeFailed` whose message says
"most likely": no alert tells, see that class); a server that stopped listening after
the two closes is a network failure. A host name DNS says does not exist is an
:class:`UnknownHost` at the first dial (looked up before each dial, an IP address never).
A session ended because a newer one opened under
the same identity is a :class:`Superseded` (a twin process), never redialled.
Anything else (connection refused, the socket closed mid-handshake, a timeout) is
a :class:`~secagg.transport.base.NotConnected` whose message says which. Clients
redial within a dial quickly (gRPC's reconnect back-off capped at 2 s, instead of
its default 120 s), so a restarted server is found within seconds.

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
chunk. The cut is canonical: a message comes in exactly
``max(1, ceil(total / chunk_bytes))`` chunks, each of exactly ``chunk_bytes`` but
the last, so a peer cannot make the receiver keep one object per tiny chunk (audit
finding A). A declared total above the receiver's ``max_message_bytes`` is refused
on the *first* frame, before anything is buffered, and a message's chunks are
copied into one buffer that grows only with data actually received, so a peer
cannot make the receiver allocate what it never sends, and a partial message holds
about its payload bytes. gRPC's own ``grpc.max_receive_message_length`` and
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
runtime itself reads no events: it learns of sessions from
:meth:`~GrpcServerTransport.connected` and :meth:`~GrpcServerTransport.session_id`,
where a session that ended is a dropout. So that it looks at once, not when its wait
runs out, a session that ends while :meth:`~GrpcServerTransport.receive` waits makes it
return None (once no message is waiting; one None however many ended), and
:meth:`~GrpcServerTransport.wait_for_sessions` wakes a caller waiting for parties (the
quorum wait) when a session opens or ends. Events wait for a reader that may never
come, and at most ``max_pending_events`` (default 1024) are kept; past that the
oldest is dropped, counted in :attr:`~GrpcServerTransport.dropped_events` and logged
(audit finding B: one branch reopening sessions queued some 1000 events a second,
kept for the server's lifetime).

Back-pressure. Each session may have ``max_queued_messages`` messages delivered and
not yet taken by :meth:`~GrpcServerTransport.receive`; its reader then stops reading
frames until the runtime takes one, so gRPC stops granting the peer HTTP/2 window and
the sender blocks with its data on its own side. The bytes a session holds unread
(delivered messages plus the message being reassembled) are also capped by
``max_queued_bytes``; a session over it is ended with ``RESOURCE_EXHAUSTED`` and its
unread messages are dropped. :meth:`~GrpcServerTransport.queued_bytes` reports the
figure. A message begun must also keep coming: one whose next frame has not arrived
within ``partial_idle_timeout`` (default 300 s; each frame restarts the clock) ends
the session with ``DEADLINE_EXCEEDED`` and drops its data, so a peer cannot park a
budget's worth of memory in a message it never finishes.

The other direction is capped too: the bytes :meth:`~GrpcServerTransport.send`
queued for a session behind the message being written (the client does not read,
so HTTP/2 grants no window and the writer waits) may not exceed
``max_outbox_bytes``; the send that would exceed it ends the session instead
(logged, the call cancelled because its writer waits inside gRPC, a
:class:`Disconnected` published, the unsent messages dropped) and raises
:class:`OutboxOverflow`, a :class:`~secagg.transport.base.NotConnected`. So one
branch holds at most ``max_queued_bytes`` plus ``max_outbox_bytes`` plus the one
message being written. A client bounds what the server makes it hold the same way:
at most ``max_queued_messages`` (default 1024) messages and ``max_queued_bytes``
unread, the message being received included; past either it ends the session
itself (``RESOURCE_EXHAUSTED``, what it held dropped) and :meth:`receive` raises
:class:`InboxOverflow`, a :class:`~secagg.transport.base.NotConnected` (before, a
server could grow a branch without end: 4000 messages of 256 KiB held 1000 MiB).

Session churn. New sessions are rate-limited per identity: a token bucket per client
certificate (``session_burst``, default 10, refilled at ``session_rate``, default 1 a
second), checked on the certificate's digest before ``identify``, a thread or an event.
An identity over it is refused with ``RESOURCE_EXHAUSTED`` and :data:`THROTTLE_DETAIL`
(its client raises :class:`SessionThrottled` and redials after its back-off); its open
session and every other identity are untouched. Before, one branch opening and closing
sessions in a loop was admitted some 330 times a second.

Connections. Every connection holds a file descriptor from TCP accept on, before any
certificate is seen, so they are bounded apart from sessions: one that has not finished
its TLS handshake within ``handshake_timeout`` (default 10 s; gRPC's own default is
120 s) is closed, one with no session open for ``idle_connection_timeout`` (default
60 s: an enrolled party's connection opened for nothing) too, and at most
``max_connections`` are open at once (default :func:`default_max_connections`: half the
process's descriptors, at most 4096, at least two per client); past it a new connection
is closed at accept, and the sessions already open are untouched. Before, 50 silent
sockets were all still open after 119 s and nothing capped their number, so a flood
from anyone who reaches the port could take every descriptor of the process, its
database's and its ledger's included (hostile review, 2026-12-05). A flood within the
cap still keeps new branches out while it lasts: the port belongs behind a firewall
that admits the branches' addresses only (``docs/deployment.md``).

Identity during a session. A session keeps the certificate it was admitted with (its
fingerprint, expiry and DER, see :meth:`~GrpcServerTransport.peer_certificate`). It is
ended (``UNAUTHENTICATED``, a :class:`Disconnected`, its unread messages dropped) when
the certificate expires, and when ``identify``, re-run every ``recheck_interval``
seconds or on :meth:`~GrpcServerTransport.recheck_sessions`, refuses it (a revoked
certificate or name) or names it differently. TLS versions below ``min_tls_version``
(TLS 1.3 by default) are refused before ``identify`` runs; grpcio has no server setting
for a minimum version, so the TLS 1.2 handshake itself completes unless the server's
environment sets ``GRPC_SSL_CIPHER_SUITES`` to RSA-only suites (the keys here are ECDSA,
which leaves TLS 1.2 no suite; TLS 1.3 suites are not affected by that variable).

Threads. The server is a synchronous ``grpc.server``: per session one pool
thread drives the response generator (the writer, blocked on an outbox queue)
and one daemon thread of ours consumes the request iterator (the reader). The
pool has ``max_clients + 4`` workers and ``maximum_concurrent_rpcs`` is
``max_clients``, so an extra stream is refused with ``RESOURCE_EXHAUSTED``
instead of waiting for a thread. One more daemon thread re-checks identities and
expiries. All public methods are thread-safe.
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

Size: about 2110 lines, a sixth of them this specification; the server and the client
transport share the session machinery and are kept together so the framing rules and
their two users are read side by side (the framing itself is :mod:`secagg.transport.framing`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import queue
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from secagg.errors import ConfigurationError, printable_line
from secagg.transport.base import NotAccepted, NotConnected, TransportError, waitable_seconds
from secagg.transport.framing import (
    DEFAULT_CHUNK_BYTES,
    HEADER_BYTES,
    MAX_INCOMING_CONNECTIONS,
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

#: how fast a dialling client retries a connection: gRPC's default backoff grows to
#: 120 s, so a branch would notice a restarted server minutes late (review D1)
_CLIENT_RECONNECT: Final = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)
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
#: how long a connection with no open session is kept: a branch's session stream is
#: open for its connection's whole life, so only a connection opened for nothing (an
#: enrolled party holding descriptors, or a dial abandoned half-way) is idle this long
DEFAULT_IDLE_CONNECTION_SECONDS: Final = 60.0
#: the longest duration gRPC takes as a channel argument: milliseconds in a C ``int``
#: (2**31 - 1 ms, about 24.8 days); one more and ``start()`` died in grpcio with a bare
#: ``OverflowError`` naming no argument
GRPC_MAX_MILLISECONDS: Final = 2**31 - 1
#: the most incoming connections the default connection cap allows: far above the
#: sessions of any federation, so the cap binds only on a flood
_MAX_DEFAULT_CONNECTIONS: Final = 4096
_POLL_SECONDS: Final = 1.0  # how often an idle writer re-checks that its stream is alive
_CLOSE_SETTLE_POLLS: Final = 25  # 10 ms apart: how long a stream end may take to show a drop

DEFAULT_MAX_QUEUED_MESSAGES: Final = 32  # unread messages per session before its reader waits
MIN_QUEUED_BYTES: Final = 64 << 20  # the smallest default budget of unread bytes per session
#: connection events kept for next_event(): nothing in the runtime reads them (it polls
#: connected() and session_id()), so an unbounded queue grew with every session (audit B)
DEFAULT_MAX_PENDING_EVENTS: Final = 1024
#: how long a message begun may wait for its next frame: longer than any stall of a live
#: link (keepalive notices a dead one within about 140 s), short enough that a peer
#: cannot park its budget's worth of server memory for the server's lifetime (audit A)
DEFAULT_PARTIAL_IDLE_SECONDS: Final = 300.0
#: messages a client holds from the server unread before its session ends (InboxOverflow):
#: an honest server sends a branch a handful per round, a hostile one could send without end
DEFAULT_MAX_INBOX_MESSAGES: Final = 1024
#: new sessions one identity may open at once, and per second after that (a token bucket):
#: an honest branch opens one per server start or network cut (its redials are at least a
#: quarter second apart, and at most 4 s once it keeps failing); one that churns costs
#: the server a TLS handshake, a certificate check and a thread per session (audit)
DEFAULT_SESSION_BURST: Final = 10
DEFAULT_SESSION_RATE: Final = 1.0
#: how a throttled session is refused (RESOURCE_EXHAUSTED): the client's SessionThrottled
THROTTLE_DETAIL: Final = "too many new sessions from this identity"
#: identities whose buckets are kept before full (idle) ones are forgotten
_MAX_TRACKED_IDENTITIES: Final = 4096
DEFAULT_RECHECK_SECONDS: Final = 30.0  # how often open sessions' identities are re-checked
TLS_VERSIONS: Final = {"TLSv1": 10, "TLSv1.1": 11, "TLSv1.2": 12, "TLSv1.3": 13}
_TLS_VERSION_KEY: Final = "ssl_tls_version"  # grpcio's auth-context property
_PEER_CERT_KEY: Final = "x509_pem_cert"


# --- errors -------------------------------------------------------------------
# TransportError and NotConnected (no open session with that peer) are shared with the
# in-process transport and defined in secagg.transport.base; importing them from here works.


#: the most characters of a status text a :class:`TransportClosed` keeps (the server's
#: own are under 100: "client identity not accepted", the throttle's retry hint)
MAX_STATUS_TEXT: Final = 200


def _status_line(details: object) -> str:
    """``details`` as one printable line of at most :data:`MAX_STATUS_TEXT` characters:
    every control, format (bidirectional override), surrogate, private-use or
    unassigned character is a space, runs of spaces are one.

    Why: a status text is the other party's words (the server's, to a client), and it
    goes into the client's error, which a branch logs and the CLI prints. Only the
    authenticated server can send one, but the names a served certificate carries were
    bounded for the same reason (77af038): a newline forges a log line, an ANSI escape
    paints the operator's terminal, a U+202E reorders what they read, and a megabyte of
    text is a megabyte in every log line that quotes it."""
    text = details if isinstance(details, str) else str(details or "")
    return printable_line(text)[:MAX_STATUS_TEXT].rstrip()


class TransportClosed(NotConnected):
    """The session ended; ``code`` and ``details`` are the gRPC status that ended it
    (``details`` made one bounded printable line by :func:`_status_line`)."""

    def __init__(self, code: grpc.StatusCode | None, details: str | None) -> None:
        self.code = code
        self.details = _status_line(details)
        name = code.name if code is not None else "UNKNOWN"
        super().__init__(f"session closed ({name}): {self.details}")


class IdentityRefused(TransportClosed, NotAccepted):
    """The server refused this client's identity (``UNAUTHENTICATED`` or
    ``PERMISSION_DENIED``: an unknown, revoked or expired certificate or name).
    Redialling with the same certificate cannot help."""


class OutboxOverflow(NotConnected):
    """A send would have queued more than ``max_outbox_bytes`` unsent to the peer (it is
    not reading): :meth:`GrpcServerTransport.send` to one client, or
    :meth:`GrpcClientTransport.send` to the server. The session was ended instead (the
    client counts as gone; the branch redials), and this message was not queued."""


class InboxOverflow(TransportClosed):
    """The server sent a :class:`GrpcClientTransport` more than it may hold unread
    (``max_queued_messages`` messages or ``max_queued_bytes`` bytes, the message being
    received included): the client ended the session (``RESOURCE_EXHAUSTED``) and
    dropped what it held. A :class:`~secagg.transport.base.NotConnected`, so a branch
    or key holder treats it as a lost session and redials."""


#: the status details of a session the server ended because the same identity opened
#: another one (ABORTED): the branch restarted, or a second process holds its certificate
SUPERSEDED_DETAIL: Final = "superseded by a new session"


class Superseded(TransportClosed, NotAccepted):
    """The server ended this session because another session opened under the same
    identity (``ABORTED``, :data:`SUPERSEDED_DETAIL`).

    A party never supersedes itself while it holds the session (it closes a lost one
    before it redials), so a live session that hears this has a twin: a second process
    running with the same certificate. Redialling made the two take the identity from
    each other every few seconds, each logging only "connection lost; redialling" and
    neither ever finishing a round (operator pass, 2026-12-04: 31 supersessions in
    25 s). So this one stops, saying why, and the newer session goes on."""

    def __str__(self) -> str:
        return (
            "the server ended this session: another process opened one under the same "
            "identity (this certificate); two parties run as one, so this one stops and "
            "the newer goes on"
        )


class SessionThrottled(TransportClosed):
    """The server refused a new session because this identity opened too many lately
    (``RESOURCE_EXHAUSTED``, :data:`THROTTLE_DETAIL`; its details say when to retry).
    Not a :class:`~secagg.transport.base.NotAccepted`: redialling after the back-off
    succeeds once the identity's token bucket has refilled."""


class HandshakeFailed(NotAccepted):
    """The TLS handshake failed on a certificate (an unknown CA, a name the server's
    certificate does not carry, this party's certificate refused by the server): the
    credentials, not the network, are wrong."""


class ClosedAfterHandshake(NotConnected):
    """The server closed the connection right after the TLS handshake, before its first
    HTTP/2 frame (gRPC: "Socket closed", not "Handshake read failed").

    With TLS 1.3 that is how a gRPC server refuses this party's certificate (another
    CA's, expired): the client's handshake completes before the server judges the
    certificate, and the server hangs up without a TLS alert, so gRPC has no other word
    for it. One such dial may also be a server stopping mid-handshake, so the client
    dials once more, and checks the server still listens, before inferring a refusal
    (:class:`CertificateRefusalInferred`)."""


#: how gRPC says the server's certificate lacks the name checked: grpcio 1.85 "Custom
#: verification check failed with error: UNAUTHENTICATED: Hostname Verification Check
#: failed.", older releases (TSI) "Peer name 127.0.0.1 is not in peer certificate"
_HOSTNAME_FAILURE: Final = re.compile(
    r"hostname verification check failed\.?|peer name \S+ is not in peer certificate",
    re.IGNORECASE,
)
#: gRPC statuses that refuse a client for who it is, not for the state of the network
_REFUSING_CODES: Final = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
#: a method no server serves: a call to it opens no session, and its failure carries
#: the channel's last connection error (the real cause of a failed dial)
_PROBE_METHOD: Final = f"/{SERVICE_NAME}/Probe"


def _closed(code: grpc.StatusCode | None, details: str | None) -> TransportClosed:
    """The error for a session that ended with ``code``: a refusal of this client's
    identity is an :class:`IdentityRefused` (never retried), anything else a
    :class:`TransportClosed`."""
    if code in _REFUSING_CODES:
        return IdentityRefused(code, details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and (details or "").startswith(THROTTLE_DETAIL):
        return SessionThrottled(code, details)
    if code == grpc.StatusCode.ABORTED and details == SUPERSEDED_DETAIL:
        return Superseded(code, details)
    return TransportClosed(code, details)


class CertificateRefusalInferred(HandshakeFailed):
    """Two dials in a row closed right after a completed TLS 1.3 handshake, and the
    server still accepts TCP connections: most likely it refuses this party's
    certificate, but that is inferred, not said by the server.

    grpcio gives the client no better signal: the server hangs up without a TLS alert
    (measured with grpcio 1.85: a Python ``ssl`` client's read after the handshake
    returns a clean EOF, no alert), and its reason is only in the server's own log. A
    TLS 1.2 probe would tell (a 1.2 server judges the certificate inside the handshake)
    but a server that refuses TLS 1.2 (``GRPC_SSL_CIPHER_SUITES``) gives no answer
    either. So the inference is checked twice more: the parties that dial check their
    own certificate against their own ``ca.pem`` before dialling
    (``certs.check_own_certificate``), which settles the usual causes with certainty,
    and a server that stopped listening after the two closes is a network failure, not
    this. What remains (the server trusts another CA, or it died during both handshakes
    and came straight back) is said as uncertain, and a party that had a session with
    this server before (this certificate was accepted) keeps redialling
    (``inferred``) instead of stopping for good."""

    inferred = True


class UnknownHost(NotAccepted):
    """The host of the target does not exist: DNS answered that the name is unknown
    (``EAI_NONAME``, NXDOMAIN; ``EAI_NODATA``, a name without addresses).

    Why: gRPC's own resolver retries such a name inside the dial, so a branch given
    ``--server no-such-host.invalid:50051`` waited its whole ``--connect-timeout``
    (30 s) before "cannot reach" (front-door review, 2026-12-05), yet waiting does not
    make a name the resolver denies start resolving. So the first dial fails at once,
    naming the host. ``inferred``: once a session with that name has been open, the
    name did resolve, and a redial after a lost session keeps trying (a DNS record
    briefly missing while the server moves). A *temporary* resolver failure
    (``EAI_AGAIN``), or a lookup that does not answer within the dial's budget, is no
    verdict: the dial goes on as before and gRPC reports what it finds."""

    inferred = True


#: what getaddrinfo says of a name that does not exist (glibc's EAI_NODATA, where known)
_UNKNOWN_NAME_ERRORS: Final = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


def _unknown_host(target: str, timeout: float) -> UnknownHost | None:
    """:class:`UnknownHost` if DNS says the host of ``target`` (``host:port``) does not
    exist, else None (an IP address is never looked up; a target in gRPC's URI syntax,
    ``dns:///...`` or ``unix:...``, is left to gRPC).

    The lookup runs in a daemon thread and is waited on for at most ``timeout``
    seconds (``getaddrinfo`` has no timeout of its own, and a stalled resolver must not
    stretch the dial past its budget); a lookup still running then is no verdict."""
    host, port = _host_port(target)
    if not host or "/" in target or _is_ip_address(host.split("%", 1)[0]):
        return None
    verdict: list[BaseException | None] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            verdict.append(None)
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            verdict.append(exc)
        finally:
            done.set()

    threading.Thread(target=look_up, name="secagg-grpc-resolve", daemon=True).start()
    if not done.wait(max(0.0, min(timeout, threading.TIMEOUT_MAX))) or not verdict:
        return None
    error = verdict[0]
    if not isinstance(error, socket.gaierror) or error.errno not in _UNKNOWN_NAME_ERRORS:
        return None
    return UnknownHost(
        f"cannot reach {target}: the host name {host} does not resolve ({error.strerror}); "
        "check the name given to --server (or the library's target): waiting will not "
        "make it resolve"
    )


def _certificate_refused(target: str, closed: ClosedAfterHandshake) -> HandshakeFailed:
    """Two dials in a row closed right after the handshake, the server still listening:
    most likely it refuses this party's certificate (see
    :class:`CertificateRefusalInferred` for why "most likely")."""
    cause = str(closed).split(" (", 1)[-1].split(")", 1)[0]
    return CertificateRefusalInferred(
        f"TLS handshake with {target} failed: the server closed the connection right after "
        f"the handshake, twice ({cause}), and still listens; with TLS 1.3 that is how it "
        "refuses a client certificate, so it most likely refused this party's certificate "
        "(it trusts another CA than the ca.pem beside it, or its clock reads the "
        "certificate as expired); a server stopping during both handshakes looks the "
        "same: its log says which (GRPC_VERBOSITY=INFO: 'Handshake failed')"
    )


def _host_port(target: str) -> tuple[str, str]:
    """``target``'s host (brackets of an IPv6 address removed) and port, as given."""
    host, _, port = target.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


def _still_listening(target: str, timeout: float = 2.0) -> bool:
    """Whether ``target`` (``host:port``, ``[v6]:port``) accepts a TCP connection now."""
    host, port = _host_port(target)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class ServerNameMismatch(HandshakeFailed):
    """The server's certificate chains to this party's CA but does not carry the name
    this party checked it against (the host dialled, or ``name_override``).

    gRPC 1.85 says only "Custom verification check failed with error: UNAUTHENTICATED:
    Hostname Verification Check failed." (older releases: "Peer name ... is not in peer
    certificate"), and did not count it as a certificate problem: a branch dialling
    ``127.0.0.1`` against a certificate for ``fl.bank.internal`` redialled for its
    whole ``--connect-timeout`` (30 s) and then said "cannot reach" (newcomer audit,
    2026-12-05). No redial can fix it (the certificate is the same at every handshake;
    gRPC checks the chain first, so an untrusted CA is a plain :class:`HandshakeFailed`),
    so the first failed handshake ends the dial, naming the names the certificate holds
    (:func:`_served_names`) and the two ways out."""


def _served_names(target: str, server_name: str, timeout: float = 2.0) -> list[str] | None:
    """The DNS names and IP addresses in the certificate the server at ``target`` serves
    (its subject alternative names, else its common name); None if it cannot be read.

    Read over a TLS handshake of its own, without a client certificate and without
    verifying the server's: only to name them in :class:`ServerNameMismatch`'s message
    (whoever answers chose them, so only names a server certificate can carry, at
    most :data:`_MAX_SERVED_NAMES`, see :func:`_quotable`), never to trust anything
    (gRPC has verified the chain of the certificate it saw, and does not hand it over
    after a failed handshake). With TLS 1.3 the client's handshake
    ends before the server judges the client's certificate (none here), so the server's
    certificate is in hand before the server hangs up; a TLS 1.2 server refuses inside
    the handshake, and the names are then not read."""
    import ssl

    host, port = _host_port(target)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only read, see above
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        if not der:
            return None
        certificate = x509.load_der_x509_certificate(der)
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None
    try:
        alternatives = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        names = [
            *alternatives.get_values_for_type(x509.DNSName),
            *(
                _ip_spelling(str(address)) or str(address)
                for address in alternatives.get_values_for_type(x509.IPAddress)
            ),
        ]
    except x509.ExtensionNotFound:
        names = []
    if not names:  # a certificate without SANs: its CN is all a reader can go by
        names = [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(
                x509.oid.NameOID.COMMON_NAME
            )
        ]
    return [name for name in names if _quotable(name)][:_MAX_SERVED_NAMES]


#: the most names of a served certificate a :class:`ServerNameMismatch` quotes
_MAX_SERVED_NAMES: Final = 8


def _quotable(name: str) -> bool:
    """Whether ``name``, read from an unverified certificate, may go into an error line:
    an IP address, or a host name (its first label may be ``*``).

    Why: whoever answers :func:`_served_names`' handshake (an attacker on the path)
    chooses the names, and they went into the one-line error as they were: a newline
    or a terminal escape broke the line and could paint the operator's terminal, and
    2000 names made a line of 108,538 characters (hostile review, 2026-12-05)."""
    from secagg.transport.names import BadServerName, certificate_name

    try:
        certificate_name(name.removeprefix("*."))
    except BadServerName:
        return False
    return True


def _is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IP address (a branch dialling one has no name to dial)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ip_spelling(name: str) -> str | None:
    """The one spelling of an IP address ``name`` (without brackets or a ``%zone``),
    None for a host name: ``[0:0:0:0:0:0:0:1]`` is ``::1``. The spelling is the one
    gRPC compares with the certificate's IP SANs (:func:`secagg.transport.names.ip_name`:
    ``inet_ntop``'s, which for ``::ffff:10.0.0.5`` is not Python 3.11's)."""
    from secagg.transport.names import ip_name

    return ip_name(name)


def _same_name(one: str, other: str) -> bool:
    """Whether two names are one: the same IP address however spelt, else equal."""
    spelt = _ip_spelling(one)
    return spelt == _ip_spelling(other) if spelt is not None else one == other


def _checked_name(target: str, name_override: str | None) -> str | None:
    """The ``grpc.ssl_target_name_override`` to set: ``name_override`` or, without one,
    the host of ``target``, an IP address in its one spelling; None when gRPC's own
    check (the host as dialled) is already that.

    Why: gRPC compares an IPv6 name with the certificate's IP SANs as text, so a party
    dialling ``[0:0:0:0:0:0:0:1]:50051``, or checking ``name_override="[::1]"``'s
    spelling ``0:0:0:0:0:0:0:1``, against a certificate for ``::1`` failed with a
    :class:`ServerNameMismatch` that named the one address twice (review, 2026-12-05).
    A zone (``%eth0``) is this machine's, never in a certificate: it is dropped."""
    if name_override is not None:
        return _ip_spelling(name_override) or name_override
    host, _ = _host_port(target)
    spelt = _ip_spelling(host)
    return spelt if spelt is not None and spelt != host else None


def _as_host(name: str) -> str:
    """``name`` as the host part of ``host:port`` (an IPv6 address in brackets)."""
    return f"[{name}]" if ":" in name else name


def _name_mismatch(target: str, checked: str | None, cause: str) -> ServerNameMismatch:
    """The one line for a server certificate without the name checked: the address
    dialled, the name checked, the names the certificate holds and the two ways out
    (``secagg client --server-name`` / ``keyholder --server-name``, or ``name_override``
    in the library, keeps the address and checks a name the certificate holds)."""
    host, port = _host_port(target)
    name = checked if checked is not None else host
    dialled = _same_name(name, host)
    what = "the name dialled" if dialled else "the name_override checked"
    names = _served_names(target, name)
    if names:
        holds = f"names {', '.join(names)}, not {name}, {what}"
        dial = f"--server {_as_host(names[0])}:{port}, which must resolve to this server"
        if _is_ip_address(host) and dialled:
            dial += (
                f"; or keep the address and check its name with --server-name {names[0]} "
                f"(name_override={names[0]!r} in the library)"
            )
        known = any(_same_name(name, each) for each in names)
        carried = names if known else [*names, name]
        reissue = " ".join(f"--server-name {each}" for each in carried)
    else:
        holds = f"does not carry {name}, {what} (the names it does carry could not be read)"
        dial = "--server NAME:PORT with a name it carries"
        reissue = f"--server-name {name} and its other names"
    return ServerNameMismatch(
        f"TLS handshake with {target} failed: the server's certificate {holds} (gRPC: "
        f"{cause}); no redial can change that: dial a name it carries ({dial}), or re-issue "
        f"the server certificate to carry {name} too (a development CA: secagg certs init "
        f"--dir DIR {reissue} --force; --force replaces the CA, so every branch then needs a "
        "new certificate from secagg certs issue)"
    )


def _dial_failure(
    target: str, timeout: float, details: str, checked: str | None = None
) -> NotConnected:
    """Why a dial failed, from the channel's last error: a certificate problem is a
    :class:`HandshakeFailed` (permanent), a server certificate without the name
    ``checked`` (the ``name_override``; None: the host of ``target``) a
    :class:`ServerNameMismatch`; otherwise the cause is named, never only "cannot
    reach" (newcomer review 4: a TLS failure read as an unreachable server)."""
    cause = details.rsplit("last error: ", 1)[-1].strip() if details else ""
    if "OPENSSL_internal:" in cause:  # BoringSSL's reason is the readable part
        cause = cause.rsplit("OPENSSL_internal:", 1)[-1].removesuffix(": OK").strip()
    lowered = cause.lower()
    if said := _HOSTNAME_FAILURE.search(cause):
        return _name_mismatch(target, checked, said.group(0))
    if any(word in lowered for word in ("certificate", "unknown_ca")):
        return HandshakeFailed(
            f"TLS handshake with {target} failed ({cause}): this party's certificates "
            "must come from the federation's CA, and the server's certificate must carry "
            "the name dialled"
        )
    if "handshake" in lowered:  # e.g. "Handshake read failed (Socket closed)": mid-way
        return NotConnected(f"TLS handshake with {target} failed: {cause}")
    if "socket closed" in lowered:  # after a completed handshake: see ClosedAfterHandshake
        return ClosedAfterHandshake(
            f"{target} closed the connection before a session opened ({cause}): is the "
            "server up, and does it trust this party's CA?"
        )
    if "connection refused" in lowered:
        return NotConnected(f"cannot reach {target}: connection refused (no server on that port)")
    if cause:
        return NotConnected(f"cannot reach {target} within {_waited(timeout)} s: {cause}")
    return NotConnected(f"cannot reach {target} within {_waited(timeout)} s")


def _waited(seconds: float) -> str:
    """A wait in seconds for a message: to a tenth, rounded down (so it never claims
    more waiting than was done), without a trailing ``.0``.

    Why: a dial's budget is what is left of a window, and ``{:g}`` printed it as
    "cannot reach X within 14.2572 s" (front-door review, 2026-12-05)."""
    if not math.isfinite(seconds):
        return f"{seconds:g}"
    tenths = math.floor(seconds * 10 + 1e-9)  # 2.3 * 10 is 22.999... in binary
    return f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:.1f}"


def _is_closed_channel_poll(args: threading.ExceptHookArgs) -> bool:
    """Whether an uncaught thread exception is gRPC's connectivity poller finding its
    channel closed under it: ``ValueError: Cannot monitor channel state: Channel closed!``
    raised in ``grpc._channel._poll_connectivity``.

    That thread polls every 0.2 s and can still be inside its watch when the channel is
    closed, even after ``unsubscribe`` (grpc/grpc#18995, #16290); the thread ends there
    and nothing is lost, but Python prints its traceback on stderr. Operator pass of
    2026-12-04: a branch stopped by Ctrl-C while dialling printed that traceback after
    its one line in about 1 run in 4, and a redial after a lost connection may too."""
    exc = args.exc_value
    if not isinstance(exc, ValueError) or "Channel closed" not in str(exc):
        return False
    frame = args.exc_traceback
    while frame is not None:
        if frame.tb_frame.f_code.co_name == "_poll_connectivity":
            return True
        frame = frame.tb_next
    return False


def _install_closed_channel_filter() -> None:
    """Wrap :data:`threading.excepthook` (once) so that :func:`_is_closed_channel_poll`
    exceptions are logged at DEBUG instead of printed; every other one goes to the hook
    that was there before."""
    current = threading.excepthook
    if getattr(current, "_secagg_closed_channel_filter", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if _is_closed_channel_poll(args):
            logger.debug("gRPC's connectivity poller ended on a closed channel")
            return
        current(args)

    hook._secagg_closed_channel_filter = True  # type: ignore[attr-defined]
    threading.excepthook = hook


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
#: how long closing a client session waits for its reader thread after the cancel
_READER_JOIN_SECONDS: Final = 30.0


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
        "fingerprint",
        "finished",
        "id",
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
        self.outbox: queue.Queue[tuple[int, bytes] | object] = queue.Queue()
        self.outbox_bytes = 0  # payload bytes queued by send() whose writing has not begun
        self.next_id = 0
        self.finished = False
        self.abort: tuple[grpc.StatusCode, str] | None = None  # status to end the stream with
        self.queued_messages = 0  # delivered to the inbox, not yet taken by receive()
        self.queued_bytes = 0  # their payload bytes
        self.partial_bytes = 0  # the message being reassembled, or held while the inbox is full
        self.partial_deadline: float | None = None  # monotonic: the next frame of it is due


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
    """The key of a connection's rate bucket: the digest of the client certificate TLS
    verified against the CA (cheap: no parsing, no revocation check), or None without one."""
    values = list(auth.get(_PEER_CERT_KEY) or [])
    if len(values) != 1:
        return None
    return "cert:" + hashlib.sha256(bytes(values[0])).hexdigest()


def _common_name(auth: Mapping[str, Sequence[bytes]]) -> str:
    """The client certificate's common name, for a log line ("?" if none)."""
    certificate = _certificate_of(auth)
    if certificate is None:
        return "?"
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else "?"


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
    whatever it sends (review finding M2). Likewise the bytes queued by :meth:`send`
    to one client behind the message being written may not exceed ``max_outbox_bytes`` (same
    default): a client that stops reading is disconnected rather than growing the
    server by one model a round (audit finding B). At most ``max_pending_events``
    connection events wait for :meth:`next_event`; older ones are dropped. A message
    whose next frame does not come within ``partial_idle_timeout`` seconds (None: no
    limit) ends its session (``DEADLINE_EXCEEDED``, its data dropped): the budget
    bounds what a half-sent message holds, this how long.

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
    closed, one without a session for ``idle_connection_timeout`` seconds (default 60)
    too, and at most ``max_connections`` are open at once (None:
    :func:`default_max_connections`), the next one closed at accept. The two reach
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
        if session_burst is not None and (
            not isinstance(session_burst, int)
            or isinstance(session_burst, bool)
            or session_burst < 1
        ):
            raise ConfigurationError("session_burst must be at least 1 (or None: no limit)")
        if not (isinstance(session_rate, int | float) and 0 < session_rate < float("inf")):
            raise ConfigurationError("session_rate must be a positive number of sessions a second")
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
        self._min_tls_version = min_tls_version
        self._session_rate = (
            None if session_burst is None else _SessionRate(session_burst, float(session_rate))
        )
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # inbox, queue room or a session ended
        self._sessions: dict[str, _Session] = {}
        self._session_serial = 0  # the last session id given out
        self._inbox: deque[tuple[_Session, bytes]] = deque()
        # sessions ended so far, and the count receive() is to compare with at its next
        # call when an end came while a call returned a message (else None): see receive
        self._ended_sessions = 0
        self._end_untold: int | None = None
        # bumped whenever a session opens or ends, or the server stops: what
        # wait_for_sessions() waits on (the runtime's quorum wait)
        self._sessions_serial = 0
        # the newest events only: the oldest is dropped (and counted) when it is full
        self._events: deque[ConnectionEvent] = deque(maxlen=max_pending_events)
        self._event_ready = threading.Condition(self._lock)
        self._dropped_events = 0
        self._server: grpc.Server | None = None
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
                *self._connection_options,
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
        """End every session (queued messages are still written) and stop within ``grace``."""
        with self._lock:
            self._stopping = True
            for session in list(self._sessions.values()):
                self._finish(session, "server stopping")
            self._sessions_changed()  # a quorum wait stops waiting: nobody comes now
            server = self._server
            rechecker = self._rechecker
        self._wake.set()
        if server is not None:
            server.stop(grace).wait()
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

        Raises :class:`NotConnected` if ``name`` has no session and
        :class:`MessageTooLarge` above ``max_message_bytes``. Queued is not
        delivered: if the session ends first, the loss shows as a
        :class:`Disconnected` event. A client that does not read cannot make the
        server hold its messages without end: when ``name``'s unsent bytes would
        exceed ``max_outbox_bytes``, its session is ended (logged, a
        :class:`Disconnected`, gone from :meth:`connected`) and
        :class:`OutboxOverflow` (a :class:`NotConnected`) is raised.
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
            unsent = session.outbox_bytes
            if unsent + len(data) <= self._max_outbox_bytes:
                session.outbox.put((session.next_id, data))
                session.next_id += 1
                session.outbox_bytes += len(data)
                return
        reason = (
            f"over its budget of {self._max_outbox_bytes} unsent bytes ({unsent} queued, "
            f"a message of {len(data)} more): it is not reading"
        )
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
        so the messages a session queued before its end come first. Ends before the
        call are not said: the caller that wants them looks at :meth:`connected`.

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
        """
        timeout = waitable_seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            ends = self._ended_sessions if self._end_untold is None else self._end_untold
            self._end_untold = None
            while not self._inbox:
                if self._ended_sessions != ends:  # what the caller waits for may never come
                    return None
                if deadline is None:
                    self._changed.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
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

    def wait_for_sessions(self, seen: int | None, timeout: float | None) -> int:
        """Wait until a session opened or ended, or the server stopped, after the
        change numbered ``seen`` (None: return at once), for at most ``timeout``
        seconds; returns the number of the latest change.

        For a caller waiting for parties to connect (the runtime's quorum wait): it
        reads the number, checks :meth:`connected`, and passes the number back, so a
        session that opened between its check and its wait wakes it at once (a
        change is counted, never missed). Before, that wait polled with a back-off up
        to a second apart, so a quorum was noticed up to a second after its last
        branch connected."""
        timeout = waitable_seconds(timeout)
        with self._changed:
            if seen is not None:
                self._changed.wait_for(lambda: self._sessions_serial != seen, timeout)
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
            old = self._sessions.get(name)
            if old is not None:
                self._finish(
                    old, SUPERSEDED_DETAIL, abort=(grpc.StatusCode.ABORTED, SUPERSEDED_DETAIL)
                )
            self._session_serial += 1
            session.id = self._session_serial
            self._sessions[name] = session
            self._publish(Connected(name, peer))
            self._sessions_changed()
        self._wake.set()  # the re-check timer may need to wake for this expiry
        logger.info("session opened: %s from %s (certificate %s)", name, peer, session.fingerprint)
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
                name or _common_name(auth),
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
        try:
            for frame in request_iterator:
                if not self._within_budget(session, reassembler, frame):
                    return
                message = reassembler.feed(frame)
                with self._lock:
                    session.partial_bytes = reassembler.buffered
                    begun = session.partial_deadline is None
                    session.partial_deadline = (
                        time.monotonic() + self._partial_idle_timeout
                        if reassembler.partial and self._partial_idle_timeout is not None
                        else None
                    )
                if begun and session.partial_deadline is not None:
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
            # process, a cut network), also end the request stream without an error, so
            # tell a half-close from a failed call by whether the call is still alive. A
            # dropped connection takes gRPC a moment to notice: give it that moment, or a
            # SIGKILLed branch reads as a clean close (reliability review D6, D8).
            alive = context.is_active()
            for _ in range(_CLOSE_SETTLE_POLLS):
                if not alive:
                    break
                time.sleep(0.01)
                alive = context.is_active()
            self._finish(session, "client closed the session" if alive else "connection lost")

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
        try:
            name = self._identify(_AdmittedContext(session.context, session.auth))  # type: ignore[arg-type]
        except Exception as exc:  # a refusal, or a revocation list that no longer reads
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
                    s.partial_deadline
                    for s in self._sessions.values()
                    if s.partial_deadline is not None
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
        """End the sessions whose message in progress got no frame in time (logged).

        The budget bounds how much a partial message holds, this how long: a peer
        that sends most of a message and stops would otherwise keep that memory for
        as long as it keeps the connection. The stream cannot resume past a dropped
        message (ids must be consecutive), so the session ends, like any framing fault.
        """
        now = time.monotonic()
        with self._lock:
            stalled = [
                s
                for s in self._sessions.values()
                if s.partial_deadline is not None and now >= s.partial_deadline
            ]
        for session in stalled:
            reason = (
                f"a partial message of {session.partial_bytes} bytes got no frame for "
                f"{self._partial_idle_timeout:g} s"
            )
            self._end_for_cause(
                session, reason, grpc.StatusCode.DEADLINE_EXCEEDED, "message stalled mid-way"
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
                    if session.abort is not None:
                        context.abort(*session.abort)
                    yield frame
        finally:
            self._finish(session, "connection lost")

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
            session.partial_deadline = None
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
        session.outbox.put(_END)
        if dropped:
            logger.info("dropped %d unread messages of %s", dropped, session.name)
        logger.info("session closed: %s (%s)", session.name, reason)


# --- client -------------------------------------------------------------------


class GrpcClientTransport:
    """The client end: dials the server, keeps one session open, sends and receives.

    ``name_override`` is the name to check the server certificate against when the
    dialled ``target`` is not in it (an IP address, a tunnel); it sets gRPC's
    ``grpc.ssl_target_name_override`` and means nothing without TLS. One instance
    is one session: after :meth:`close` or a failure, make a new one.

    Memory. What the server sent and :meth:`receive` has not taken yet is held for
    at most ``max_queued_messages`` messages (default 1024) and ``max_queued_bytes``
    bytes (default: twice ``max_message_bytes``, at least 64 MiB), the message being
    received included. A server that sends more (a flood while the branch trains,
    say) ends its own session: the client cancels the call with
    ``RESOURCE_EXHAUSTED``, drops what it held, and :meth:`receive` raises
    :class:`InboxOverflow`, a :class:`~secagg.transport.base.NotConnected`. The other
    way, the bytes :meth:`send` queued behind the message being written (a server that
    does not read grants no HTTP/2 window) may not exceed ``max_outbox_bytes`` (same
    default): the send that would is refused with :class:`OutboxOverflow` and the
    session ended, as the server does to a branch that does not read.
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
        max_queued_messages: int = DEFAULT_MAX_INBOX_MESSAGES,
        max_queued_bytes: int | None = None,
        max_outbox_bytes: int | None = None,
    ) -> None:
        _check_sizes(max_message_bytes, chunk_bytes)
        if channel_credentials is None and not allow_insecure:
            raise ConfigurationError("a client without TLS credentials needs allow_insecure=True")
        max_queued_bytes, max_outbox_bytes = _queue_budgets(
            max_message_bytes, max_queued_messages, max_queued_bytes, max_outbox_bytes
        )
        self._max_outbox_bytes = max_outbox_bytes
        self._outbox_bytes = 0  # queued by send(), writing not begun
        self._max_queued_messages = max_queued_messages
        self._max_queued_bytes = max_queued_bytes
        self._queued_messages = 0  # in the inbox, not yet taken by receive()
        self._queued_bytes = 0  # their payload bytes
        self._target = target
        self._credentials = channel_credentials
        self._options: list[tuple[str, int | str]] = []  # the channel's, set by connect()
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
        deadline = time.monotonic() + min(timeout, threading.TIMEOUT_MAX)  # waitable_seconds
        if (unknown := _unknown_host(self._target, timeout)) is not None:
            raise unknown  # nothing dialled: this transport is as it was
        with self._lock:
            if self._channel is not None or self._closed:
                raise TransportError("connect() is called once per transport")
            options: list[tuple[str, int | str]] = [
                *_grpc_size_options(self._chunk_bytes),
                *_CLIENT_KEEPALIVE,
                *_CLIENT_RECONNECT,
            ]
            checked = _checked_name(self._target, self._name_override)
            if checked is not None:
                options.append(("grpc.ssl_target_name_override", checked))
            self._options = options
            channel = self._new_channel()
            self._channel = channel
        failure = self._wait_until_ready(channel, deadline, timeout)
        if failure is not None:
            self._abandon()
            raise failure from None
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
            raise NotConnected(f"no session with {self._target} within {_waited(timeout)} s")
        if self._ended is not None:
            self._abandon()
            raise _closed(self._ended.code, self._ended.details)
        assert self.identity is not None
        return self.identity

    def _new_channel(self) -> grpc.Channel:
        """A channel to the target with this transport's credentials and options."""
        _install_closed_channel_filter()  # its poller's end is no traceback
        if self._credentials is None:
            return grpc.insecure_channel(self._target, options=self._options)
        return grpc.secure_channel(self._target, self._credentials, options=self._options)

    def _wait_until_ready(
        self, channel: grpc.Channel, deadline: float, timeout: float, *, confirm: bool = True
    ) -> NotConnected | None:
        """Wait for the channel to connect; None once it has, else why it did not.

        A failed attempt is examined as it happens: a certificate the other side
        refuses (or one we refuse) fails every later attempt too, so it is reported
        at once as :class:`HandshakeFailed`. Waiting it out made a branch holding
        another CA's certificate hear "TLS handshake failed" only after its whole
        ``--connect-timeout`` (30 s by default). A server that closes right after the
        handshake (:class:`ClosedAfterHandshake`: how TLS 1.3 shows the server refusing
        this party's certificate, another CA's or an expired one) is dialled once more
        on a fresh channel (``confirm``), gRPC keeping a failed channel in
        TRANSIENT_FAILURE without reporting its later attempts; the same again is a
        refusal, reported at once too (review, 2026-12-05: it waited out the timeout).
        Anything else (nobody listening yet, a connection reset) may pass, so gRPC
        keeps redialling until the deadline and the last attempt's cause is reported
        then."""
        states: queue.SimpleQueue[grpc.ChannelConnectivity] = queue.SimpleQueue()
        watch = states.put  # the one callable object, so that unsubscribe finds it
        channel.subscribe(watch, try_to_connect=True)
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    state = states.get(timeout=left)
                except queue.Empty:
                    break
                if state is grpc.ChannelConnectivity.READY:
                    return None
                if state is grpc.ChannelConnectivity.SHUTDOWN:  # closed under us
                    break
                if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                    failure = _dial_failure(
                        self._target,
                        timeout,
                        self._probe(channel),
                        _checked_name(self._target, self._name_override),
                    )
                    if isinstance(failure, HandshakeFailed):
                        return failure
                    if not confirm:
                        return failure  # the confirming dial's verdict: its first attempt
                    if (
                        isinstance(failure, ClosedAfterHandshake)
                        and self._closed_again(deadline, timeout)
                        and _still_listening(self._target)  # else: the server went away
                    ):
                        return _certificate_refused(self._target, failure)
        finally:
            channel.unsubscribe(watch)
        checked = _checked_name(self._target, self._name_override)
        return _dial_failure(self._target, timeout, self._probe(channel), checked)

    def _closed_again(self, deadline: float, timeout: float) -> bool:
        """Dial once more on a fresh channel: whether the server closed that connection
        right after the handshake too (a stopping server would refuse or accept it)."""
        channel = self._new_channel()
        try:
            again = self._wait_until_ready(channel, deadline, timeout, confirm=False)
        finally:
            channel.close()
        return isinstance(again, ClosedAfterHandshake)

    @staticmethod
    def _probe(channel: grpc.Channel) -> str:
        """The channel's last connection error, from a call that fails at once (no
        session is opened: the method does not exist); "" if the call says nothing."""
        try:
            probe = channel.unary_unary(
                _PROBE_METHOD, request_serializer=None, response_deserializer=None
            )
            probe(b"", timeout=2.0, wait_for_ready=False)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                return str(exc.details() or "")
        except Exception:  # the probe only improves a message; it must not replace it
            logger.debug("dial probe failed", exc_info=True)
        return ""

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
                raise _closed(self._ended.code, self._ended.details)
            unsent = self._outbox_bytes
            if unsent + len(data) <= self._max_outbox_bytes:
                self._outbox.put((self._next_id, data))
                self._next_id += 1
                self._outbox_bytes += len(data)
                return
        reason = (
            f"over its budget of {self._max_outbox_bytes} unsent bytes ({unsent} queued, "
            f"a message of {len(data)} more): the server is not reading"
        )
        logger.warning("ending the session with %s: %s", self._target, reason)
        self._call.cancel()  # the request generator waits in gRPC's flow control
        self._end(TransportClosed(grpc.StatusCode.CANCELLED, f"ended locally: {reason}"))
        with self._lock:
            while True:
                try:
                    self._outbox.get_nowait()
                except queue.Empty:
                    break
            self._outbox_bytes = 0
        self._outbox.put(_END)
        raise OutboxOverflow(f"session with {self._target} ended: {reason}")

    def receive(self, timeout: float | None = None) -> bytes | None:
        """The next message from the server; None on timeout; raises once the session is over.

        Messages that arrived before the end are still returned first.
        """
        if self._call is None:
            raise NotConnected("no open session")
        try:
            item = self._inbox.get(timeout=waitable_seconds(timeout))
        except queue.Empty:
            return None
        if isinstance(item, TransportClosed):
            self._inbox.put(item)  # every later call raises too
            if isinstance(item, InboxOverflow):
                raise InboxOverflow(item.code, item.details)
            raise _closed(item.code, item.details)
        with self._lock:  # max(): a purge may have zeroed them while this one was taken
            self._queued_messages = max(0, self._queued_messages - 1)
            self._queued_bytes = max(0, self._queued_bytes - len(item))
        return item

    @property
    def queued(self) -> tuple[int, int]:
        """Messages from the server held unread, and their bytes (for monitoring, tests)."""
        with self._lock:
            return self._queued_messages, self._queued_bytes

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
        """Cancel the stream, close the channel and wait for the reader (idempotent).

        The reader is joined, not left running: a daemon thread still inside gRPC's C
        core when the interpreter finalizes can deadlock gRPC's own shutdown, and the
        process then never exits (a branch that had printed "finished" hung at exit in
        CI). The cancel ends the reader's iteration at once, so the wait is short; its
        bound only keeps a wedged gRPC from wedging the caller too.
        """
        self._outbox.put(_END)
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            self._channel.close()
        self._end(TransportClosed(grpc.StatusCode.CANCELLED, "closed locally"))
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(_READER_JOIN_SECONDS)
            if reader.is_alive():
                logger.warning("the session reader of %s did not stop", self._target)

    def _requests(self) -> Iterator[bytes]:
        """Request generator, consumed by a gRPC thread: drain the outbox into frames."""
        while True:
            item = self._outbox.get()
            if item is _END:
                return  # half-close
            assert isinstance(item, tuple)
            message_id, payload = item
            with self._lock:  # being written now: the cap is on what waits behind it
                self._outbox_bytes = max(0, self._outbox_bytes - len(payload))
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
                if not self._room_for(reassembler.buffered + max(0, len(frame) - HEADER_BYTES)):
                    raise self._overflow(reassembler.buffered + len(frame) - HEADER_BYTES)
                message = reassembler.feed(frame)
                if message is not None:
                    with self._lock:
                        if self._ended is not None:
                            break  # closed locally meanwhile: nothing more is delivered
                        self._queued_messages += 1
                        self._queued_bytes += len(message)
                    self._inbox.put(message)
            self._end(TransportClosed(grpc.StatusCode.OK, "server ended the session"))
        except InboxOverflow as exc:
            logger.warning("ending the session with %s: %s", self._target, exc.details)
            call.cancel()
            self._end(exc, purge=True)
        except (MalformedFrame, MessageTooLarge) as exc:
            logger.warning("refused a message from the server: %s", exc)
            call.cancel()
            self._end(TransportClosed(grpc.StatusCode.CANCELLED, f"refused from server: {exc}"))
        except grpc.RpcError as exc:
            self._end(TransportClosed(exc.code(), exc.details()))
        except TransportClosed as exc:
            self._end(exc)
        except Exception as exc:  # a bug here must end the session, not hang receive()
            logger.exception("reader of the session with %s failed", self._target)
            call.cancel()
            self._end(TransportClosed(grpc.StatusCode.INTERNAL, f"client reader failed: {exc}"))
        finally:
            self._outbox.put(_END)  # let the request generator (and its thread) finish
            self._ready.set()

    def _room_for(self, incoming: int) -> bool:
        """Whether the inbox may take one more message of which ``incoming`` bytes
        have arrived (the reader's check, before each frame is kept)."""
        with self._lock:
            return (
                self._queued_messages < self._max_queued_messages
                and self._queued_bytes + incoming <= self._max_queued_bytes
            )

    def _overflow(self, incoming: int) -> InboxOverflow:
        with self._lock:
            messages, held = self._queued_messages, self._queued_bytes
        return InboxOverflow(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the server sent more than this client holds unread ({messages} messages, "
            f"{held} bytes held, {incoming} more arriving; at most "
            f"{self._max_queued_messages} messages and {self._max_queued_bytes} bytes)",
        )

    def _end(self, closed: TransportClosed, *, purge: bool = False) -> None:
        """Record the first reason the session ended and wake a blocked receive().

        ``purge`` also drops the messages not read yet (a session ended for what the
        server sent): their memory is freed now, and none is delivered."""
        with self._lock:
            if self._ended is not None:
                return
            self._ended = closed
            if purge:
                while True:
                    try:
                        self._inbox.get_nowait()
                    except queue.Empty:
                        break
                self._queued_messages = self._queued_bytes = 0
        self._inbox.put(closed)
