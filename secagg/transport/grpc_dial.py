"""Why a client's dial failed, said in one line that names the cause and the way out.

gRPC reports a failed dial as "failed to connect to all addresses" with the real
cause in the channel's last error, if anywhere. These functions turn that into the
transport's errors: a certificate problem (:class:`~secagg.transport.grpc_errors.HandshakeFailed`),
a server certificate without the name dialled (naming the names it holds, read over
a handshake of its own and never trusted), a host DNS says does not exist (looked up
before the dial), a server that closes right after the TLS 1.3 handshake (twice, and
still listening: a refusal of this party's certificate, inferred), or a network
failure that names what happened. Also the filter that keeps gRPC's connectivity
poller, ending on a channel closed under it, from printing a traceback.

Why a module of its own: this is the client's TLS and name diagnosis, a fifth of the
transport, and none of it runs once a session is open. The dial itself is
:meth:`secagg.transport.grpc_client.GrpcClientTransport.connect`. Every name is also
importable from :mod:`secagg.transport.grpc_transport`.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
from typing import Final

from cryptography import x509

from secagg.transport.base import NotConnected
from secagg.transport.grpc_errors import (
    CertificateRefusalInferred,
    ClosedAfterHandshake,
    HandshakeFailed,
    ServerNameMismatch,
    UnknownHost,
)

#: one logger for the whole gRPC transport (the name operators' log settings and the
#: tests address), whichever of its modules logs
logger = logging.getLogger("secagg.transport.grpc_transport")


#: how gRPC says the server's certificate lacks the name checked: grpcio 1.85 "Custom
#: verification check failed with error: UNAUTHENTICATED: Hostname Verification Check
#: failed.", older releases (TSI) "Peer name 127.0.0.1 is not in peer certificate"
_HOSTNAME_FAILURE: Final = re.compile(
    r"hostname verification check failed\.?|peer name \S+ is not in peer certificate",
    re.IGNORECASE,
)


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


#: what BoringSSL's reason for a failed certificate check means for the operator, first
#: match wins: its verifier's words for the server's certificate (X509_verify_cert_error_
#: string), then the alerts a TLS 1.2 server sends about this party's certificate
_CERTIFICATE_CAUSES: Final = (
    (
        (
            "unable to get local issuer certificate",
            "unable to get issuer certificate",
            "self signed certificate",
            "self-signed certificate",
            "certificate signature failure",
        ),
        "the server's certificate is not signed by the CA in this party's ca.pem (the "
        "server runs with another CA's certificate, or this party holds another "
        "federation's ca.pem)",
    ),
    (
        ("certificate has expired",),
        "the server's certificate has expired (or this machine's clock is ahead): the "
        "server needs a new certificate",
    ),
    (
        ("certificate is not yet valid",),
        "the server's certificate is not valid yet (or this machine's clock is behind)",
    ),
    (
        ("unsupported certificate purpose",),
        "the server's certificate is not one for a server (its extended key usage)",
    ),
    (
        ("alert_unknown_ca",),
        "the server refused this party's certificate: it is not signed by the CA the server trusts",
    ),
    (
        ("alert_certificate_expired",),
        "the server refused this party's certificate as expired (or its clock is wrong)",
    ),
)


def certificate_failure_cause(reason: str) -> str | None:
    """What a failed certificate check means, from the TLS library's reason (BoringSSL's
    in gRPC, OpenSSL's ``verify_message`` or alert reason in Python's ``ssl``, in any
    case): whose certificate failed and why, in the operator's words; None for a reason
    not known here.

    The one source of these words: the transport's dial diagnosis
    (:func:`_dial_failure`) and ``secagg client``/``keyholder``'s TLS probe
    (``secagg.apps.commands.dialling``) said the same failure in two wordings, the
    probe's sending an operator whose server certificate had expired to check "is that
    the federation's CA" (transport review, 2026-12-06). Each caller adds its own
    context (the file, the certificate, the words the library used)."""
    lowered = reason.lower()
    for words, meaning in _CERTIFICATE_CAUSES:
        if any(word in lowered for word in words):
            return meaning
    return None


def _certificate_cause(lowered: str) -> str:
    """:func:`certificate_failure_cause`, or for a reason not known there the dial's
    general advice.

    Why: every such failure read "this party's certificates must come from the
    federation's CA, and the server's certificate must carry the name dialled" whatever
    it was, so a server certificate that had expired sent the operator to check the
    branch's CA and the name dialled (transport review, 2026-12-06). A reason not known
    here keeps that advice."""
    return certificate_failure_cause(lowered) or (
        "this party's certificates must come from the federation's CA, and the server's "
        "certificate must carry the name dialled"
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
            f"TLS handshake with {target} failed: {_certificate_cause(lowered)} ({cause})"
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
