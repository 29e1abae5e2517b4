"""The errors of the gRPC transport, and how a gRPC status becomes one.

A session's end is a :class:`TransportClosed` carrying the gRPC status that ended it
(its text made one bounded printable line: it is the other party's words); the kinds
a party must treat differently are subclasses: a refused identity, a superseded
session (a twin process), a throttled one, an inbox or outbox over its budget. A dial
that fails on a certificate is a :class:`HandshakeFailed` (with the server-name
mismatch and the inferred certificate refusal as its kinds), an unknown host an
:class:`UnknownHost`; the :class:`~secagg.transport.base.NotAccepted` ones are never
redialled. How a dial's failure is diagnosed is :mod:`secagg.transport.grpc_dial`.

Why a module of its own: the server, the client and the dial diagnosis all raise or
recognise these, and a caller (a branch deciding whether to redial, the CLI printing
one line) reads them without the machinery. Every name is also importable from
:mod:`secagg.transport.grpc_transport`.
"""

from __future__ import annotations

from typing import Final

import grpc

from secagg.errors import printable_line
from secagg.transport.base import NotAccepted, NotConnected

#: how a throttled session is refused (RESOURCE_EXHAUSTED): the client's SessionThrottled
THROTTLE_DETAIL: Final = "too many new sessions from this identity"


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


#: gRPC statuses that refuse a client for who it is, not for the state of the network
_REFUSING_CODES: Final = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


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
