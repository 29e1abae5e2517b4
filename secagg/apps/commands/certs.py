"""``secagg certs init``, ``issue`` and ``revoke``: the development CA
(:mod:`secagg.apps.devca`) behind one-line errors naming ``--dir``.
"""

from __future__ import annotations

from pathlib import Path

import click

from secagg.apps import devca
from secagg.apps.cli_types import NonEmptyPath, refuse_special_files
from secagg.apps.commands.common import (
    _path_failure,
    machine_failure,
    os_error_status,
    shown_path,
)
from secagg.errors import ConfigurationError
from secagg.transport.certs import MissingCertificate, load_ca_certificate

#: ``--dir`` of every ``certs`` subcommand: one spelling, so the three cannot drift apart.
_ca_folder_option = click.option(
    "--dir",
    "directory",
    default="certs",
    show_default=True,
    type=NonEmptyPath(),
    help="The CA's folder (ca.pem, its key, server and clients/ certificates).",
)


@click.group()
def certs() -> None:
    """A development CA: server and per-branch certificates for mTLS."""


def _server_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Every ``--server-name`` a certificate can carry, or click's one line naming the
    flag, before anything is written.

    Why: ``certs init --server-name ''`` (an unset ``$HOST`` in a script) or ``'a b'``
    said ``Error: server name '' is neither an IP address nor a host``, a line that
    named no flag (hostile CLI review, 2026-12-06)."""
    if names:
        try:
            devca.server_names_carried(names)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc)) from None
    return names


def _no_ca(exc: MissingCertificate, directory: str, *, may_init: bool) -> click.BadParameter:
    """``--dir``'s one line for a CA file that is not there, naming where a relative
    ``--dir`` was read from and, where no CA is there at all, the way out.

    Why: a newcomer who ran ``certs issue`` from another folder than the guide's
    ``certs init`` read only ``CA certificate not found at certs/ca.pem`` (walk-through,
    2026-12-07): nothing said the folder was the current one, nor that a CA is made by
    ``certs init``. ``init`` is named for ``issue`` only, and only beside "or pass the
    CA's folder": a second CA in the wrong folder issues certificates no server of the
    first one accepts, and a revocation is never a new CA's."""
    message = str(exc)
    ca_file = devca.CaLayout(Path(directory)).ca_cert
    if message != f"CA certificate not found at {ca_file}":
        return click.BadParameter(message, param_hint="--dir")  # a file in the way: its own words
    where = ""
    if not Path(directory).is_absolute():
        try:
            where = f" (read from the current folder {Path.cwd()})"
        except OSError:  # the current folder removed under the command
            where = " (read from the current folder)"
    way_out = "pass --dir the folder that holds the CA's ca.pem"
    if may_init:
        way_out += f", or make a CA there with 'secagg certs init --dir {shown_path(directory)}'"
    return click.BadParameter(f"{message}{where}: {way_out}", param_hint="--dir")


@certs.command("init")
@_ca_folder_option
@click.option(
    "--server-name",
    "server_names",
    multiple=True,
    callback=lambda ctx, param, value: _server_names(value),
    help="Host name or IP clients dial (repeatable; default localhost and 127.0.0.1).",
)
@click.option("--force", is_flag=True, help="Replace an existing CA (old certificates die).")
def certs_init(directory: str, server_names: tuple[str, ...], force: bool) -> None:
    """Create the CA, the server certificate and an empty revocation list.

    The last folder of --dir is made; a missing parent is refused (exit 2)."""
    names = server_names or ("localhost", "127.0.0.1")
    parent = Path(directory).parent
    if not parent.exists():
        # a mistyped --dir grew a new tree holding the CA's private key, silently
        # (newcomer walk, 2026-12-06); as the server's [server] state folder, the
        # operator makes the parents. A parent that is a file: the OSError below
        raise click.BadParameter(
            f"the folder {shown_path(str(parent))} does not exist (certs init makes only the "
            f"last folder of {shown_path(directory)}): create it first, or check the path",
            param_hint="--dir",
        )
    try:
        made = devca.init_ca(directory, server_names=names, force=force)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # a --dir that is a file, a folder that cannot be written, a full disk
        raise _path_failure(exc, "--dir") from exc
    # the folder shown as the error lines show it: an escape in its name reached the
    # terminal, a line break split the line (tests/apps/test_keyholder_init_written_line.py)
    click.echo(f"CA in {shown_path(directory)} (fingerprint {made.ca_fingerprint[:16]}...)")
    carried = devca.server_names_carried(names)  # once each, as gRPC spells an address
    certificate = shown_path(str(made.server.certificate))
    click.echo(f"server certificate for {', '.join(carried)}: {certificate}")


@certs.command("issue")
@click.argument("name")
@_ca_folder_option
@click.option("--force", is_flag=True, help="Re-issue an existing or revoked name.")
def certs_issue(name: str, directory: str, force: bool) -> None:
    """Issue the certificate and key of branch NAME."""
    _refuse_special_ca_files(directory, name)
    try:
        issued = devca.issue_client(directory, name, force=force)
    except MissingCertificate as exc:  # the CA's files, not there or behind a file
        raise _no_ca(exc, directory, may_init=True) from exc
    except ConfigurationError as exc:
        raise _ca_file_failure(exc) from exc
    except OSError as exc:  # a --dir that is a file, a folder that cannot be written, a full disk
        raise _path_failure(exc, "--dir") from exc
    # the key holder's certificate is issued here too: "the branch" misnamed its party
    click.echo(
        f"{name}: {issued.certificate} and {issued.key} (key: it goes to {name}'s machine only)"
    )
    click.echo(f"fingerprint {issued.fingerprint}")


@certs.command("revoke")
@click.argument("name")
@_ca_folder_option
@click.option(
    "--force",
    is_flag=True,
    help=(
        "Bar NAME even without a certificate here (one deleted here but still out "
        "there), or with one that does not read (its name alone is barred)."
    ),
)
def certs_revoke(name: str, directory: str, force: bool) -> None:
    """Bar branch NAME (and its current certificate) from the federation.

    A NAME with no certificate in the directory is refused (exit 2), so a typo does not
    pass for a revocation; --force records it anyway."""
    _refuse_special_ca_files(directory, name)
    try:
        # read here first so that a folder without a CA is refused in issue's words,
        # naming --dir: revoke's own "no CA in D" named the folder but not the flag
        load_ca_certificate(devca.CaLayout(Path(directory)).ca_cert)
        devca.revoke(directory, name, force=force)
    except MissingCertificate as exc:  # the CA's files, not there or behind a file
        raise _no_ca(exc, directory, may_init=False) from exc
    except devca.UnbarrableCertificate as exc:  # the machine's (1), or the file's (2)
        failure = _ca_file_failure(exc)
        if failure.exit_code == 1:
            raise failure from exc
        # a file in --dir that is no certificate: the one rule names the flag
        raise click.BadParameter(str(exc), param_hint="--dir") from exc
    except ConfigurationError as exc:
        raise _ca_file_failure(exc) from exc
    except OSError as exc:  # a --dir that is a file, a folder that cannot be written, a full disk
        raise _path_failure(exc, "--dir") from exc
    # the server re-reads the list at each connection, before each round's sampling and
    # every 30 s for the open sessions (docs/deployment.md): an open session ends too
    click.echo(
        f"{name} revoked; the server refuses it from its next connection and ends its "
        "open session within 30 s"
    )


def _refuse_special_ca_files(directory: str, name: str) -> None:
    """Refuse a named pipe (a device, a socket) where ``issue`` or ``revoke`` reads a file
    of the CA folder (``ca.pem``, ``ca.key``, ``revoked.json``, ``clients/NAME.pem``), in
    one usage line naming ``--dir``. A named pipe there blocked the read forever (hostile
    CLI review, 2026-12-06)."""
    layout = devca.CaLayout(Path(directory))
    try:
        own = [layout.client_cert(name), layout.client_key(name)]
    except ConfigurationError:  # a name no certificate can carry: devca names it
        own = []
    refuse_special_files(
        [layout.ca_cert, layout.ca_key, layout.revocations, *own], "a CA folder's file", "--dir"
    )


def _ca_file_failure(exc: ConfigurationError) -> click.ClickException:
    """A refusal of ``issue`` or ``revoke`` as click's one line, its status by the one
    rule (:func:`~secagg.apps.commands.common.os_error_status`): a CA file the machine
    will not read (``ca.key`` without permission, an I/O error: the OSError the
    certificate store's error was raised from) is exit 1 naming ``--dir``; anything else
    (a name refused, a certificate that exists) is the usage error, exit 2.

    Why: ``certs issue b2 --dir D`` with a ``ca.key`` it may not read said ``Error: CA
    key at D/ca.key cannot be read: permission denied`` with exit 2, "a mistake in the
    options", naming no flag (path-failure review, 2026-12-07). The OSError is looked
    for along the chain of causes: ``issue --force`` over an old certificate it may not
    read refuses in words of its own (it cannot bar it), raised from the store's."""
    cause, seen = exc.__cause__, set()
    while cause is not None and not isinstance(cause, OSError) and id(cause) not in seen:
        seen.add(id(cause))  # a refusal raised from a refusal; a cycle ends the walk
        cause = cause.__cause__
    if os_error_status(cause) == 1:
        return machine_failure("--dir", str(exc))
    return click.UsageError(str(exc))
