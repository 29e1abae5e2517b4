"""The parties that dial the server (``secagg client``, ``secagg keyholder``): their
shared options (``--server``, ``--server-name``, ``--name``, ``--certs``, the redial
timeouts) and the one line that names why a connection failed, probing TLS once when
gRPC's own message cannot tell an untrusted certificate from an unreachable host.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from secagg.apps.cli_types import FiniteFloat, NonEmptyPath, refuse_special_files
from secagg.apps.commands.common import _one_line, machine_failure, os_error_status
from secagg.errors import ConfigurationError
from secagg.transport.base import MAX_WAIT_SECONDS
from secagg.transport.framing import MAX_MESSAGE_BYTES
from secagg.transport.grpc_limits import DEFAULT_MESSAGE_RECEIVE_SECONDS

#: a dialling party's message limit when neither --max-message-bytes nor a federation
#: config says otherwise: the server's own default ([server] max_message_bytes)
DEFAULT_MESSAGE_BYTES = 256 * 1024 * 1024
#: the smallest limit a party may set: the server config's floor for the same key
MIN_MESSAGE_BYTES = 1024


def _server_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--server`` is HOST:PORT with a port in 1-65535 (the config's own check)."""
    del ctx, param
    from secagg.runtime.config import split_host_port

    if value is not None:
        try:
            split_host_port(value, "address")
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _server_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--server-name`` is a host name (RFC 1123 labels, at most 253 characters; a
    dotted IPv4 address is one too) or an IPv6 address, with or without brackets: the
    name checked on the server's certificate.

    Why: ``secagg client`` could only check the host it dialled, so a branch could not
    dial the server by IP address when its certificate holds only a DNS name, although
    :func:`~secagg.runtime.launch.run_branch` takes ``name_override`` (review,
    2026-12-05). A value that cannot be a certificate's name (a port, a scheme, a
    space) would only fail at the handshake: it is refused here, naming the flag. An
    IPv6 address (``::1``, ``[fd00::5]``) was refused as "not a host name" although a
    certificate carries it as an IP SAN (review, 2026-12-05): it is returned in its one
    spelling (:func:`secagg.transport.names.ip_name`: ``inet_ntop``'s, no brackets), the
    one gRPC compares with the certificate's IP SANs (``0:0:0:0:0:0:0:1`` does not match
    ``::1`` there, nor ``::ffff:a00:5`` ``::ffff:10.0.0.5``)."""
    del ctx, param
    if value is None:
        return None
    from secagg.transport.names import BadServerName, certificate_name, ip_name

    try:
        name = certificate_name(value)
    except BadServerName as exc:
        if exc.kind == "zone":
            raise click.BadParameter(
                f"{value!r}: a zone (%{exc.zone}) names this machine's interface, "
                "not a name a certificate carries; give the address without it"
            ) from None
        if exc.kind == "ipv4":
            raise click.BadParameter(
                f"{value!r} is not an IPv4 address (four numbers 0-255, no leading zeros, "
                "e.g. 10.0.0.5), and a host name's last label is never all digits"
            ) from None
        raise click.BadParameter(
            f"{value!r} is not a host name (letters, digits, hyphens and dots, e.g. "
            "fl.bank.internal) nor an IP address (10.0.0.5, fd00::5): the name the "
            "server's certificate carries, without a port"
        ) from None
    # an address in gRPC's spelling (inet_ntop's), which for ::ffff:10.0.0.5 is not
    # str(address)'s ::ffff:a00:5 before Python 3.13
    return name if isinstance(name, str) else ip_name(str(name))


def _party_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--name`` is a branch's or key holder's name as ``secagg certs issue`` takes it (1-64
    characters from A-Z a-z 0-9 . _ -, starting with a letter or digit), or nothing can
    dial: its certificate is ``clients/NAME.pem`` and the server admits no other common name.

    Why here, before anything is read: the name was first checked when the certificate
    folder was, and every line a dialling party prints starts with its name, so ``--name
    ''`` said ``secagg client: : invalid client name ''`` and a name ending in a newline
    (a script's ``$(cat name)`` of a file written with ``echo``) printed its error on two
    lines, neither naming ``--name`` (hostile CLI review, 2026-12-06)."""
    del ctx, param
    if value is None:
        return None
    from secagg.transport.certs import InvalidClientName, check_client_name

    try:
        return check_client_name(value)
    except InvalidClientName as exc:
        raise click.BadParameter(_one_line(exc)) from None


def _connection_failure(exc: Exception, target: str, certificates: str, name: str) -> str:
    """The real cause of a failed connection, in one line.

    A session the server ended carries its status (a revoked or unlisted branch is
    ``UNAUTHENTICATED``/``PERMISSION_DENIED``, which retrying cannot fix). A connection
    that never opened, with a message that does not already name the handshake, is
    probed once more with a plain TLS handshake: gRPC can report an untrusted
    certificate exactly like an unreachable host ("cannot reach")."""
    status = getattr(exc, "code", None)
    status_name = getattr(status, "name", None)
    if status_name in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        details = getattr(exc, "details", "") or str(exc)
        return (
            f"the server at {target} refused {name}: {details} (revoked, not one of the "
            "federation's clients, or a certificate it does not accept; retrying will not help)"
        )
    message = _one_line(exc, name)
    # a dial that timed out without a cause ("cannot reach X within 5 s") is probed; a
    # message that already names it (refused, handshake, certificate) is kept
    unexplained = re.search(r"cannot reach \S+ within [\d.]+ s\)?(;|$)", message)
    if status is None and unexplained:
        cause = _probe_tls(target, certificates, name)
        if cause is not None and "giving up" in message:
            return f"{message} [{cause}]" if "TLS handshake" in cause else message
        if cause is not None:
            return cause
    return message


def _certs_error(exc: BaseException, name: str) -> click.ClickException:
    """A certificate folder's file that could not be used, as click's one line naming
    --certs, its status by the one rule (:func:`~secagg.apps.commands.common.os_error_status`
    of the OSError the error was raised from): a file the machine will not read (no
    permission, an I/O error) is exit 1, ``Error: --certs: <what> at <path> cannot be
    read: <cause>``; a missing file, a file for a folder, or one that holds no
    certificate is the usage error (exit 2).

    Why: ``client --certs base.toml`` exited 1 with ``[Errno 20] Not a directory``, a
    failure the user could not tell was their option (CLI audit, 2026-12-05); and a key
    file the party may not read said ``Invalid value for '--certs': ... permission
    denied``, exit 2, where every other path the machine refuses is exit 1 (path-failure
    review, 2026-12-07). Never key material: the message names files and causes only."""
    if os_error_status(exc.__cause__) == 1:
        return machine_failure("--certs", _one_line(exc, name))
    message = _one_line(exc, name)
    if message.startswith(f"certificate of client {name!r} not found at "):
        message += f": {_issue_advice(name)}"
    return click.BadParameter(message, param_hint="'--certs'")


def _issue_advice(name: str) -> str:
    """How a party without a certificate of its own name gets one.

    Why: the walk-through of 2026-12-05 went from ``keyholder-init`` to ``keyholder``
    and stopped at ``certificate of client 'compliance' not found at ...``, a line that
    did not say the certificate is issued by ``secagg certs issue`` like a branch's
    (the guide now has the step; the line says it too, walk-through of 2026-12-07)."""
    return (
        f"issue one with 'secagg certs issue {name}' where the CA is, then give this "
        f"party its CA folder or its bundle (ca.pem, {name}.pem, {name}.key)"
    )


def _refuse_special_certificates(certificates: str, name: str) -> None:
    """Refuse a named pipe (a device, a socket) where ``--certs`` has a file this party
    reads, in one usage line naming ``--certs``, before anything is dialled: in a CA
    folder ``ca.pem`` and ``clients/NAME.pem``/``.key``, in a party's bundle ``NAME.pem``
    and ``NAME.key``. A named pipe there blocked the transport's ``open()`` forever
    (hostile CLI review, 2026-12-06)."""
    from pathlib import Path

    from secagg.errors import ConfigurationError
    from secagg.transport.certs import CaLayout

    layout = CaLayout(Path(certificates))
    try:
        own = [layout.client_cert(name), layout.client_key(name)]
    except ConfigurationError:  # a name no certificate can carry: the transport names it
        own = []
    bundle = [layout.directory / f"{name}.pem", layout.directory / f"{name}.key"]
    refuse_special_files([layout.ca_cert, *own, *bundle], "a certificate or key file", "--certs")


def _probe_tls(target: str, certificates: str, name: str, timeout: float = 5.0) -> str | None:
    """Dial ``target`` with the branch's own CA and certificate over plain TLS and say what
    failed: the TCP connection, the server's certificate (not from this branch's CA, or not
    naming the host) or this branch's certificate (refused by the server). None: the
    handshake works, so the failure was elsewhere.

    The probe trusts exactly the one CA the transport trusts, read by the same rule
    (:func:`~secagg.transport.certs.load_ca_certificate`): it gave ``ca.pem`` to
    ``ssl`` as a ``cafile``, which trusts every certificate in the file, so with a
    bundle there a diagnosis could pass a server the connection itself refuses. A
    ``ca.pem`` the transport refuses gives no probe (None: the transport's line names
    the file)."""
    import socket
    import ssl
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    from secagg.runtime.config import split_host_port
    from secagg.transport.certs import CaLayout, load_ca_certificate
    from secagg.transport.grpc_dial import certificate_failure_cause

    try:
        host, port = split_host_port(target, "--server")
        layout = CaLayout(Path(certificates))
        cert = layout.client_cert(name)
        key = layout.client_key(name)
        if not cert.exists():  # a branch's own bundle: ca.pem, NAME.pem, NAME.key
            cert, key = layout.directory / f"{name}.pem", layout.directory / f"{name}.key"
        trusted = load_ca_certificate(layout.ca_cert)  # one CA, as the transport: not a file
        context = ssl.create_default_context(
            cadata=trusted.public_bytes(serialization.Encoding.PEM).decode("ascii")
        )
        context.load_cert_chain(str(cert), str(key))
        context.set_alpn_protocols(["h2"])
    except (ConfigurationError, OSError, ssl.SSLError):
        return None  # the transport's own message is the better one
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (
            f"cannot reach {target}: {reason} (is the server running on that port, and may "
            "this branch connect out to it?)"
        )
    with raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            said = str(exc.verify_message or exc.reason or exc)
            cause = certificate_failure_cause(said)
            if cause is not None:  # the transport's words, with the file checked against
                return f"TLS handshake with {target} failed: {cause} ({layout.ca_cert}: {said})"
            return (
                f"TLS handshake with {target} failed: the server's certificate is not "
                f"trusted by {layout.ca_cert} ({said}); is that the "
                f"federation's CA, and does the server's certificate name {host}?"
            )
        except (ssl.SSLError, OSError) as exc:
            return _handshake_failure(target, cert, exc)
        with tls:
            tls.settimeout(min(timeout, 2.0))
            try:  # TLS 1.3: the server judges our certificate after the handshake
                first = tls.recv(1)
            except ssl.SSLError as exc:
                return _handshake_failure(target, cert, exc)
            except OSError:
                return None  # silence after the handshake: the certificates were fine
    if not first:  # gRPC's server hangs up at once on a client certificate it refuses
        return (
            f"TLS handshake with {target} failed: it closed the connection right after the "
            f"handshake, so most likely the server refused this party's certificate (was "
            f"{cert} issued by the CA the server trusts?); a server stopping mid-handshake "
            "looks the same, and its log says which"
        )
    return None


def _dialling_party(name_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a party that dials the server (``secagg client``, ``secagg
    keyholder``): ``--server``, ``--server-name``, ``--name`` (``name_help``) and
    ``--certs``, in that order. One definition, so the two commands cannot drift apart
    (each had its own copy of every line)."""
    options = [
        click.option(
            "--server",
            "target",
            required=True,
            callback=_server_address,
            help="HOST:PORT of the federation server.",
        ),
        click.option(
            "--server-name",
            default=None,
            callback=_server_name,
            help="The name to check on the server's certificate, when it is not the host of "
            "--server: a host name or an IP address (e.g. --server 10.0.0.5:50051 "
            "--server-name fl.bank.internal, or --server-name fd00::5).",
        ),
        click.option("--name", required=True, callback=_party_name, help=name_help),
        click.option(
            "--certs",
            "certificates",
            type=NonEmptyPath(file_okay=False),
            default="certs",
            show_default=True,
            help="The CA directory (clients/NAME.pem) or this party's bundle (ca.pem, "
            "NAME.pem, NAME.key).",
        ),
    ]

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _redialling(command: Callable[..., Any]) -> Callable[..., Any]:
    """The redialling options of a party without a federation config (``secagg
    client``): :func:`_redialling_options`, their defaults the built-in ones."""
    return _redialling_options(command, config_flag=None)


def _redialling_with_config(command: Callable[..., Any]) -> Callable[..., Any]:
    """The redialling options of a party that may read the federation's config with
    ``--config`` (``secagg keyholder``): the message limits' defaults are then the
    config's (:func:`_redialling_options`)."""
    return _redialling_options(command, config_flag="--config")


def _redialling_options(
    command: Callable[..., Any], *, config_flag: str | None
) -> Callable[..., Any]:
    """``--connect-timeout``, ``--give-up-after``, ``--max-message-bytes`` and
    ``--message-receive-timeout``, the same for every party that dials the server
    (``secagg keyholder`` lacked the first while ``secagg client`` had it: one
    definition keeps them alike).

    Why ``--max-message-bytes``: a branch and the key holder took every message up to
    256 MiB whatever the server's ``[server] max_message_bytes`` said, so a federation
    that raised the server's limit for a larger model (a round start is 4 bytes a
    parameter: past about 67 million parameters) or for CKKS uploads saw every branch
    refuse every round start, and no flag could change it (runtime review,
    2026-12-06).

    Why ``--message-receive-timeout``: a message from the server must be whole within
    this many seconds of its first chunk, else the session ends and the party redials.
    The server and ``secagg keyholder --config`` took it from ``[server]
    message_receive_timeout``, but a branch always used 3600 s: one on a link too slow
    for a large round start within an hour (256 MiB at under 75 KB/s) could never take
    part, and nothing could shorten the hold on a trickled message either (2026-12-06).
    Its bounds are the config key's: above 0, finite, at most a week.

    ``config_flag``: the party's flag that reads those keys from the federation's config,
    named in the two defaults; None for a party that has none. Why: ``secagg client
    --help`` said "Default: ..., or with secagg keyholder --config the config's", another
    command's flag, which a branch operator read as a way to set it (help review,
    2026-12-06)."""
    from_config = "" if config_flag is None else f", or with {config_flag} the config's"
    command = click.option(
        "--message-receive-timeout",
        type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True),
        default=None,
        help="Seconds a message from the server may take to be whole from its first "
        "chunk (at most a week, 604800); set it to the server's [server] "
        "message_receive_timeout when that is raised for a slow link. Default: "
        f"{DEFAULT_MESSAGE_RECEIVE_SECONDS:g}{from_config}.",
    )(command)
    command = click.option(
        "--max-message-bytes",
        type=click.IntRange(MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES),
        default=None,
        help="The largest message taken from the server, in bytes; set it to the "
        "server's [server] max_message_bytes when that is raised for a large model. "
        f"Default: {DEFAULT_MESSAGE_BYTES} (256 MiB){from_config}.",
    )(command)
    command = click.option(
        "--give-up-after",
        type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True, allow_inf=True),
        default=600.0,
        show_default=True,
        help="Seconds to keep redialling after a lost connection (a server restart, a "
        "network cut), counted from the loss, at most a week (604800); 'inf': until the "
        "server announces the federation's end.",
    )(command)
    return click.option(
        "--connect-timeout",
        type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True),
        default=30.0,
        show_default=True,
        help="Seconds to open the first session (at most a week, 604800).",
    )(command)


def _handshake_failure(target: str, cert: Any, exc: BaseException) -> str:
    """A TLS alert from the server is its verdict on this party's certificate, said in
    the transport's words (:func:`~secagg.transport.grpc_dial.certificate_failure_cause`:
    an unknown CA, an expired certificate) where it knows the alert; anything else (not
    TLS at all, no common version) is named as it is.

    Why the transport's words: an expired branch certificate read "was NAME.pem issued
    by the federation's CA?", sending the operator to the wrong file's issuer, while
    the transport's own dial said "refused ... as expired" (transport review,
    2026-12-06)."""
    from secagg.transport.grpc_dial import certificate_failure_cause

    reason = getattr(exc, "reason", None)
    said = str(reason).replace("_", " ").lower() if reason else str(exc)
    if "alert" in said:
        cause = certificate_failure_cause(str(reason))
        if cause is not None:
            return (
                f"TLS handshake with {target} failed: {cause} ({said}; this party's "
                f"certificate: {cert})"
            )
        return (
            f"TLS handshake with {target} failed: the server refused this party's "
            f"certificate ({said}); was {cert} issued by the federation's CA?"
        )
    return f"TLS handshake with {target} failed ({said}): is {target} a secagg server?"
