"""``secagg audit verify | report | empirical``."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from secagg.apps.cli_types import FiniteFloat, NonEmptyPath, RegularFilePath, check_memory
from secagg.apps.commands.common import (
    MAX_FEDERATION_ROUNDS,
    _environment_cause,
    folded_naming,
    machine_failure,
    os_error_status,
    shown_path,
)
from secagg.apps.json_output import dumps
from secagg.apps.simulation.config import CAPS, MAX_EPSILON
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError, SecAggError

if TYPE_CHECKING:
    from secagg.apps.audit.empirical import EmpiricalAudit
    from secagg.ledger.verify import ExpectedPrivacy


@click.group()
def audit() -> None:
    """Check a privacy ledger, report it, or estimate epsilon empirically."""


#: the largest --pubkey file read: a PEM Ed25519 public key is 113 bytes; past this
#: the file is no public key (``/dev/zero``-sized files were read whole)
MAX_PUBKEY_BYTES = 64 * 1024


class _LedgerEitherWay(click.Command):
    """A command that takes its ledger as the argument LEDGER or as ``--ledger``
    (:func:`_ledger_parameters`): exactly one of them, merged into the ``ledger``
    parameter before the command runs; both, or neither, is one usage line (exit 2).

    Why: the other commands name their files by flags (``server --config``, ``client
    --state``, ``certs --dir``), and ``audit verify --ledger L`` said ``No such option
    '--ledger'. Did you mean '--prior-ledger'?``, the flag of another file altogether,
    which then ran without the ledger (tests/apps/test_audit_ledger_flag.py). The
    positional form the docs give keeps working."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        positional, flagged = ctx.params.get("ledger"), ctx.params.pop("ledger_flag", None)
        if ctx.resilient_parsing:
            return rest
        if positional is not None and flagged is not None:
            raise click.BadParameter(
                f"{flagged}: the ledger is given as LEDGER already ({positional}): give it "
                "once, as LEDGER or as --ledger, not both",
                ctx=ctx,
                param_hint="'--ledger'",
            )
        if positional is None and flagged is None:
            raise click.UsageError("Missing argument 'LEDGER' (or --ledger LEDGER).", ctx=ctx)
        ctx.params["ledger"] = positional if positional is not None else flagged
        return rest


def _ledger_parameters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ledger of ``verify`` and ``report``: the argument LEDGER, or ``--ledger``
    (:class:`_LedgerEitherWay` takes exactly one)."""
    command = click.option(
        "--ledger",
        "ledger_flag",
        metavar="LEDGER",
        type=RegularFilePath(dir_okay=False, what="a ledger"),
        help="The ledger file, as LEDGER gives it (either form; not both).",
    )(command)
    # metavar: click names an argument that is not required '[LEDGER]', and a ledger that
    # is no regular file read "Invalid value for '[LEDGER]'" once --ledger made it so
    # (tests/apps/test_cli_file_one_open.py); the usage line is the documented one
    return click.argument(
        "ledger",
        required=False,
        metavar="LEDGER",
        type=RegularFilePath(dir_okay=False, what="a ledger"),
    )(command)


class _JsonUsageErrors(click.Command):
    """An audit command whose ``--json`` holds for its usage errors too: one JSON object on
    stdout (``"exit_status": 2``, the message in ``"error"``), and the one usage line on
    stderr as every usage error has it, exit status 2.

    Why: ``verify --json`` printed its object for a usage error found once the command
    ran (no ledger at the path) but nothing for one click found first (``--first-round
    0``, an unreadable ``--pubkey`` or ``--config``), and ``empirical --json --rounds 0``
    nothing either: a script parsing stdout got an empty string, or a JSON object,
    depending on which check caught the mistake (hostile CLI review, 2026-12-06).
    ``json_error(message, params)`` builds the object from the message and the options
    parsed so far (none when parsing itself failed)."""

    def __init__(
        self, *args: Any, json_error: Callable[[str, dict[str, Any]], dict[str, Any]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.json_error = json_error

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        words = list(args)  # parsing eats args
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            if self._json_flag_among(words):
                self._echo(exc, {})
            raise

    def _json_flag_among(self, words: list[str]) -> bool:
        """Whether ``--json`` stands among ``words`` as the flag, read as click reads
        them: not after a ``--`` (every word there is an argument), and not as the value
        of an option that takes one (``--pubkey --json``: the key's path is "--json").

        Why: parsing failed, so the options are not known; every "--json" word counted,
        and ``verify --pubkey --json L`` printed a JSON object beside ``Invalid value for
        '--pubkey': no public key file at --json`` while ``verify --config --json L``,
        refused once the command ran (by then ``--json`` is known not to be given), printed
        the line alone: the same mistake, two outputs (review of the audit command's
        edges, 2026-12-06). Now JSON is printed exactly when click took ``--json`` as the
        flag, whichever check finds the error."""
        flag = next(p for p in self.params if p.name == "as_json")
        values = {
            name: option.nargs
            for option in self.params
            if isinstance(option, click.Option) and not option.is_flag and not option.count
            for name in option.opts
        }
        index = 0
        while index < len(words) and words[index] != "--":
            if words[index] in flag.opts:
                return True
            index += 1 + values.get(words[index], 0)  # an option's value is no flag
        return False

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if ctx.params.get("as_json"):
                self._echo(exc, ctx.params)
            raise

    def _echo(self, exc: click.UsageError, params: dict[str, Any]) -> None:
        click.echo(dumps(self.json_error(exc.format_message(), params)))


class _JsonLedgerCommand(_JsonUsageErrors, _LedgerEitherWay):
    """``verify``: its usage errors in JSON too (:class:`_JsonUsageErrors`), its ledger
    either way (:class:`_LedgerEitherWay`)."""


def _pubkey_option(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    """--pubkey's key, read before the ledger: a missing, garbled or special file is one
    usage line naming the flag. Why: a missing key printed ``cannot read the public key
    K: [Errno 2] No such file or directory: 'K'`` with no flag (CLI audit, 2026-12-05).

    The file is read ONCE (:func:`~secagg.runtime.config.read_regular_file`: one
    non-blocking open, its kind and size from that descriptor) and the key is parsed
    from those bytes; the command verifies with them. Why: it was read here, then read
    again by path for the verification, and a named pipe given as --pubkey (or swapped
    in between) blocked ``open()`` forever (hostile CLI review, 2026-12-06)."""
    from secagg.crypto.signing import VerifyKey
    from secagg.runtime.config import read_regular_file

    del ctx, param
    if value is None:
        return None
    try:
        data = read_regular_file(value, MAX_PUBKEY_BYTES, "a public key file")
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc)) from None
    except OSError as exc:  # a key it may not read (exit 1), gone since click saw it (2)
        if os_error_status(exc) == 1:
            raise machine_failure("--pubkey", _environment_cause(exc)) from None
        raise click.BadParameter(_environment_cause(exc), param_hint="'--pubkey'") from None
    try:
        return VerifyKey.from_pem(data).raw
    except ConfigurationError as exc:
        raise click.BadParameter(_not_the_public_key(value, data, exc)) from None


def _not_the_public_key(path: str, data: bytes, exc: ConfigurationError) -> str:
    """Why ``--pubkey`` was refused, said for an auditor: a private key or a certificate
    by what it is, with the file to ask for, and without the crypto library's FAQ link.

    Why: the server's ledger-key (beside the ``.pub`` it exports) or a TLS file read
    ``not a PEM public key: Valid PEM but no BEGIN PUBLIC KEY/END PUBLIC KEY delimiters.
    Are you sure this is a public key?``, and other files added ``See https://...
    for more details`` (front-door audit, 2026-12-05)."""
    wanted = (
        "pass the ledger's public key (<state>.ledger-key.pub beside a server's state, "
        "ledger.pub.pem in a simulation's run folder)"
    )
    if b"PRIVATE KEY-----" in data:
        return f"{shown_path(path)} is a private key, which stays with the operator: {wanted}"
    if b"-----BEGIN CERTIFICATE-----" in data:
        return f"{shown_path(path)} is a TLS certificate, not the ledger's key: {wanted}"
    reason = re.sub(r"\s*See https?://\S+ for more details\.", "", str(exc))
    return f"cannot read the public key {shown_path(path)}: {reason}"


def _verdict_line(verdict: str, ledger: str, message: str, joint: str = ": ") -> str:
    """A verdict on the ledger ``ledger`` as the one line ``verify`` and ``report`` print
    on stderr: ``FAILED: L: <why>``, ``NOT READ: L: <why>``, the ledger shown by
    :func:`shown_path` and the reason on one line (:func:`folded_naming`, which shows
    the ledger the same way wherever the reason names it).

    Why: the ledger was printed raw, so a ledger named ``$'a\\nb'`` split the verdict
    over two lines, and a script that greps ``^FAILED: `` for the file found a line
    without it; an escape in the name reached the terminal as it was
    (tests/apps/test_audit_verdict_one_line.py)."""
    return f"{verdict}: {shown_path(ledger)}{joint}{folded_naming(message, ledger)}"


def _reason(exc: OSError) -> str:
    """An OSError's reason without its errno number (the path is said by the caller)."""
    return exc.strerror or type(exc).__name__


def _out_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--out must be a folder we can write in, or one we can create: checked (by writing a
    probe file) before the ledger is read. Why: an unwritable --out ended a finished
    report in ``[Errno 1] Operation not permitted`` (CLI audit, 2026-12-05); root may
    write where the mode bits say no, and no one where the filesystem says so, so the
    mode is not asked, a file is written. A folder the machine refuses (no permission, a
    read-only filesystem, a full disk) is exit 1 naming --out, a path that is the mistake
    exit 2 (:func:`~secagg.apps.commands.common.os_error_status`)."""
    import tempfile

    folder = Path(value)
    while not folder.exists() and folder != folder.parent:  # the folder it would be made in
        folder = folder.parent
    if not folder.is_dir():
        raise click.BadParameter(f"{shown_path(str(folder))} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".secagg-probe-"):
            pass
    except OSError as exc:  # no permission, read-only, full: the machine's (exit 1)
        if os_error_status(exc) == 1:
            raise machine_failure(
                "--out", f"cannot write in {shown_path(str(folder))}: {_reason(exc)}"
            ) from None
        raise click.BadParameter(
            f"cannot write in {shown_path(str(folder))}: {_reason(exc)}"
        ) from None
    return value


def _expected(config: str | None) -> ExpectedPrivacy | None:
    """The federation config's DP promises as plain values for the verifier (the ledger
    layer never imports the runtime); an unreadable or invalid config is a usage error."""
    from secagg.ledger.verify import ExpectedPrivacy
    from secagg.runtime.config import FederationConfig

    if config is None:
        return None
    try:
        federation, cohort_seeded = FederationConfig.load_for_audit(config)
    except ConfigurationError as exc:
        # quoted, as click names every flag ("Invalid value for '--config'"): it read
        # "Invalid value for --config" beside "Invalid value for '--config'" for a folder
        raise click.BadParameter(_in_config(config, exc), param_hint="'--config'") from exc
    except OSError as exc:  # no permission, an I/O error: the machine's (exit 1)
        if os_error_status(exc) == 1:
            raise machine_failure("--config", _environment_cause(exc)) from None
        raise click.BadParameter(_environment_cause(exc), param_hint="'--config'") from None
    dp = federation.dp
    return ExpectedPrivacy(
        delta=None if dp is None else dp.delta,
        unit=None if dp is None else dp.unit,
        mechanism=None if dp is None else dp.mechanism,
        sampling_kind=federation.sampling.kind,
        sample_rate=federation.sample_rate,
        population=len(federation.clients),
        noise_multiplier=None if dp is None else dp.noise_multiplier,
        clip=None if dp is None else dp.clip,
        epsilon_budget=None if dp is None else dp.epsilon_budget,
        cohort_seeded=cohort_seeded,
        federation=federation.name,
        # distributed DP sizes every noise share from these: a row recording others
        # states another mechanism than the one the config ran
        **(
            {
                "dimension": federation.dimension,
                "bits": federation.backend.bits,
                "expected_clients": federation.expected_clients,
                "corrupt_fraction": federation.backend.corrupt_fraction,
            }
            if dp is not None and dp.mechanism == "distributed"
            else {}
        ),
    )


def _in_config(path: str, exc: ConfigurationError) -> str:
    """A federation config's refusal as one line that names the file once, after the
    flag click names: ``Invalid value for '--config': F: [federation] dimension must be
    an integer``; a message that names the file already (``F is not valid TOML``, ``no
    configuration file at F``) is left as it is.

    Why: only those two named it; a bad value, a misspelt key or section, a type error
    or an empty file said ``Invalid value for '--config': [federation] lacks name,
    clients, dimension``, and an auditor who checks a ledger against several
    federations' files could not tell which was wrong (as ``secagg simulate --config``,
    newcomer walk-through, 2026-12-07; the party commands say ``--config F: ...``)."""
    shown = shown_path(path)
    message = folded_naming(str(exc), path) or type(exc).__name__
    named = re.search(rf"(?<!\S){re.escape(shown)}(?=$|[\s:,])", message) is not None
    return message if named else f"{shown}: {message}"


def _usage_error(exc: ConfigurationError, *paths: str | None) -> click.UsageError:
    """The usage line of a mistake the ledger layer found once the command ran: one that
    knows its flag (:class:`~secagg.ledger.chain.OptionMistake`: an ``--expect-head`` of
    0 rows that is not the genesis, a ``--prior-ledger`` that is the ledger itself or no
    ledger) names it as click names every flag, ``Invalid value for '--flag': ...``;
    any other (no ledger at the path) is said as it is.

    Why: those lines named the flag in words of their own (``Error: --prior-ledger P is
    not a privacy ledger``, while a named pipe there read ``Invalid value for
    '--prior-ledger'``) or not at all (``Error: the head '0:aa..' counts 0 rows ...``).

    ``paths``, the files typed (the ledger, ``--prior-ledger``), are shown in the line
    by :func:`shown_path`: a ledger named ``$'a\\nb'`` that is not there printed ``no
    ledger at a`` and ``b`` on two lines (tests/apps/test_path_flag_one_line.py). The
    ledger layer names a file as :class:`~pathlib.Path` writes it, so that form is
    looked for too: ``--prior-ledger ./$'p\x1bq'`` printed ``p<ESC>q is not a privacy
    ledger``, the escape reaching the terminal (tests/apps/test_audit_verdict_typed_form.py)."""
    from secagg.ledger.chain import OptionMistake

    def shown(message: str) -> str:
        for path in sorted({p for p in paths if p}, key=len, reverse=True):
            forms = (path, str(Path(path)))
            if any(form in message and shown_path(form) != form for form in forms):
                message = folded_naming(message, path)
        return message

    if isinstance(exc, OptionMistake):
        return click.BadParameter(shown(exc.reason), param_hint=f"'{exc.option}'")
    return click.UsageError(shown(str(exc)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown_claim(epsilon: float | None, delta: float | None) -> str:
    """The verified epsilon as a person reads it: 3 decimals rounded *up*, and at its
    delta (6 significant digits, also rounded up: a smaller delta would flatter), as
    ``audit report``'s budget line prints it; ``--json`` keeps the exact figure.

    Why: the line printed the bare float (``4.011328190873``) without the delta it
    holds at, and an epsilon means nothing without its delta (review 2026-12-05)."""
    from secagg.dp.display import shown

    if epsilon is None:
        return "None"
    text = shown(epsilon, 3)
    if delta is not None:
        return f"{text} at delta {shown(delta, 6, significant=True)}"
    # a finite epsilon without its delta is no complete claim: it printed as if it were
    # (review 2026-12-05)
    return (
        text
        if math.isinf(epsilon)
        else f"{text} (its delta is not recorded: no DP block records one)"
    )


def _delta_missing_reason(epsilon: float | None, delta: float | None) -> str | None:
    """Why ``--json``'s ``"delta"`` is null, or None when it is not.

    Why: ``"delta": null`` read the same with no epsilon claimed and with an epsilon
    whose delta the last row does not record (review 2026-12-05): the second is an
    incomplete claim, the first no claim, and a script had to read ``"epsilon"`` to
    tell them apart."""
    if epsilon is None:
        return "no_epsilon_claimed"
    return "not_recorded" if delta is None else None


#: ``secagg audit verify`` exit statuses (also in its --help and docs/audit.md)
EXIT_VERIFIED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # click's own, for a bad option, a missing file or an unreadable key
EXIT_NOT_PRIVATE = 3
#: self-consistent, but checked only against the key the ledger itself embeds (no
#: --pubkey): anyone who rewrites a ledger can re-sign it with a key of their own
EXIT_UNVERIFIED = 4
#: nothing judged: the ledger changed during every read of it (a server appending as it
#: was read, :class:`~secagg.ledger.chain.LedgerKeptChanging`); read it again. Why not
#: FAILED (1): that is the verdict of a ledger changed without the key, and an honest
#: ledger under a busy writer read so (tests/ledger/test_verify_busy_writer.py)
EXIT_NOT_READ = 5

#: at most this many "round N: ... seeded" lines in the text output (all are in --json)
_SHOWN_SEEDED = 20


def _head_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a malformed --expect-head as a usage error, before reading the ledger."""
    from secagg.ledger.chain import parse_head

    if value is not None:
        try:
            parse_head(value)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc)) from exc
    return value


#: ``--expect-head`` of ``verify`` and ``report``, defined once: the report of a copy
#: without its log (or of a ledger closed by a secagg before 2026-12-07) could only read
#: FAILED, since the head that vouches for such a copy could not be given to it
_expect_head_option = click.option(
    "--expect-head",
    metavar="SEQ:HASH",
    callback=_head_option,
    help="The head an earlier audit printed (or the operator published). Fails unless "
    "the ledger still holds it: a ledger cut back or rolled back to an earlier head "
    "otherwise verifies. A grown ledger passes. A ledger file in WAL mode read without "
    "its -wal passes only with a head it holds.",
)


@audit.command(
    "verify",
    cls=_JsonLedgerCommand,
    json_error=lambda message, params: _verify_usage_json(message, params),
    epilog="""\b
Exit status:
  0  verified: chain, signatures, expected head and every epsilon claim hold,
     every DP block is consistent (and matches --config), no round's noise was
     seeded and no completed round went without DP
  1  FAILED: the ledger was changed, cut back (--expect-head), does not begin
     at its genesis or round 1 (or --first-round, --prior-ledger), the prior
     ledger fails, a claim does not follow, a row contradicts
     itself or the --config (delta, sampling kind, rate, population, unit,
     mechanism); or it is a damaged ledger that cannot be read; or the
     machine refused --pubkey (no permission, an I/O error: one line naming it)
  2  usage error (bad option, missing ledger, a --pubkey that is no key or
     names no file, unreadable --config, a
     --prior-ledger that is the ledger itself, a file that is not a ledger:
     the server's state database, whose ledger is <state>.ledger)
  3  verified but NOT PRIVATE: some round's DP noise was seeded (a
     simulation/replay), a completed round had no DP or no noise (epsilon
     infinite), or
     the federation released rounds without DP at all (no epsilon claimed)
  4  UNVERIFIED: no --pubkey, so the ledger was only checked against the key
     it embeds; it is self-consistent, but anyone can rewrite and re-sign
     a ledger: pass --pubkey with the key the operator gave you
  5  NOT READ: the ledger changed during every read of it (its server
     appending as it was read); nothing was judged: run verify again
A failure (1) outranks NOT PRIVATE (3), which outranks UNVERIFIED (4).""",
)
@_ledger_parameters
@click.option(
    "--pubkey",
    type=NonEmptyPath(dir_okay=False),
    callback=_pubkey_option,
    help="The ledger's public key (PEM) as the auditor received it from the operator. "
    "Without it the ledger is only checked against the key it embeds: UNVERIFIED (exit 4).",
)
@_expect_head_option
@click.option(
    "--config",
    "config",
    type=NonEmptyPath(dir_okay=False),
    help="The federation's TOML. Every DP row must then account at its delta, unit and "
    "mechanism and record its sampling kind, rate and population. Noise multiplier and "
    "clip may differ (a restart): each row is replayed with its own, and noted.",
)
@click.option(
    "--first-round",
    # no federation runs more rounds (its file and client --rounds stop there): a value
    # past it was judged against the ledger, "FAILED" and exit 1 (verify) or a report
    # of a failed ledger (exit 0), for a mistake in the flag
    type=click.IntRange(1, MAX_FEDERATION_ROUNDS),
    default=1,
    show_default=True,
    help="The round this ledger begins at. A ledger must begin at round 1 (the server "
    "writes every round from 1); give N only when rounds 1 to N-1 are accounted in "
    "another ledger you verify too: every epsilon printed then covers rounds N on only. "
    "Rows whose claims count those rounds need that ledger: --prior-ledger.",
)
@click.option(
    "--prior-ledger",
    type=RegularFilePath(exists=True, dir_okay=False, what="a ledger"),
    help="The ledger holding this one's earlier rounds (an archive of its first rows, or "
    "the ledger kept before this one began), signed by the same key. It is verified and "
    "replayed first: every epsilon printed is then the federation's, its rounds included.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the verdict as one JSON object (verdict, error, exit_status, rows, "
    "rounds_accounted, head, epsilon, delta, first_failure, notes ...) instead of text; "
    "the same keys for a ledger that cannot be read and for a usage error (null where "
    "unknown; a usage error's line is on stderr too).",
)
def verify(
    ledger: str,
    pubkey: bytes | None,
    expect_head: str | None,
    config: str | None,
    first_round: int,
    prior_ledger: str | None,
    as_json: bool,
) -> None:
    """Check the chain, every signature and every epsilon claim.

    Prints the ledger's head as SEQ:HASH: keep it and pass it back with
    --expect-head next time, the only way to notice a ledger cut back to an earlier
    state. A round whose DP noise was seeded, a completed round without DP in a
    federation with DP, a federation that released rounds without DP at all, or a
    claim that holds only with amplification by sampling (central rows in the format
    before 2026-12-03, which the engine no longer credits) is reported as not private
    (exit 3). Without --pubkey the
    verdict is UNVERIFIED (exit 4): the ledger is consistent with the key it carries,
    which proves nothing about who wrote it.
    """
    from secagg.ledger.chain import LedgerKeptChanging
    from secagg.ledger.verify import verify_ledger

    expected = _expected(config)
    try:
        result = verify_ledger(
            ledger,
            pubkey,
            expect_head,
            expected,
            first_round=first_round,
            prior_ledger=prior_ledger,
        )
    except ConfigurationError as exc:
        # a missing ledger, a --prior-ledger that is the ledger itself: with --json its
        # object is printed by the command's class, as for every usage error
        raise _usage_error(exc, ledger, prior_ledger) from exc
    except LedgerKeptChanging as exc:  # no verdict: neither FAILED nor VERIFIED
        _not_read(ledger, exc, as_json, expect_head, config, first_round)
    except Exception as exc:
        reason = f"{ledger} cannot be read as a ledger: {exc}"
        if as_json:  # --help promises one JSON object: a script parsing stdout gets it
            _echo_unread(reason, "FAILED", EXIT_FAILED, expect_head, config, first_round)
        else:
            line = _verdict_line("FAILED", ledger, str(exc), " cannot be read as a ledger: ")
            click.echo(line, err=True)
        sys.exit(EXIT_FAILED)
    last = None
    last_delta = None
    if result.epsilons:
        # the larger of the last row's claim and its replay, as the report shows it: the
        # replay alone printed less than a claim within the tolerance above it
        seq = result.epsilons[-1][0]
        entry = next((r.entry for r in result.chain.rows if r.seq == seq), {})
        privacy = entry.get("privacy") if isinstance(entry, dict) else None
        privacy = privacy if isinstance(privacy, dict) else {}
        claim = privacy.get("epsilon")
        claimed = float(claim) if claim == "inf" or _is_number(claim) else None
        last = result.shown_epsilon(seq, claimed)
    if not result.epsilons and result.prior_rows:
        # no row of its own yet (a ledger just begun afresh): the prior ledger's figure
        # is the federation's, not "None"
        last = result.prior_epsilon
    # the delta the figure holds at: its last DP block's, the report's rule too
    last_delta = result.claim_delta()
    reasons = result.not_private_reasons()
    keyed = pubkey is not None
    if not result.ok:
        status, verdict = EXIT_FAILED, "FAILED"
    elif reasons:
        status, verdict = EXIT_NOT_PRIVATE, "NOT PRIVATE"
    elif not keyed:
        status, verdict = EXIT_UNVERIFIED, "UNVERIFIED"
    else:
        status, verdict = EXIT_VERIFIED, "VERIFIED"
    anchor = result.anchor
    payload: dict[str, Any] = {
        "verdict": verdict,
        # why the ledger could not be read at all (a usage error or a file that is no
        # ledger); null whenever it was read, whatever the verdict
        "error": None,
        "ok": result.ok,
        "private": result.private,
        "exit_status": status,
        "rows": len(result.chain.rows),
        # every round "epsilon" covers (from "first_round"): this file's rows and the
        # prior ledger's; "rows" alone read 3 beside the epsilon of six rounds
        "rounds_accounted": len(result.chain.rows) + result.prior_rows,
        "first_failure": result.first_failure,
        "public_key": result.chain.public_key.hex(),
        "key_source": result.chain.key_source,
        "head": result.chain.head,
        "head_hash": result.chain.head_hash,
        # the head after this file's first row: pins where the ledger begins (a ledger
        # cut from the front and re-signed has another); null without rows
        "first_head": result.chain.first_head,
        "prior_ledger": None
        if result.prior_ledger is None
        else {
            "path": result.prior_ledger,
            "rows": result.prior_rows,
            "head": result.prior_head,
        },
        "expected_head": expect_head,
        "grown_since_expected_head": None if anchor is None or not anchor.ok else anchor.grown_by,
        "config": config,
        # both counts include the prior ledger's rows; "..._prior_ledger" says how many
        # of them are its (0 without one): "rows" counts this file's only
        "rows_checked_against_config": result.checked_against_config,
        "rows_checked_against_config_prior_ledger": result.checked_against_config_prior,
        "noise_seeded_rounds": [number for _, number in result.seeded],
        "rounds_without_dp": [number for _, number in result.unnoised],
        "amplified_rounds": [number for _, number in result.amplified],
        "released_without_dp": result.released_without_dp,
        "not_private": reasons,
        "rows_without_noise_seeded": result.unrecorded,
        "rows_without_noise_seeded_prior_ledger": result.unrecorded_prior,
        "rows_without_sampling": result.without_sampling,
        "rows_without_sampling_prior_ledger": result.without_sampling_prior,
        "notes": result.notes,
        # what the verdict took on the ledger's word (no --config: the recorded noise
        # multipliers; a record-level ledger: the branches' DP-SGD histories, which no
        # config holds), one line each; [] when nothing was, and for a FAILED ledger
        # (no verdict rests on it: AuditResult.ledgers_word)
        "on_the_ledgers_word": result.ledgers_word(),
        # "inf" when infinite, as every --json figure (secagg.apps.json_output)
        "epsilon": last,
        # the delta "epsilon" holds at (the last row's), exact: the text line shows it
        # rounded up, and an epsilon without its delta says nothing (null: no epsilon)
        "delta": None if last is None else last_delta,
        # why "delta" is null, so a script need not read "epsilon" to tell: null when
        # it is given; "no_epsilon_claimed"; or "not_recorded" (an epsilon is claimed
        # but the row it holds at, this file's or the prior ledger's last, has none)
        "delta_missing_reason": _delta_missing_reason(last, last_delta),
        # the round the ledger begins at: above 1, "epsilon" covers the rounds from it on
        # only (--first-round: the rounds before are accounted in another record)
        "first_round": result.first_round,
        "epsilon_unamplified": result.unamplified_epsilon,
        "per_client": result.per_client,
        # rows rebuilt after a crash: why, from what, and which fields the source lacked
        "reconstructed_rows": result.rebuilt_json(),
    }
    # a ledger without DP has no cumulative epsilon to print ("None" read as a value)
    excluded = result.excluded_rounds
    covered = (
        "cumulative epsilon"
        if excluded is None
        else f"epsilon of rounds {first_round} on only ({excluded} excluded: --first-round)"
    )
    claims = (
        f"every epsilon claim follows; {covered} {_shown_claim(last, last_delta)}"
        if result.dp_claimed
        else "no epsilon is claimed: no row carries a DP block"
    )
    counted = f"{payload['rows']} rows" + (
        f" (after the prior ledger's {result.prior_rows})" if result.prior_rows else ""
    )
    if as_json:
        click.echo(dumps(payload))
    elif result.ok:
        if keyed:
            click.echo(f"VERIFIED: {counted}, chain and signatures intact, {claims}")
        else:
            click.echo(
                f"UNVERIFIED: {counted} are self-consistent (chain intact, "
                f"signed by the key the ledger itself embeds, {claims}), but anyone can "
                "rewrite a ledger and re-sign it with a key of their own: pass --pubkey "
                "with the key the operator gave you"
            )
        if expected is not None:
            z = result.config_noise_multiplier
            held = (
                f"; none records a noise multiplier above its {z!r}"
                if z is not None and result.noise_multiplier_rows
                else ""
            )
            click.echo(
                f"config {shown_path(str(config))}: {result.config_rows_line()} its delta, "
                f"unit, mechanism and sampling{held}"
            )
        for line in payload["on_the_ledgers_word"]:
            click.echo(f"on the ledger's word: {line}")
        if result.per_client is not None:
            # who took part is the server's word: the bound that does not rest on it
            every = result.per_client.get("every_round_epsilon")
            bound = (
                ""
                if every is None
                else "; who took part is the server's word: every client charged for every "
                f"round spends epsilon {_shown_claim(every, last_delta)}"
            )
            click.echo(
                f"per client: {result.per_client['clients']} clients, each charged for the "
                f"rounds it was in; the most charged was in {result.per_client['most_rounds']}"
                f", whose epsilon is the claim{bound}"
            )
        for note in result.notes:
            click.echo(f"note: {note}")
        _echo_rebuilt(result.rebuilt_lines())
        if anchor is not None:
            grown = f"; {anchor.grown_by} rows appended since" if anchor.grown_by else ""
            click.echo(f"expected head {expect_head} is in the ledger{grown}")
        if result.released_without_dp:  # one reason for the whole ledger
            click.echo(f"NOT PRIVATE: {reasons[0]}")
        elif reasons:
            # one line for the ledger's claim (not a round) after the per-round ones
            rounds = reasons[:-1] if result.amplified else reasons
            if rounds:
                click.echo(
                    f"NOT PRIVATE: {len(rounds)} of {payload['rows'] + result.prior_rows} "
                    "rounds drew their DP "
                    "noise from a seeded stream or released without DP or without noise"
                )
                for line in rounds[:_SHOWN_SEEDED]:
                    click.echo(f"  {line}")
                if len(rounds) > _SHOWN_SEEDED:
                    click.echo(f"  ... and {len(rounds) - _SHOWN_SEEDED} more (see --json)")
            if result.amplified:
                click.echo(f"NOT PRIVATE: {reasons[-1]}")
        if result.unrecorded:
            click.echo(
                f"note: {result.unrecorded_line()} predate the noise_seeded field (ledger row "
                "version 1): whether their noise was seeded is not recorded"
            )
        if result.without_sampling:
            click.echo(
                f"note: {result.without_sampling_line()} predate the dp.sampling "
                "record: whether their cohort was Poisson-sampled is not recorded"
            )
        click.echo(f"head: {result.chain.head}")
        click.echo(f"  (keep it; next time pass --expect-head {result.chain.head})")
        first = result.chain.first_head
        if first is not None and first != result.chain.head and not result.prior_rows:
            # the chain's start depends on the key only: a ledger cut from the front and
            # re-signed with the key begins afresh there, and only a kept first row shows it
            click.echo(
                f"first row: {first}  (compare it with the one published "
                "when the ledger began; --expect-head with it fails a ledger cut from the "
                "front and re-signed)"
            )
    else:
        # one line naming the file and (in the failure) the row: an auditor checking
        # several ledgers in a loop sees which one failed
        click.echo(_verdict_line("FAILED", ledger, str(result.first_failure)), err=True)
    if status != EXIT_VERIFIED:
        sys.exit(status)


#: the keys of ``audit verify --json``'s object, in order: every object has all of them,
#: a ledger that could not be read too (null where unknown; tests/apps/
#: test_audit_verify_json_keys.py holds a read ledger's object to the same list)
VERIFY_JSON_KEYS = (
    "verdict", "error", "ok", "private", "exit_status", "rows", "rounds_accounted",
    "first_failure", "public_key", "key_source", "head", "head_hash", "first_head",
    "prior_ledger", "expected_head", "grown_since_expected_head", "config",
    "rows_checked_against_config", "rows_checked_against_config_prior_ledger",
    "noise_seeded_rounds", "rounds_without_dp", "amplified_rounds", "released_without_dp",
    "not_private", "rows_without_noise_seeded", "rows_without_noise_seeded_prior_ledger",
    "rows_without_sampling", "rows_without_sampling_prior_ledger", "notes",
    "on_the_ledgers_word", "epsilon",
    "delta", "delta_missing_reason", "first_round", "epsilon_unamplified", "per_client",
    "reconstructed_rows",
)  # fmt: skip


def _echo_unread(
    reason: str,
    verdict: str,
    status: int,
    expect_head: str | None,
    config: str | None,
    first_round: int,
) -> None:
    """``--json``'s object for a ledger that could not be read (missing or not a ledger:
    a usage error, exit 2; damaged: FAILED, exit 1): every key a read ledger's object
    has, null where nothing is known, the reason in ``error`` and ``first_failure``.

    Why: it held seven keys, so a script reading ``epsilon``, ``delta``,
    ``delta_missing_reason`` or ``rounds_accounted`` got a KeyError on a corrupt ledger,
    and a missing one printed no JSON at all (review 2026-12-05)."""
    payload: dict[str, Any] = dict.fromkeys(VERIFY_JSON_KEYS)
    payload |= {"verdict": verdict, "error": reason, "ok": False, "exit_status": status}
    payload |= {"first_failure": reason, "expected_head": expect_head, "config": config}
    payload["first_round"] = first_round
    click.echo(dumps(payload))


def _not_read(
    ledger: str,
    exc: BaseException,
    as_json: bool,
    expect_head: str | None,
    config: str | None,
    first_round: int,
) -> NoReturn:
    """A ledger no read of which held still, said as no verdict: ``NOT READ: L: ...``
    on stderr (with ``--json`` its object, ``"verdict": "NOT READ"``, ``"ok"`` null:
    nothing was judged), exit :data:`EXIT_NOT_READ`.

    Why: it read ``FAILED: L cannot be read as a ledger: ...``, exit 1, the verdict of
    a ledger changed without the key, for an honest ledger whose server kept appending
    as it was read (tests/ledger/test_verify_busy_writer.py)."""
    reason = " ".join(str(exc).split())
    if as_json:
        payload: dict[str, Any] = dict.fromkeys(VERIFY_JSON_KEYS)
        payload |= {"verdict": "NOT READ", "error": reason, "exit_status": EXIT_NOT_READ}
        payload |= {"expected_head": expect_head, "config": config, "first_round": first_round}
        click.echo(dumps(payload))
    else:
        click.echo(_verdict_line("NOT READ", ledger, str(exc)), err=True)
    sys.exit(EXIT_NOT_READ)


def _verify_usage_json(message: str, params: dict[str, Any]) -> dict[str, Any]:
    """``verify --json``'s object for a usage error: every key of a read ledger's object,
    ``"verdict": "USAGE ERROR"``, exit status 2, the message in ``error`` and
    ``first_failure``; the options given as far as they were parsed (null before)."""
    payload: dict[str, Any] = dict.fromkeys(VERIFY_JSON_KEYS)
    payload |= {"verdict": "USAGE ERROR", "error": message, "ok": False}
    payload |= {"exit_status": EXIT_USAGE, "first_failure": message}
    payload |= {
        "expected_head": params.get("expect_head"),
        "config": params.get("config"),
        "first_round": params.get("first_round"),
    }
    return payload


def _echo_rebuilt(lines: list[str]) -> None:
    """The rows rebuilt after a crash, one line each (at most :data:`_SHOWN_SEEDED`):
    an auditor sees which rows are not the round's own record, and why."""
    if not lines:
        return
    click.echo(
        f"note: {len(lines)} row{'' if len(lines) == 1 else 's'} rebuilt after the fact "
        "(reconstructed), not written when the round finished:"
    )
    for line in lines[:_SHOWN_SEEDED]:
        click.echo(f"  {line}")
    if len(lines) > _SHOWN_SEEDED:
        click.echo(f"  ... and {len(lines) - _SHOWN_SEEDED} more (see --json)")


@audit.command(
    "report",
    cls=_LedgerEitherWay,
    epilog="""\b
Exit status:
  0  the report was written (it states whether the ledger verified)
  1  the ledger is damaged and cannot be read, or writing the report failed,
     or the machine refused --out or --pubkey (no permission, a read-only
     filesystem, a full disk: one line naming the flag)
  2  usage error (bad option, missing ledger, a --pubkey that is no key,
     unreadable --config, an --out that is a file, a file that is not a ledger:
     the server's state database, whose ledger is <state>.ledger)
  5  NOT READ: the ledger changed during every read of it (its server
     appending as it was read); nothing was written: run report again""",
)
@_ledger_parameters
@click.option(
    "--pubkey",
    type=NonEmptyPath(dir_okay=False),
    callback=_pubkey_option,
    help="The ledger's public key (PEM) as the auditor received it from the operator. "
    "Without it the report is marked UNVERIFIED (checked only against the key the "
    "ledger embeds).",
)
@click.option(
    "--config",
    "config",
    type=NonEmptyPath(dir_okay=False),
    help="The federation's TOML: verify the rows against it (as `audit verify --config`) "
    "and draw its [dp] epsilon_budget in the report.",
)
@click.option(
    "--out",
    type=NonEmptyPath(file_okay=False),
    default=".",
    show_default=True,
    callback=_out_option,
    help="Folder for ledger-report.md, .html and .png (created if missing).",
)
@click.option(
    "--first-round",
    # no federation runs more rounds (its file and client --rounds stop there): a value
    # past it was judged against the ledger, "FAILED" and exit 1 (verify) or a report
    # of a failed ledger (exit 0), for a mistake in the flag
    type=click.IntRange(1, MAX_FEDERATION_ROUNDS),
    default=1,
    show_default=True,
    help="The round this ledger begins at (as `audit verify --first-round`): give N only "
    "when rounds 1 to N-1 are accounted in another ledger.",
)
@click.option(
    "--prior-ledger",
    type=RegularFilePath(exists=True, dir_okay=False, what="a ledger"),
    help="The ledger holding this one's earlier rounds (an archive of its first rows, or "
    "the ledger kept before this one began), signed by the same key. It is verified and "
    "replayed first: every epsilon shown is then the federation's, its rounds included.",
)
@_expect_head_option
def report(
    ledger: str,
    pubkey: bytes | None,
    config: str | None,
    out: str,
    first_round: int,
    prior_ledger: str | None,
    expect_head: str | None,
) -> None:
    """Write ledger-report.md / .html / .png for a compliance officer."""
    from secagg.ledger.chain import LedgerKeptChanging
    from secagg.ledger.report import build_report, write_report_files

    expected = _expected(config)
    try:
        text, png = build_report(
            ledger,
            pubkey,
            expected,
            first_round=first_round,
            prior_ledger=prior_ledger,
            expect_head=expect_head,
        )
    except ConfigurationError as exc:
        raise _usage_error(exc, ledger, prior_ledger) from exc
    except LedgerKeptChanging as exc:  # no verdict to report: nothing is written
        click.echo(_verdict_line("NOT READ", ledger, str(exc)), err=True)
        sys.exit(EXIT_NOT_READ)
    except (SecAggError, sqlite3.Error, OSError, ValueError) as exc:
        line = _verdict_line("FAILED", ledger, str(exc), " cannot be read as a ledger: ")
        click.echo(line, err=True)
        sys.exit(EXIT_FAILED)
    try:
        written = write_report_files(out, text, png)
    except OSError as exc:  # after the --out probe passed: a full disk, a race
        where = f" ({shown_path(os.fsdecode(exc.filename))})" if exc.filename else ""
        click.echo(
            f"FAILED: cannot write the report to --out {shown_path(out)}: {_reason(exc)}{where}",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    # one line a file, shown as the errors show a path: a line break in --out split each
    # file's line in two, and an escape in it reached the terminal (helper brief 325)
    for path in written:
        click.echo(shown_path(str(Path(path))))
    # the verdict on the terminal too: a tampered ledger's report used to print only the
    # file names, the FAILED being inside the .md (CLI audit, 2026-12-03)
    for line in _report_verdict(text):
        click.echo(line, err=True)


def _report_verdict(text: str) -> list[str]:
    """The report's status paragraphs as terminal lines, a NOT PRIVATE one first.

    Why: ``report`` printed only the first paragraph, ``VERIFIED: ...``, for a ledger
    ``verify`` calls NOT PRIVATE (exit 3), the NOT PRIVATE paragraph after it being only
    in the .md (CLI audit, 2026-12-05). Its exit status stays 0 (written), so the
    terminal must not read as a clean verdict: the first line says NOT PRIVATE."""
    # the status is everything between the title and the first "- " fact line
    status = text.split("\n", 2)[2].split("\n\n- ", 1)[0]
    from secagg.ledger.report import plain_text

    # the report escapes what rows record (hostile review, 2026-12-06): read back as written
    paragraphs = [plain_text(" ".join(p.split())) for p in status.split("\n\n") if p.strip()]
    flagged = [p for p in paragraphs if p.startswith("NOT PRIVATE")]
    ordered = flagged + [p for p in paragraphs if p not in flagged]
    return [f"verdict: {ordered[0]}", *(f"  {p}" for p in ordered[1:])]


#: the backends the canary audit federates with: ckks also needs a key holder party,
#: which the audit does not run
_AUDITED_BACKENDS = ("plain", "secagg", "secagg+")


class _AuditedBackend(click.Choice):
    """``--backend``: one of :data:`_AUDITED_BACKENDS`, and for ckks the reason it is not.

    Why: ``--backend nosuch`` said ``backend.name must be one of ...`` and ``--backend
    ckks`` ``backend.key_holder names the key holder ...``, keys of a config the user
    never wrote (CLI audit, 2026-12-05)."""

    def __init__(self) -> None:
        super().__init__(_AUDITED_BACKENDS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "ckks":
            self.fail(
                "ckks needs a key holder party, which the canary audit does not run; "
                f"choose one of {', '.join(_AUDITED_BACKENDS)}",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


@audit.command(
    "empirical",
    cls=_JsonUsageErrors,
    json_error=lambda message, params: _empirical_error_json(message, EXIT_USAGE),
    epilog="""\b
Exit status:
  0  consistent: the empirical lower bound does not exceed the claimed epsilon
  1  FAIL: the run leaks more than it claims (lower bound above the claim), or
     the held-out canaries do not follow the null distribution; FAILED: the
     audited federation did not complete its rounds (no bound)
  2  usage error""",
)
@click.option(
    "--noise-multiplier",
    "-z",
    # the bounds of the federation it runs (dp.noise_multiplier, simulate's seed): past
    # them the refusal named the config key the flag fills, not the flag (upper-bounds
    # review, 2026-12-05)
    type=FiniteFloat(min=0.0, max=MAX_NOISE_MULTIPLIER),
    default=5.0,
    show_default=True,
    help="Central noise std / clip of the audited run (0: no noise; at most 10^4).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 10_000),  # the simulated branches' own bounds
    default=10,
    show_default=True,
    help="Rounds of the audited federation.",
)
@click.option(
    "--canaries",
    type=click.IntRange(min=2),
    default=400,
    show_default=True,
    help="Inserted canary clients (as many more are held out).",
)
@click.option(
    "--branches",
    type=click.IntRange(2, 1000),
    default=8,
    show_default=True,
    help="Ordinary branches beside the canaries.",
)
@click.option(
    "--delta",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=1e-5,
    show_default=True,
    help="The delta at which the accountant's epsilon is compared with the lower bound.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, CAPS["seed"]),
    default=None,
    help="Replay seed (data, canaries, noise), 0 .. 2^32 - 1; default: fresh CSPRNG draws.",
)
@click.option(
    "--backend",
    type=_AuditedBackend(),
    default="plain",
    show_default=True,
    help="The aggregation backend the audited federation runs (ckks, which needs a key "
    "holder, is not audited here).",
)
@click.option(
    "--claimed-epsilon",
    # a claim past 10^6 protects nothing (and printed as a 300-digit number)
    type=FiniteFloat(0.0, MAX_EPSILON, min_open=True),
    default=None,
    help="The epsilon to hold the run to; default: the runtime accountant's for the run.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as one JSON object (a usage error too: its message in error, "
    "exit_status 2, the line on stderr as well).",
)
def empirical(
    noise_multiplier: float,
    rounds: int,
    canaries: int,
    branches: int,
    delta: float,
    seed: int | None,
    backend: str,
    claimed_epsilon: float | None,
    as_json: bool,
) -> None:
    """Canary audit of the federation runtime: a lower bound on epsilon.

    Runs a federation (FederationServer, FederationClient, the backend, the DP
    mechanism) with canary clients (Andrew et al., ICLR 2024) and bounds epsilon
    from below at one-sided 95 % (Clopper-Pearson on the canaries' true-positive
    rate, exact null false-positive rate). FAILS if the bound exceeds the claim.
    """
    import warnings

    from secagg.apps.audit.empirical import AuditedFederationIncomplete, run_canary_audit

    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    # 2 x canaries unit directions of the fraud MLP's 2 081 parameters, each drawn as
    # 64-bit words then held as float64: ``--canaries 100000000`` ended in a 47-line
    # MemoryError traceback (front-door audit, 2026-12-05)
    check_memory(
        2 * canaries * _AUDITED_PARAMETERS * 16,
        f"--canaries {canaries} (twice as many directions of {_AUDITED_PARAMETERS} parameters)",
        "'--canaries'",
    )
    try:
        audit_result = run_canary_audit(
            noise_multiplier=noise_multiplier,
            rounds=rounds,
            canaries=canaries,
            branches=branches,
            delta=delta,
            seed=seed,
            backend=backend,
            claimed_epsilon=claimed_epsilon,
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except (SecAggError, sqlite3.Error, OSError) as exc:
        # a failed run, not a mistake in an option: it read "Error: the audited federation
        # did not complete: ...", exit 2, a usage error naming no flag (review of the
        # audit command's edges, 2026-12-06); verify's unreadable ledger is said alike.
        # A failure of the machine under the audited federation (a full temporary folder
        # for its state, a database error) is the same failed run: it was a traceback,
        # and under --json no object at all (environment-failure review, 2026-12-07)
        cause = (
            str(exc)
            if isinstance(exc, AuditedFederationIncomplete)
            else f"the audited federation failed: {_environment_cause(exc)}"
        )
        message = f"{cause}: no release, so no bound"
        if as_json:
            click.echo(dumps(_empirical_error_json(message, EXIT_FAILED)))
        else:
            click.echo(f"FAILED: {message}", err=True)
        sys.exit(EXIT_FAILED)
    except MemoryError:  # below the machine's memory, but more than it had free
        raise click.BadParameter(
            f"{canaries} canaries ran out of memory", param_hint="'--canaries'"
        ) from None
    # infinities as "inf", NaN as null (secagg.apps.json_output): this converted a
    # top-level +inf only, and a -inf or a NaN went out as bare -Infinity / NaN
    payload = audit_result.as_dict()
    # the keys a usage error's object has too (_empirical_error_json): null there, set here
    payload |= {"error": None, "exit_status": 0 if audit_result.consistent else EXIT_FAILED}
    if as_json:
        click.echo(dumps(payload))
    else:
        _print_audit(
            audit_result, backend=backend, branches=branches, claimed=claimed_epsilon is not None
        )
    if not audit_result.consistent:
        sys.exit(EXIT_FAILED)


def _empirical_error_json(message: str, status: int) -> dict[str, Any]:
    """``empirical --json``'s object when there is no result: every key of a result's
    object, null, with the message in ``"error"`` and ``"exit_status"`` 2 for a usage
    error, 1 for an audited federation that did not complete."""
    from dataclasses import fields

    from secagg.apps.audit.empirical import EmpiricalAudit

    payload: dict[str, Any] = dict.fromkeys(field.name for field in fields(EmpiricalAudit))
    return payload | {"error": message, "exit_status": status}


#: the parameters of the model ``audit empirical`` federates (the fraud MLP, d = 2 081;
#: secagg.apps.audit.empirical): the directions' memory is sized by it
_AUDITED_PARAMETERS = 2081


def _apart(lower: float, upper: float) -> tuple[str, str]:
    """``lower`` rounded down and ``upper`` rounded up, at the coarsest precision (3
    decimals or finer) where the text still shows ``lower > upper``: a FAIL line that
    read "the lower bound 1.000 exceeds the claimed epsilon 1.001" would contradict
    itself."""
    from secagg.dp.display import shown

    for places in range(3, 18):
        low, high = shown(lower, places, lower=True), shown(upper, places)
        if float(low) > float(high):
            break
    return low, high


def _print_audit(r: EmpiricalAudit, *, backend: str, branches: int, claimed: bool) -> None:
    """The audit as text. Every epsilon is rounded toward the side the reader can rely
    on (:func:`secagg.dp.display.shown`): the accountant's bound, the claim and the
    estimate (and its mu) up, the empirical lower bound (and the TPR bound it comes from)
    down. To the nearest, a claim of 1.0004 read as 1.000, a lower bound of 0.5329 as
    0.533 and a TPR bound of 0.40567 as 0.406."""
    from secagg.dp.display import shown

    click.echo(
        f"canary audit through the runtime ({backend}): {r.rounds} rounds, {branches} "
        f"branches + {r.canaries} canaries ({r.canaries} held out), d = {r.dimension}, "
        f"z = {r.noise_multiplier}"
    )
    click.echo(
        f"  empirical lower bound           {shown(r.epsilon_lower, 3, lower=True)}  "
        f"(one-sided {r.confidence * 100:g} % confidence)"
    )
    click.echo(f"    method: {r.method}")
    click.echo(
        f"    test: cosine above the threshold of exact FPR {r.threshold_fpr:g}: "
        f"{r.hits}/{r.canaries} canaries (TPR >= "
        f"{shown(r.tpr_lower, 3, significant=True, lower=True)}); held out: "
        f"{r.held_out_fpr:.3g}"
    )
    click.echo(
        f"  accountant's upper bound        {shown(r.accountant_epsilon, 3)}  "
        f"(delta = {shown(r.delta, 6, significant=True)})"
    )
    if claimed:
        click.echo(f"  claimed epsilon                 {shown(r.claimed_epsilon, 3)}")
    click.echo(
        f"  Gaussian-model estimate         {shown(r.epsilon_estimate, 3)}  "
        f"(mu = {shown(r.mu_estimate, 3)}; Andrew et al.'s two-Gaussian fit of the inserted "
        "cosines: a point estimate, not a bound)"
    )
    if r.null_check_p < 1e-3:
        click.echo(
            f"FAIL: the held-out canaries do not follow the null (KS p = "
            f"{r.null_check_p:.2g}): the directions were not independent of the release"
        )
    elif not r.consistent:
        low, high = _apart(r.epsilon_lower, r.claimed_epsilon)
        click.echo(
            f"FAIL: the lower bound {low} exceeds the claimed epsilon "
            f"{high}: the release leaks more than claimed (noise missing?)"
        )
    else:
        click.echo(
            f"CONSISTENT: the lower bound does not exceed the claimed epsilon "
            f"{shown(r.claimed_epsilon, 3)} (no proof of privacy: it only shows a leak)"
        )
