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
same name (reliability review D6). The messages a name's earlier sessions (the
replaced one, or ones that ended before) delivered and
:meth:`~GrpcServerTransport.receive` has not taken are still delivered, in arrival
order, after a new session of the name opened: the runtime reads a party's payload by
name, round and phase, not by session, so an upload in the inbox as its sender's link
blipped is the round's (the in-process hub delivers it too). When the new session
opens they count against its budget of unread data (below). Dropping them (2026-12-06,
a95f8af) lost such an upload to the redial, and the round ran without the branch.

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
ends, so gRPC itself drops an oversized frame before Python sees it, at its 5-byte
length prefix (one declaring 4 GiB ends the stream before the bytes come); both ends
must therefore use the same ``chunk_bytes`` (the default is 1 MiB). gRPC tells the
receiving server no more than that the call was cancelled (grpcio's server API carries
no status for it), so such a session ends as "connection lost", like a cut network; the
sender is told ``RESOURCE_EXHAUSTED`` "Received message larger than max (N vs. M)".

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
unread messages are dropped. The bound is the branch's: what its earlier sessions left
unread counts against the budget of the new one it opens (above), so closing and
reopening does not buy a new budget (before, a branch that filled its budget between
rounds, when the runtime's server reads nothing, and reconnected held one budget per
session it opened).
:meth:`~GrpcServerTransport.queued_bytes` reports the figure. A message begun must
also keep coming: one whose next frame has not arrived within ``partial_idle_timeout``
(default 300 s; each frame restarts the clock) ends the session with
``DEADLINE_EXCEEDED`` and drops its data, so a peer cannot park a budget's worth of
memory in a message it never finishes; and a message must be whole within
``message_receive_timeout`` of its first frame (default 3600 s), so one sent a frame at
a time just inside the idle bound ends the same way. A message's first
frame (a message under one chunk has no other) has no deadline: its bytes are gRPC's
until it is whole, and nothing in grpcio bounds how long that takes or shows that it
has begun (no server-side per-message or per-stream read deadline, see
tests/transport/test_grpc_trickled_frame.py), so a session whose peer trickles it looks
like one idle between rounds, which may last long. What such a peer holds is bounded:
at most ``chunk_bytes + FRAME_SLACK`` bytes in gRPC (the length prefix is checked before
the bytes come), one of ``max_clients`` calls and two threads, one session per identity.
How long is not, at the transport: the session lasts while the peer keeps its
connection (answering keepalive pings); the runtime bounds the round instead (a party
silent past its phase deadline is a dropout of that round).

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
server could grow a branch without end: 4000 messages of 256 KiB held 1000 MiB); and
a message from the server not whole within the client's ``message_receive_timeout``
of its first frame (default 3600 s) ends the session too (``DEADLINE_EXCEEDED``,
ended locally, the partial message dropped).

Session churn. New sessions are rate-limited per identity: a token bucket per client
certificate (``session_burst``, default 10, refilled at ``session_rate``, default 1 a
second), checked on the digest of the certificate's signed part (one bucket however its
ECDSA signature is encoded) before ``identify``, a thread or an event. An identity over
it is refused with ``RESOURCE_EXHAUSTED`` and :data:`THROTTLE_DETAIL` (its client raises
:class:`SessionThrottled` and redials after its back-off); its open session and every
other identity are untouched. Before, one branch opening and closing sessions in a loop
was admitted some 330 times a second.

Connections. Every connection holds a file descriptor from TCP accept on, before any
certificate is seen, so they are bounded apart from sessions: one that has not finished
its TLS handshake within ``handshake_timeout`` (default 10 s; gRPC's own default is
120 s) is closed, one with no call open for ``idle_connection_timeout`` (default
60 s: an enrolled party's connection opened for nothing) too, and at most
``max_connections`` are open at once (default :func:`default_max_connections`: half the
process's descriptors, at most 4096, at least two per client); past it a new connection
is closed at accept, and the sessions already open are untouched. Before, 50 silent
sockets were all still open after 119 s and nothing capped their number, so a flood
from anyone who reaches the port could take every descriptor of the process, its
database's and its ledger's included (hostile review, 2026-12-05). A flood within the
cap still keeps new branches out while it lasts: the port belongs behind a firewall
that admits the branches' addresses only (``docs/deployment.md``). So can one enrolled
branch, for as long as it likes: every call restarts a connection's idle clock (one
refused at once, or to a method no server serves, which never reaches this code), so a
call on each connection now and then keeps up to ``max_connections`` of them open, and
the cap is gRPC's, counted at accept before the certificate is seen, with no per-peer
limit, hook or close in grpcio (a connection reopened as it is closed takes its slot
back as fast); its calls are bounded per identity (one live session per name, the
session rate), its connections only by a per-source connection limit in front of the
server (tests/transport/test_grpc_identity_connection_hold.py). Within a connection
at most :data:`MAX_STREAMS_PER_CONNECTION` streams are open at once (HTTP/2's
SETTINGS_MAX_CONCURRENT_STREAMS; gRPC refuses the next with ``REFUSED_STREAM`` before
any handler runs): gRPC's default is no limit, and it queued every stream opening an
enrolled branch sent for the session handler (100 000 on one connection took the server
from 53 to 384 MB; liveness review, 2026-12-07). A client transport dials a connection
of its own (gRPC's global subchannel pool would share one among a process's channels to
the same target, and with it the cap).

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
instead of waiting for a thread. A session the server ends with a status (superseded,
identity refused, a limit broken) gives its call back even if its writer waits in flow
control on a peer that reads nothing: the call is cancelled when the writer has not come
back within ten seconds. A client's half-close is answered with the server's end of the
stream (what is queued, then ``OK``; a ``send`` after the half-close was read raises
:class:`~secagg.transport.base.PeerClosing`, a ``NotConnected`` for a session still
listed under its id, where it was queued behind that end and lost in silence; the
runtime sends a key holder closing so its request again when it is back, as for a
dropped link), and the session's end is reported when the call
has ended, by how it ended: "client closed the session" if the client took that end,
"connection lost" if the call was cancelled (a killed process, a cut network), however
late gRPC handles the drop; a client that half-closed in the middle of a message is
said (and logged as a warning) to have closed mid-message, naming the bytes dropped,
whether it took the end or not. Whatever a session was reassembling is freed when its
half-close is read or the session ends, not when its call ends (up to ten seconds
later, above). One more daemon thread re-checks identities and expiries. All public
methods are thread-safe.
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

Where it lives. This module is the specification above and the one import path
(every name below is importable from here, as it was when the transport was one file
of 2 285 lines); the code is in the modules of the transport package, split by what it
does: :mod:`~secagg.transport.framing` (frames and reassembly),
:mod:`~secagg.transport.grpc_limits` (the wire names, channel options, default limits
and their checks), :mod:`~secagg.transport.grpc_errors` (the errors, and a gRPC status
as one), :mod:`~secagg.transport.grpc_dial` (why a dial failed: TLS, names, DNS),
:mod:`~secagg.transport.grpc_server` (:class:`GrpcServerTransport`, its sessions and
events) and :mod:`~secagg.transport.grpc_client` (:class:`GrpcClientTransport`). The
server and the client import the framing, limits and errors, never each other. Every
module logs on this module's logger name, ``secagg.transport.grpc_transport``.
"""

from __future__ import annotations

import logging

# Names the transport used from elsewhere, importable from here as before.
from secagg.errors import ConfigurationError as ConfigurationError
from secagg.errors import printable_line as printable_line
from secagg.transport.base import NotAccepted as NotAccepted
from secagg.transport.base import NotConnected as NotConnected
from secagg.transport.base import TransportError as TransportError
from secagg.transport.base import waitable_seconds as waitable_seconds
from secagg.transport.framing import DEFAULT_CHUNK_BYTES as DEFAULT_CHUNK_BYTES
from secagg.transport.framing import HEADER_BYTES as HEADER_BYTES
from secagg.transport.framing import MAX_INCOMING_CONNECTIONS as MAX_INCOMING_CONNECTIONS
from secagg.transport.framing import MalformedFrame as MalformedFrame
from secagg.transport.framing import MessageParts as MessageParts
from secagg.transport.framing import MessageTooLarge as MessageTooLarge
from secagg.transport.framing import Reassembler as Reassembler
from secagg.transport.framing import _as_bytes as _as_bytes
from secagg.transport.framing import _check_sizes as _check_sizes
from secagg.transport.framing import _grpc_size_options as _grpc_size_options
from secagg.transport.framing import encode_frames as encode_frames
from secagg.transport.grpc_client import _READER_JOIN_SECONDS as _READER_JOIN_SECONDS
from secagg.transport.grpc_client import GrpcClientTransport as GrpcClientTransport
from secagg.transport.grpc_dial import _HOSTNAME_FAILURE as _HOSTNAME_FAILURE
from secagg.transport.grpc_dial import _MAX_SERVED_NAMES as _MAX_SERVED_NAMES
from secagg.transport.grpc_dial import _UNKNOWN_NAME_ERRORS as _UNKNOWN_NAME_ERRORS
from secagg.transport.grpc_dial import _as_host as _as_host
from secagg.transport.grpc_dial import _certificate_refused as _certificate_refused
from secagg.transport.grpc_dial import _checked_name as _checked_name
from secagg.transport.grpc_dial import _dial_failure as _dial_failure
from secagg.transport.grpc_dial import _host_port as _host_port
from secagg.transport.grpc_dial import (
    _install_closed_channel_filter as _install_closed_channel_filter,
)
from secagg.transport.grpc_dial import _ip_spelling as _ip_spelling
from secagg.transport.grpc_dial import _is_closed_channel_poll as _is_closed_channel_poll
from secagg.transport.grpc_dial import _is_ip_address as _is_ip_address
from secagg.transport.grpc_dial import _name_mismatch as _name_mismatch
from secagg.transport.grpc_dial import _quotable as _quotable
from secagg.transport.grpc_dial import _same_name as _same_name
from secagg.transport.grpc_dial import _served_names as _served_names
from secagg.transport.grpc_dial import _still_listening as _still_listening
from secagg.transport.grpc_dial import _unknown_host as _unknown_host
from secagg.transport.grpc_dial import _waited as _waited
from secagg.transport.grpc_errors import _REFUSING_CODES as _REFUSING_CODES
from secagg.transport.grpc_errors import MAX_STATUS_TEXT as MAX_STATUS_TEXT
from secagg.transport.grpc_errors import SUPERSEDED_DETAIL as SUPERSEDED_DETAIL
from secagg.transport.grpc_errors import THROTTLE_DETAIL as THROTTLE_DETAIL
from secagg.transport.grpc_errors import CertificateRefusalInferred as CertificateRefusalInferred
from secagg.transport.grpc_errors import ClosedAfterHandshake as ClosedAfterHandshake
from secagg.transport.grpc_errors import HandshakeFailed as HandshakeFailed
from secagg.transport.grpc_errors import IdentityRefused as IdentityRefused
from secagg.transport.grpc_errors import InboxOverflow as InboxOverflow
from secagg.transport.grpc_errors import OutboxOverflow as OutboxOverflow
from secagg.transport.grpc_errors import ServerNameMismatch as ServerNameMismatch
from secagg.transport.grpc_errors import SessionThrottled as SessionThrottled
from secagg.transport.grpc_errors import Superseded as Superseded
from secagg.transport.grpc_errors import TransportClosed as TransportClosed
from secagg.transport.grpc_errors import UnknownHost as UnknownHost
from secagg.transport.grpc_errors import _closed as _closed
from secagg.transport.grpc_errors import _status_line as _status_line
from secagg.transport.grpc_limits import _CLIENT_KEEPALIVE as _CLIENT_KEEPALIVE
from secagg.transport.grpc_limits import _CLIENT_OWN_CONNECTION as _CLIENT_OWN_CONNECTION
from secagg.transport.grpc_limits import _CLIENT_RECONNECT as _CLIENT_RECONNECT
from secagg.transport.grpc_limits import _END as _END
from secagg.transport.grpc_limits import _ENDED_WRITER_GRACE_SECONDS as _ENDED_WRITER_GRACE_SECONDS
from secagg.transport.grpc_limits import _HALF_CLOSE_END_SECONDS as _HALF_CLOSE_END_SECONDS
from secagg.transport.grpc_limits import _MAX_DEFAULT_CONNECTIONS as _MAX_DEFAULT_CONNECTIONS
from secagg.transport.grpc_limits import _MAX_TRACKED_IDENTITIES as _MAX_TRACKED_IDENTITIES
from secagg.transport.grpc_limits import _PEER_CERT_KEY as _PEER_CERT_KEY
from secagg.transport.grpc_limits import _POLL_SECONDS as _POLL_SECONDS
from secagg.transport.grpc_limits import _PROBE_METHOD as _PROBE_METHOD
from secagg.transport.grpc_limits import _SERVER_KEEPALIVE as _SERVER_KEEPALIVE
from secagg.transport.grpc_limits import _SERVER_STREAMS as _SERVER_STREAMS
from secagg.transport.grpc_limits import _TLS_VERSION_KEY as _TLS_VERSION_KEY

# The transport, by module (see "Where it lives" above).
from secagg.transport.grpc_limits import DEFAULT_HANDSHAKE_SECONDS as DEFAULT_HANDSHAKE_SECONDS
from secagg.transport.grpc_limits import (
    DEFAULT_IDLE_CONNECTION_SECONDS as DEFAULT_IDLE_CONNECTION_SECONDS,
)
from secagg.transport.grpc_limits import DEFAULT_MAX_INBOX_MESSAGES as DEFAULT_MAX_INBOX_MESSAGES
from secagg.transport.grpc_limits import DEFAULT_MAX_PENDING_EVENTS as DEFAULT_MAX_PENDING_EVENTS
from secagg.transport.grpc_limits import DEFAULT_MAX_QUEUED_MESSAGES as DEFAULT_MAX_QUEUED_MESSAGES
from secagg.transport.grpc_limits import (
    DEFAULT_MESSAGE_RECEIVE_SECONDS as DEFAULT_MESSAGE_RECEIVE_SECONDS,
)
from secagg.transport.grpc_limits import (
    DEFAULT_PARTIAL_IDLE_SECONDS as DEFAULT_PARTIAL_IDLE_SECONDS,
)
from secagg.transport.grpc_limits import DEFAULT_RECHECK_SECONDS as DEFAULT_RECHECK_SECONDS
from secagg.transport.grpc_limits import DEFAULT_SESSION_BURST as DEFAULT_SESSION_BURST
from secagg.transport.grpc_limits import DEFAULT_SESSION_RATE as DEFAULT_SESSION_RATE
from secagg.transport.grpc_limits import GRPC_MAX_MILLISECONDS as GRPC_MAX_MILLISECONDS
from secagg.transport.grpc_limits import IDENTITY_METADATA_KEY as IDENTITY_METADATA_KEY
from secagg.transport.grpc_limits import MAX_STREAMS_PER_CONNECTION as MAX_STREAMS_PER_CONNECTION
from secagg.transport.grpc_limits import MIN_QUEUED_BYTES as MIN_QUEUED_BYTES
from secagg.transport.grpc_limits import SERVICE_NAME as SERVICE_NAME
from secagg.transport.grpc_limits import SESSION_METHOD as SESSION_METHOD
from secagg.transport.grpc_limits import TLS_VERSIONS as TLS_VERSIONS
from secagg.transport.grpc_limits import _check_timer_seconds as _check_timer_seconds
from secagg.transport.grpc_limits import _queue_budgets as _queue_budgets
from secagg.transport.grpc_limits import default_max_connections as default_max_connections
from secagg.transport.grpc_limits import grpc_milliseconds as grpc_milliseconds
from secagg.transport.grpc_server import Connected as Connected
from secagg.transport.grpc_server import ConnectionEvent as ConnectionEvent
from secagg.transport.grpc_server import Disconnected as Disconnected
from secagg.transport.grpc_server import GrpcServerTransport as GrpcServerTransport
from secagg.transport.grpc_server import _AdmittedContext as _AdmittedContext
from secagg.transport.grpc_server import _auth_snapshot as _auth_snapshot
from secagg.transport.grpc_server import _certificate_of as _certificate_of
from secagg.transport.grpc_server import _common_name as _common_name
from secagg.transport.grpc_server import _identity_key as _identity_key
from secagg.transport.grpc_server import _Session as _Session
from secagg.transport.grpc_server import _SessionRate as _SessionRate
from secagg.transport.grpc_server import _utcnow as _utcnow

logger = logging.getLogger(__name__)  # the name every module of the transport logs on
