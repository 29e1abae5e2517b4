"""What every transport offers the runtime, and the errors they share.

The runtime is written against two small protocols, :class:`ServerEndpoint` for
the server and :class:`ClientEndpoint` for each client, so it never knows which
transport it drives: the in-process queues (:mod:`secagg.transport.inprocess`)
or gRPC with mutual TLS (:mod:`secagg.transport.grpc_transport`). Messages are
opaque bytes; a transport never interprets them.

Both transports raise the same :class:`NotConnected` for a peer without an open
connection (gRPC's server: :class:`PeerClosing`, for a session its client has
half-closed). It is a :class:`ConnectionError` (so ``except ConnectionError``
catches it whichever transport raised it) and a :class:`TransportError`, and so a
:class:`~secagg.errors.SecAggError`. :class:`NotAccepted` is the kind of
:class:`NotConnected` that redialling cannot cure (the server refused this party's
identity, or the TLS handshake failed): a branch stops at once instead of retrying.

Sessions. A server endpoint may also offer ``session_id(name)``: the id of ``name``'s
open session (a new one for every session, never reused), or None. The runtime
records it when a round starts, so a participant whose session has since ended counts
as gone at once even when it has already reconnected under the same name (review D6);
an endpoint without it falls back to :meth:`ServerEndpoint.connected`. It may also offer
``wait_for_sessions(seen, timeout)``: wait until a session opened or ended (or the
endpoint stopped) after the change numbered ``seen``, and return the latest number;
the server's quorum wait then wakes when a branch connects, where an endpoint without
it is polled (up to a second apart). gRPC's server and the in-process hub (so the
simulator's network) offer it. And ``send_parts(name, parts)``: send the
concatenation of ``parts`` without joining them, so that a part shared by many
messages (every branch's round start carries the same model) is held once, not once
per branch; an endpoint without it is sent the joined message. And
``send_to_session(name, session, parts)``: as ``send_parts``, but only while ``name``'s
open session is ``session`` (an id ``session_id`` gave), compared and queued as one step,
else :class:`NotConnected`. The server sends a round's messages and the key holder's
requests so: a session opened between its look at the session and its send never gets
the round (it never took it).
The server uses it only where the class whose ``send`` it would call defines it beside
that ``send`` (a subclass or wrapper that overrides ``send`` to count or refuse what the
server sends keeps seeing every message); elsewhere it sends by name.
And ``queued()``: how many messages wait for ``receive`` now (gRPC's server and the
in-process hub offer it). A server that sees a phase's deadline passed at a refused
message reads that many more (answers that came before it looked) before it closes the
phase; without it, the phase closes there.
"""

from __future__ import annotations

import threading
from typing import Final, Protocol

from secagg.errors import SecAggError

__all__ = [
    "ClientEndpoint",
    "NotAccepted",
    "NotConnected",
    "PeerClosing",
    "ServerEndpoint",
    "TransportError",
]


class ServerEndpoint(Protocol):
    """What the server runtime needs from a transport."""

    def send(self, name: str, payload: bytes) -> None:
        """Queue ``payload`` to ``name``'s open session.

        Raises :class:`NotConnected` when ``name`` has no open session (or, gRPC's
        :class:`PeerClosing`, has half-closed it), another :class:`TransportError` for a
        message the transport refuses (above its size limit). An endpoint that writes
        to a socket itself may let an :class:`OSError` of the write out: the runtime's
        server takes it, as it takes the errors above, for the party's failure (a
        timeout, a reset: that branch is a dropout of the round), except one whose
        ``errno`` says the server's own resources failed (its descriptors, memory,
        buffers or disk: ``LOCAL_SEND_ERRNOS`` in :mod:`secagg.runtime.server`), which
        stops the server naming the cause. So an endpoint must not wrap such an error
        in a :class:`TransportError`, which would make it the party's."""
        ...

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        """The next ``(name, payload)``, or None: on timeout, or earlier where the
        transport can tell that a session ended, or opened while this call waits (the
        in-process hub and gRPC do), so that the server looks at who is still connected
        (or back: a key holder it resends a request to) without waiting out its poll."""
        ...

    def connected(self) -> set[str]: ...


class ClientEndpoint(Protocol):
    """What a client runtime needs from a transport."""

    def send(self, payload: bytes) -> None: ...

    def receive(self, timeout: float | None) -> bytes | None: ...


class TransportError(SecAggError):
    """The transport could not carry a message; the protocol state is untouched."""


class NotConnected(TransportError, ConnectionError):
    """No open connection with that peer (the named client, or the server)."""


class PeerClosing(NotConnected):
    """The peer has closed its side of the session (a half-close: its normal end), which
    is still open while the server's end of it is written: nothing sent now reaches it,
    and nothing more comes from it on that session.

    Why a kind of its own: the session is still the one the sender looked at (the same
    id, still listed as connected), so a sender that tells "its session ended inside the
    send" by the session being gone took it for a live peer that refused the message.
    The server's runtime took a CKKS key holder restarting (closing its session) as its
    request went out for one it could not reach, and aborted the round, where a key
    holder whose link dropped gets the request again when it is back (certificate and
    transport review, 2026-12-07)."""


class NotAccepted(NotConnected):
    """The peer refused this party for who it is (its certificate, its name) or the TLS
    handshake failed: dialling again with the same credentials cannot succeed.

    ``inferred`` is True where the refusal is the transport's inference, not the
    peer's word (gRPC's ``CertificateRefusalInferred``): a party whose certificate this
    server accepted earlier in the run keeps redialling on it."""

    inferred: bool = False


#: The longest wait any duration key or flag takes, in seconds: one week (defined in the
#: lowest layer that waits, so every layer reads the one value). Why a cap: the waits
#: reach ``threading`` and ``queue`` timeouts (refused past ``threading.TIMEOUT_MAX``,
#: about 292 years, as an OverflowError: ``deadlines.round_seconds = 1e300`` loaded and
#: reached the unmasking's Ray timeout and the key holder's idle wait) and sums of them
#: (the key holder's idle wait is quorum_wait_seconds + round_seconds + 30 s, plus 5 s a
#: branch under record-level DP-SGD). A week is
#: far beyond any deadline a federation uses (a phase's default is 30 s, a training
#: phase hours at most, the quorum wait 10 minutes): a larger value is a typo, and a
#: party silent that long is gone (upper-bounds review, 2026-12-05).
MAX_WAIT_SECONDS: Final = 7 * 24 * 3600


def waitable_seconds(seconds: float | None) -> float | None:
    """A caller's wait in seconds, at most ``threading.TIMEOUT_MAX`` (about 292 years),
    for every transport's ``connect`` and ``receive``: clamped, not refused, because a
    wait that long is "until it happens", which is what ``inf`` asks for. Why:
    ``connect(timeout=inf)`` and ``receive(timeout=inf)`` died at once with
    ``OverflowError: timestamp out of range for platform time_t`` from the lock or queue
    they wait on (gRPC's, then the in-process hub's), instead of waiting. None (no
    limit) stays None."""
    if seconds is None or not seconds > threading.TIMEOUT_MAX:
        return seconds
    return threading.TIMEOUT_MAX
