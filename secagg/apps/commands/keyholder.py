"""``secagg keyholder-init`` and ``secagg keyholder``: a CKKS federation's key holder,
which holds the secret key and decrypts (and noises) sums only by its own policy.
"""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING, Any

import click

from secagg.apps.cli_types import FiniteFloat, NonEmptyPath, RegularFilePath
from secagg.apps.commands.common import (
    _fail,
    _one_line,
    _one_line_naming,
    _os_error,
    _party_environment_failure,
    _path_read_failure,
    folded_naming,
    in_file,
    os_error_status,
    shown_path,
)
from secagg.apps.commands.dialling import (
    _certs_error,
    _connection_failure,
    _dialling_party,
    _redialling_with_config,
    _refuse_special_certificates,
)
from secagg.apps.commands.parties import (
    _config_failure,
    _one_verbosity,
    _read_table,
    _setup_logging,
    _sigterm_as_interrupt,
    _stop_said_while_starting,
    _stopped,
    _verbosity,
    _verdict_said_here,
)
from secagg.errors import ConfigurationError, SecAggError
from secagg.transport.base import MAX_WAIT_SECONDS

if TYPE_CHECKING:
    from secagg.runtime.config import FederationConfig


def _key_holder_settings(path: str | None, key: str | None) -> tuple[dict[str, Any], Any]:
    """The ``[key_holder]`` table of ``path`` (paths in it relative to its folder) and
    the folder; ``--key`` overrides its ``key``."""
    from pathlib import Path

    from secagg.aggregation.keyholder_policy import POLICY_KEYS

    # its policy's keys and the key file (which --key overrides)
    known = (*POLICY_KEYS, "key")
    section: dict[str, Any] = {}
    if path is not None:
        try:
            section = _read_table(path, "key_holder", known)
        except ConfigurationError as exc:  # not TOML, empty, another table: the file's
            raise ConfigurationError(in_file("--policy", path, str(exc))) from None
        _refuse_blank_paths(section, path, typed_key=key is not None)
    base = Path(path).resolve().parent if path is not None else None
    if key is not None:
        section["key"] = str(Path(key).resolve())
    return section, base


#: the ``[key_holder]`` keys that name a file, and what each file is
_POLICY_PATHS = (
    ("key", "the key holder's secret key file"),
    ("state", "the key holder's state file (its count of decryptions)"),
)


def _refuse_blank_paths(section: dict[str, Any], path: str, *, typed_key: bool) -> None:
    """Refuse a ``key`` or ``state`` of the policy file ``path`` that is empty or blank
    (only spaces, tabs, line breaks), as the line naming the key and the file
    (:func:`in_file`): ``--policy F: [key_holder] key is blank: it must name ...``.

    Why: ``key = "  "`` without ``--config`` was said only as "needs --config", and with
    ``--config`` as "cannot read the key file D/  : No such file or directory", naming
    neither the key nor the file; ``state = "  "`` was taken, the key holder's count of
    decryptions then kept in a file called "  " beside the policy (helper brief 323,
    tests/apps/test_keyholder_policy_blank_path.py). A blank name is never the one meant
    (an unset variable in a generated file), as ``[server] state`` says of its own.
    A ``key`` that ``--key`` overrides (``typed_key``) is not read, so not refused."""
    for key, what in _POLICY_PATHS:
        value = None if key == "key" and typed_key else section.get(key)
        if isinstance(value, str) and not value.strip():
            how = "empty" if value == "" else "blank"
            message = f"[key_holder] {key} is {how}: it must name {what}"
            raise ConfigurationError(in_file("--policy", path, message))


def _refuse_special_policy_files(
    settings: dict[str, Any], base: Any, key_typed: bool, policy_path: str | None = None
) -> None:
    """Refuse a named pipe (a device, a socket) at the ``key`` or ``state`` the key
    holder's settings name, in one line naming where the path came from
    (:class:`ConfigurationError`), before the key holder reads either.

    Why: ``--policy`` naming ``state = "x.fifo"`` or ``key = "x.fifo"`` blocked the key
    holder forever at its open (hostile CLI review, 2026-12-06); ``--key`` itself is
    checked by its type. A path the policy cannot give (not a string) is left to the
    policy's own message."""
    from secagg.aggregation.keyholder_policy import config_path
    from secagg.runtime.config import refuse_special_file

    for key, what in (("key", "a key file"), ("state", "a key holder state file")):
        if key not in settings:
            continue
        given = (
            "--key"
            if key == "key" and key_typed
            else f"[key_holder] {key} {_policy_flag(policy_path)}"
        )
        try:
            path = config_path(key, settings[key], base)
        except ConfigurationError:
            continue
        try:
            refuse_special_file(path, what)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{given}: {exc}") from None


def _policy_flag(path: str | None) -> str:
    """``(--policy F)``: where a key of the policy file was read, the file named."""
    return "(--policy)" if path is None else f"(--policy {shown_path(path)})"


def _naming_typed_key(
    exc: BaseException, name: str, policy_path: str | None, key_path: str | None
) -> str:
    """A refusal of the key holder's start as one line (:func:`_one_line_naming`), the
    ``--key`` file named as it was typed: the command hands the key holder the typed
    key resolved (so that a ``--policy`` elsewhere, whose own paths are read against its
    folder, does not move it), and the reader's refusal names that absolute path.

    Why: ``--key d/holder.key`` typed in ``/srv/kh`` said ``/srv/kh/d/holder.key is not
    a secagg key holder's key file``: a path never typed, and no flag named (helper brief
    325, tests/apps/test_keyholder_key_typed_form.py). A line that begins with the key
    names its flag: ``--key d/holder.key is not ...``."""
    if key_path is None:
        return _one_line_naming(exc, name, policy_path)
    from pathlib import Path

    # the key holder's own ``name: `` off the front first, while the key in the text is
    # still absolute: a key typed as the party's name (``--name holder --key holder``)
    # put back first was taken for that prefix, and the line lost the key and its flag
    # (``holder: not a TenSEAL context: ...``: tests/apps/test_keyholder_key_named_as_party.py)
    text = str(exc).lstrip()
    text = text[len(name) + 2 :] if name and text.startswith(f"{name}: ") else text
    # the resolved key where it stands apart, not the start of a longer path: replaced
    # anywhere, ``--key holder`` beside ``--policy /srv/kh/holder.toml`` named the
    # policy ``holder.toml``, a path never typed
    # (tests/apps/test_keyholder_key_prefix_of_policy.py)
    resolved = re.escape(str(Path(key_path).resolve()))
    message = re.sub(rf"(?<![\w./\\-]){resolved}(?![\w/\\-])(?!\.\w)", lambda _: key_path, text)
    paths = (key_path, policy_path) if policy_path is not None else (key_path,)
    message = folded_naming(message, *paths) or type(exc).__name__
    shown = shown_path(key_path)
    if message.startswith((f"{shown} ", f"{shown}:")):
        return f"--key {message}"
    return message


def _policy_mistake(message: str, policy_path: str | None, key_typed: bool) -> str:
    """A refusal of the key holder's settings with its ``--policy`` file named, when the
    mistake is the file's: a ``[key_holder]`` key's value or type, an unknown key (with
    its likely spelling). ``--policy F: [key_holder] noise_stddev: must be >= 0``.

    Why: ``[key_holder] noise_stddev: must be >= 0, got -1.0`` named the key but not the
    file, where ``secagg server --config F`` names its file (as ``secagg simulate
    --config``, newcomer walk-through, 2026-12-07). A line that names its source already
    (``(--policy F)``, ``--key``) and any other refusal (the federation's config, the
    key file ``--key`` gave) are left as they are."""
    if policy_path is None or _policy_flag(policy_path) in message:
        return message
    ours = message.startswith("[key_holder] ") or re.match(
        r"unknown keys? .* in \[key_holder\]", message
    )
    if not ours or (key_typed and message.startswith("[key_holder] key")):
        return message
    return in_file("--policy", policy_path, message)


def _key_holders_federation(config_path: str, name: str) -> FederationConfig:
    """The federation ``--config`` describes, checked before anything is dialled: it
    must have a key holder, and ``--name`` must be it.

    Why: a config without a key holder (a masking backend) said ``the secagg+ backend
    has no helper to configure``, naming neither the flag nor the cause; and a
    ``--name`` other than the config's ``[backend] key_holder`` dialled for the whole
    first dial's 30 s (four log lines) before exit 1, although the server
    admits no other name as its key holder (front-door audit, 2026-12-05)."""
    from secagg.runtime.config import FederationConfig

    party = "secagg keyholder"
    try:
        config = FederationConfig.load(config_path)
    except ConfigurationError as exc:
        _fail(party, _config_failure(config_path, exc), 2)
    except OSError as exc:  # no permission, an I/O error: the machine's (exit 1)
        _path_read_failure(party, "--config", config_path, exc)
    holder = config.backend.key_holder
    if holder is None:
        _fail(
            party,
            f"--config {shown_path(config_path)}: the {config.backend.name} backend has no "
            "key holder",
            2,
        )
    if holder != name:
        _fail(
            party,
            f"--name {name} is not this federation's key holder: --config "
            f"{shown_path(config_path)} names {holder!r} ([backend] key_holder), the only "
            "name its server admits as one",
            2,
        )
    return config


def _check_backend_agrees(
    config_path: str | None, config: FederationConfig | None, backend: str
) -> None:
    """Refuse a typed ``--backend`` other than ``--config``'s ``[backend] name`` (exit 2).

    Why: with ``--config`` the config's backend is the one served and ``--backend`` was
    ignored without a word, so ``--backend secagg+ --config ckks.toml`` ran a CKKS key
    holder while the command line said otherwise (hostile CLI review, 2026-12-06). The
    same name typed again, or the default, is no contradiction."""
    if config is None or config_path is None:
        return
    context = click.get_current_context()
    typed = context.get_parameter_source("backend") is click.core.ParameterSource.COMMANDLINE
    if typed and backend != config.backend.name:
        _fail(
            "secagg keyholder",
            f"--backend {backend} disagrees with --config {shown_path(config_path)}, whose "
            f"[backend] name = {config.backend.name!r} is the one served: leave --backend out",
            2,
        )


def _held_backend(name: str) -> str:
    """``--backend``: a backend that has a key holder, or click's one line naming the flag.

    Why: ``--backend CKKS`` said ``secagg keyholder: kh: unknown backend 'CKKS'; choose
    one of ('plain', 'secagg', 'secagg+', 'ckks')`` and ``--backend secagg+`` ``the
    secagg+ backend has no key holder``, lines that named no flag and, for the first,
    offered three backends no key holder serves (hostile CLI review, 2026-12-06)."""
    from secagg.aggregation import BACKENDS, needs_helper

    held = [backend for backend in BACKENDS if needs_helper(backend)]
    if name not in BACKENDS:
        raise click.BadParameter(f"{name!r} is no backend; a key holder serves {', '.join(held)}")
    if name not in held:
        raise click.BadParameter(
            f"the {name} backend has no key holder (a key holder serves {', '.join(held)})"
        )
    return name


@click.command("keyholder-init")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=NonEmptyPath(exists=True),
    help="The federation's TOML config: the key is made for its [backend] parameters.",
)
@click.option(
    "--key",
    "key_path",
    required=True,
    type=NonEmptyPath(),
    help="Where to write the key file (a new file: an existing one is refused, since a new "
    "key would orphan every branch's pin).",
)
def keyholder_init(config_path: str, key_path: str) -> None:
    """Make the key holder's key for a federation and print the fingerprint branches pin."""
    from pathlib import Path

    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import make_key_holder_key

    # each mistake is one line with the command's prefix, as the other commands print
    # theirs (it was click's "Error: --key: ..."), naming the flag; exit status 2
    party = "secagg keyholder-init"
    if Path(key_path).is_dir():  # "exists; a new key would orphan every pin" misled
        _fail(party, f"--key {shown_path(key_path)} is a folder: give the key file's path in it", 2)
    if Path(key_path).exists():
        _fail(party, f"--key {shown_path(key_path)} exists; a new key would orphan every pin", 2)
    folder = Path(key_path).parent
    if not folder.is_dir():  # it said "No such file or directory: DIR/.KEY.x1y2z3.tmp",
        # the name of a temporary file the user never typed (review, 2026-12-06)
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        _fail(
            party, f"--key {shown_path(key_path)}: the folder {shown_path(str(folder))} {what}", 2
        )
    try:
        config = FederationConfig.load(config_path)
    except ConfigurationError as exc:
        _fail(party, _config_failure(config_path, exc), 2)
    except OSError as exc:  # no permission, an I/O error: the machine's (exit 1)
        _path_read_failure(party, "--config", config_path, exc)
    try:
        fingerprint = make_key_holder_key(config, key_path)
    except OSError as exc:  # a path that names no file (2); no permission, a full disk (1)
        _fail(party, f"--key {shown_path(key_path)}: {_os_error(exc)}", os_error_status(exc))
    except ConfigurationError as exc:
        _fail(party, _config_failure(config_path, exc), 2)
    # shown as the error lines show it: an escape in the name reached the terminal, a
    # line break split the line (tests/apps/test_keyholder_init_written_line.py)
    written = shown_path(key_path)
    click.echo(f"key written to {written} (mode 0600: the secret key; keep it here only)")
    click.echo(f"fingerprint {fingerprint.hex()}")
    click.echo("every branch pins it: key_holder_fingerprint in [branch], or")
    click.echo(f"  secagg client ... --key-holder-fingerprint {fingerprint.hex()}")


@click.command()
@_dialling_party("The key holder's name (its certificate's).")
@click.option(
    "--idle",
    type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True, allow_inf=True),
    default=None,
    help="Stop after this many seconds of silence, at most a week (604800). Default: with "
    "--config, the longest silence of that server towards its key holder "
    "(quorum_wait_seconds + round_seconds + 30 s, plus 5 s a branch under record-level "
    "DP-SGD for the server's replays of their reports); without, 600. The server says nothing "
    "to its key holder before round 1: keep it above the server's --wait when that is "
    "longer; 'inf': never.",
)
@_redialling_with_config
@click.option(
    "--config",
    "config_path",
    type=NonEmptyPath(exists=True),
    default=None,
    help="The federation's config (its backend's parameters); needed with --key.",
)
@click.option(
    "--policy",
    "policy_path",
    type=NonEmptyPath(exists=True, dir_okay=False),
    default=None,
    help="A TOML file whose [key_holder] table is this key holder's own policy "
    "(noise_stddev, min_contributions, max_decryptions, dimension, federation, state, "
    "key, max_clients, max_value_bound, min_precision); max_decryptions is required when "
    "noise_stddev is set. Without --config, max_clients, max_value_bound and min_precision "
    "default to 1000, 1.0 and 1e-6 (1e-6 x max_value_bound when that is below 1).",
)
@click.option(
    "--key",
    "key_path",
    # "" read the current folder ("cannot read the key file /home/op: Is a directory");
    # a named pipe blocked its read forever
    type=RegularFilePath(exists=True, dir_okay=False, what="a key file"),
    default=None,
    help="The key file keyholder-init wrote.",
)
@click.option(
    "--backend",
    default="ckks",
    show_default=True,
    callback=lambda ctx, param, value: _held_backend(value),
    help="Without --config: the backend whose key this party holds (a key made per run, "
    "which branches cannot pin). With --config, the config's [backend] name (another one "
    "typed is refused).",
)
@_verbosity
@_stop_said_while_starting("name")
def keyholder(
    target: str,
    server_name: str | None,
    name: str,
    certificates: str,
    idle: float | None,
    connect_timeout: float,
    give_up_after: float,
    max_message_bytes: int | None,
    message_receive_timeout: float | None,
    config_path: str | None,
    policy_path: str | None,
    key_path: str | None,
    backend: str,
    verbose: bool,
    quiet: bool,
) -> None:
    """Hold a CKKS federation's secret key: decrypt (and noise) sums only, by its own policy.

    Exit status: 0 when the server announced that the federation finished; 1, with one
    line naming the cause, when the federation was stopped before it finished, the
    server fell silent for --idle without announcing an end, the server cannot be
    reached or refuses this party, or the key holder gave up redialling, or the machine
    refuses a file it reads (its --certs files, its record: no permission, an I/O
    error, a full disk); 2 for a mistake in its options or files."""
    import math

    from secagg.aggregation.keyholder_policy import DecryptionRecordUnwritable
    from secagg.runtime.launch import run_key_holder
    from secagg.transport.base import TransportError
    from secagg.transport.certs import CertificateStoreError

    _one_verbosity("secagg keyholder", verbose, quiet)
    _refuse_special_certificates(certificates, name)
    _setup_logging(verbose, quiet)
    config = _key_holders_federation(config_path, name) if config_path is not None else None
    _check_backend_agrees(config_path, config, backend)
    try:
        try:
            settings, base = _key_holder_settings(policy_path, key_path)
        except OSError as exc:  # its --policy file: no permission, an I/O error
            _path_read_failure("secagg keyholder", f"{name}: --policy", str(policy_path), exc)
        _refuse_special_policy_files(settings, base, key_path is not None, policy_path)
        if "key" in settings and config_path is None:
            # named as given: a key from the policy file was reported as "--key"
            given = (
                "--key" if key_path is not None else f"[key_holder] key {_policy_flag(policy_path)}"
            )
            raise ConfigurationError(
                f"{given} needs --config: a key is used only once it matches the key "
                "holder pinned in the federation's config"
            )
        with _sigterm_as_interrupt(), _verdict_said_here(verbose):
            ended = run_key_holder(
                target,
                name,
                certificates,
                backend=backend,
                config=config,
                settings=settings,
                base_dir=base,
                idle_timeout=idle,
                # as for secagg client: the key holder had no way to dial a server that
                # takes longer than 30 s to come up, nor to fail fast (review, 2026-12-05)
                connect_timeout=connect_timeout,
                give_up_after=None if math.isinf(give_up_after) else give_up_after,
                name_override=server_name,
                max_message_bytes=max_message_bytes,
                message_receive_timeout=message_receive_timeout,
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (_Terminated)
        _stopped(
            f"secagg keyholder: {name}",
            exc,
            "its count of decryptions is kept in its state file; a CKKS round in flight "
            "aborts, and the server waits for the key holder before the next one",
        )
    except CertificateStoreError as exc:  # missing, unreadable, a file for a folder
        raise _certs_error(exc, name) from None
    except DecryptionRecordUnwritable as exc:  # its record: the machine's refusal, or the path's
        _fail("secagg keyholder", f"{name}: {_one_line(exc, name)}", os_error_status(exc.__cause__))
    except ConfigurationError as exc:  # a file's mistake (2); one the machine refused (1)
        said = _policy_mistake(
            _naming_typed_key(exc, name, policy_path, key_path), policy_path, key_path is not None
        )
        _fail("secagg keyholder", f"{name}: {said}", os_error_status(exc.__cause__))
    except TransportError as exc:
        _fail("secagg keyholder", f"{name}: {_connection_failure(exc, target, certificates, name)}")
    except sqlite3.Error as exc:  # a store under the key holder (a library's)
        _party_environment_failure("secagg keyholder", name, exc)
    except (SecAggError, OSError) as exc:  # a key file TenSEAL cannot read among them
        _fail("secagg keyholder", f"{name}: {_naming_typed_key(exc, name, None, key_path)}")
    summary = f"{name}: decrypted {ended.decryptions} sums"
    if ended.outcome == "stopped":  # the server announced an end before the last round
        reason = ended.reason or "no reason given"
        _fail("secagg keyholder", f"{summary}; the federation stopped before it finished: {reason}")
    if not ended.finished:  # silent past --idle: no end was announced
        _fail(
            "secagg keyholder",
            f"{summary}; {ended.reason}: giving up (the federation's end was not announced)",
        )
    click.echo(f"{summary}; the federation finished")
