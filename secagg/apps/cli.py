"""The ``secagg`` console command.

``secagg simulate`` is the main job: a bank-branch fraud federation with
its baselines (see :mod:`secagg.apps.simulation`). ``secagg round`` runs one
secure-aggregation round in memory with the embedded defaults (100 clients,
100 000 coordinates, SecAgg+ with the published choice of k and t, 5% of the
clients dropping at random phases) and checks the result against a plaintext
sum. ``secagg params`` shows the k and t SecAgg+ would choose.
``secagg privacy epsilon`` and ``secagg privacy noise`` are the accountant
for users and auditors (DP-FedAvg with Poisson client sampling).
``secagg bench masking``, ``dp``, ``ckks`` and ``grpc`` run the benchmarks.
``secagg certs``, ``secagg server``, ``secagg client`` and ``secagg keyholder`` run
real federations. ``secagg audit`` checks a privacy ledger, reports it, or estimates
epsilon empirically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click
import numpy as np

from secagg import __version__
from secagg.aggregation.policy import MAX_CLIP, BranchPolicy
from secagg.apps import cli_types, devca
from secagg.apps.audit.cli import audit
from secagg.apps.cli_types import FiniteFloat, NonEmptyPath, check_memory
from secagg.apps.simulation.cli import simulate
from secagg.apps.simulation.config import MAX_EPSILON
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError, RoundAborted, SecAggError
from secagg.protocol import PHASES, RoundConfig, run_round
from secagg.protocol.config import DEFAULT_CORRUPT_FRACTION, DEFAULT_MAX_CLIENTS
from secagg.runtime.config import MAX_DIMENSION
from secagg.transport.base import MAX_WAIT_SECONDS
from secagg.transport.certs import MissingCertificate

if TYPE_CHECKING:
    from secagg.runtime.config import FederationConfig

#: Phases a simulated client may vanish before (the advertise phase is left
#: out of the random schedule: a client that never shows up is simply absent).
_DROPOUT_PHASES = PHASES[1:]


#: a round needs at least 3 clients here (2 would reveal each other's input); a
#: benchmark vector is at most 10^8 words (400 MB), far past the papers' and the
#: issues' sizes, and short of a MemoryError traceback
_CLIENTS = click.IntRange(min=3)
_LENGTH = click.IntRange(1, 10**8)
#: the most timed runs, rounds and Ray workers a benchmark takes, each far past any use
#: and short of a run that never ends: ``bench dp --runs 2**70`` ran until killed,
#: ``bench grpc --rounds 2**70`` was an OverflowError traceback from its deadline, and
#: ``bench scale --d 2**70`` a ConfigurationError traceback in its cell (upper-bounds
#: review, 2026-12-05); rounds and workers are ``secagg simulate``'s caps
_RUNS = click.IntRange(1, 1000)
_ROUNDS = click.IntRange(1, 10_000)
_WORKERS = click.IntRange(1, 10_000)


def _output_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An output path whose folder exists, checked before the work: a benchmark that runs
    for minutes and then cannot write its result was a traceback (CLI audit)."""
    if value is None:  # an empty one (an unset $OUT) never gets here: NonEmptyPath refuses it
        return None
    if isinstance(param.type, click.Path) and not param.type.file_okay:  # a folder: make it
        try:
            if not os.path.isdir(value):
                os.mkdir(value)  # its parent must exist: no folders made along the way
        except OSError as exc:
            raise click.BadParameter(_os_error(exc), ctx, param) from None
        return value
    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        raise click.BadParameter(f"the folder {parent} does not exist", ctx, param)
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"the folder {parent} is not writable", ctx, param)
    return value


def _os_error(exc: OSError) -> str:
    """An OSError as one line: what failed and on which path, without errno numbers."""
    where = f" {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or type(exc).__name__}:{where}" if where else str(exc.strerror or exc)


class OneLineUsageError(click.ClickException):
    """A usage mistake shown as the one line that names it, exit status 2.

    Why: click prints a usage error as ``Usage: ...``, ``Try '... --help' for
    help.``, a blank line and then ``Error: ...``: four lines for one mistake,
    the one that matters last. An operator reading a failed job's log (or a
    script grepping it) should see one line naming the flag, the key or the file;
    ``ClickException.show`` prints just that, ``Error: <message>``.
    """

    exit_code = 2

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message())


class _OneLineErrors(click.Group):
    """The top-level group: every usage error below it, at any depth, is one line.

    Subcommands parse their arguments inside this group's ``invoke`` and the group's
    own options in ``make_context``; both are wrapped. A group called without a
    command still prints its help (``NoArgsIsHelpError`` is left to click).
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from exc


@click.group(cls=_OneLineErrors)
@click.version_option(__version__, prog_name="secagg")
def main() -> None:
    """secagg: secure aggregation for federated learning."""


def _random_schedule(num_clients: int, fraction: float, active: bool) -> dict[str, list[int]]:
    """Pick ``fraction`` of the clients (CSPRNG) and a phase for each to vanish before."""
    rng = secrets.SystemRandom()
    count = round(fraction * num_clients)
    phases = [p for p in _DROPOUT_PHASES if active or p != "consistency_check"]
    schedule: dict[str, list[int]] = {}
    for party in sorted(rng.sample(range(num_clients), count)):
        schedule.setdefault(rng.choice(phases), []).append(party)
    return schedule


def _emit(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    cfg = payload["config"]
    click.echo(
        f"round of {cfg['num_clients']} clients x {cfg['vector_length']} coordinates, "
        f"{cfg['graph']} graph (k={cfg['k']}, t={cfg['threshold']}), "
        f"Z_2^{cfg['bits']}{', active variant' if cfg['active'] else ''}"
    )
    for phase in PHASES:
        if phase in payload["dropped"]:
            click.echo(f"  vanished before {phase}: {len(payload['dropped'][phase])} client(s)")
    if payload["status"] == "aborted":
        click.echo(f"round ABORTED: {payload['abort_reason']}")
        return
    click.echo(
        f"round complete in {payload['seconds']:.2f} s: {payload['included']} inputs summed, "
        f"sum {'matches' if payload['sum_matches_plaintext'] else 'DOES NOT match'} "
        "the plaintext sum of the included inputs"
    )


def _cohort_size(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--clients``: one message for every value below 2 (0 and 1 used to differ)."""
    del ctx, param
    if value is not None and value < 2:
        raise click.BadParameter(
            f"{value} is too few: secure aggregation sums the inputs of at least 2 clients"
        )
    return value


def _config_error(exc: ConfigurationError, names: dict[str, str]) -> click.BadParameter:
    """A planning error as a usage error in the words the user typed.

    Why: ``round --corrupt 0.5 --tolerated-dropout 0.9`` said ``corrupt_fraction +
    dropout_fraction <= 0.9`` and ``--clients 2000000`` ``num_clients must be at most
    1000000``: keys of the library, not flags (CLI audit, 2026-12-05). ``names`` maps
    each key to its flag (or to words, for a value the command fixes); the flags found
    become the error's param_hint."""
    message, flags = str(exc), []
    for name, words in names.items():
        pattern = rf"\b{re.escape(name)}\b"
        if re.search(pattern, message):
            message = re.sub(pattern, words, message)
            if words.startswith("--"):
                flags.append(words)
    return click.BadParameter(message, param_hint=flags or None)


#: ``round``'s flags for RoundConfig's keys
#: ``secagg round --k``'s largest value: a client of the largest cohort a client joins
#: by default (its policy's max_clients) has this many neighbours at most
MAX_DEGREE = DEFAULT_MAX_CLIENTS - 1

_ROUND_FLAGS = {
    "num_clients": "--clients",
    "vector_length": "--dim",
    "corrupt_fraction": "--corrupt",
    "dropout_fraction": "--tolerated-dropout",
}


class _DropAccountantNoise(logging.Filter):
    """Drops dp-accounting's absl warnings that a fractional RDP order did not converge.

    ``privacy noise -q 0.5`` printed 127 of them before its answer; they are the
    library's internal search (an order it cannot evaluate is skipped, which only makes
    the bound looser, never wrong), not something the user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # and, at a tiny q, "Negative Renyi divergence of -4e-24 ... Returning an epsilon
        # of zero": float rounding around an RDP of about 1e-26 per round, far below
        # delta^2, where the library's KL bound gives epsilon 0 at that order anyway
        # (58 lines above `privacy epsilon -z 1e4 -q 1e-9 -T 1 --accountant rdp`)
        return "failed to converge" not in message and "Negative Renyi divergence" not in message


@contextlib.contextmanager
def _quiet_accountant() -> Iterator[None]:
    """Silence :class:`_DropAccountantNoise`'s lines on the ``absl`` logger meanwhile,
    and numpy's RuntimeWarnings: ``privacy epsilon -z 1e-300 -q 0.1`` printed two
    "divide by zero" warnings, each with its line of dp_accounting's source, above its
    one-line error (the values are refused or answered all the same)."""
    noise = _DropAccountantNoise()
    absl = logging.getLogger("absl")
    absl.addFilter(noise)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        absl.removeFilter(noise)


def _out_of_memory(num_clients: int, vector_length: int) -> click.BadParameter:
    """A round that fit the lower bound but not the memory free: one line, not a
    MemoryError traceback."""
    return click.BadParameter(
        f"--clients {num_clients} x --dim {vector_length} ran out of memory",
        param_hint="'--clients' / '--dim'",
    )


@main.command("round")
@click.option(
    "--clients",
    "num_clients",
    default=100,
    show_default=True,
    callback=_cohort_size,
    help="Number of clients (at least 2).",
)
@click.option(
    "--dim",
    "vector_length",
    type=_LENGTH,
    default=100_000,
    show_default=True,
    help="Vector length d.",
)
@click.option(
    "--graph",
    type=click.Choice(["harary", "complete"]),
    default="harary",
    show_default=True,
    help="SecAgg+ (sparse Harary graph) or the original complete-graph SecAgg.",
)
@click.option(
    "--k",
    "degree",
    # at most one less than the largest cohort a client joins: --k 2**70 ran the complete
    # graph (upper-bounds review, 2026-12-06); a k >= --clients - 1 still runs it, and says so
    type=click.IntRange(max=MAX_DEGREE),
    default=None,
    help=f"Neighbours per client, at most {MAX_DEGREE}; at or above --clients - 1 the round "
    "is the complete graph (SecAgg), and says so (default: SecAgg+ search).",
)
@click.option(
    "--threshold",
    type=click.IntRange(max=DEFAULT_MAX_CLIENTS),
    default=None,
    help=f"Shamir threshold t, at most {DEFAULT_MAX_CLIENTS} (default: SecAgg+ search).",
)
@click.option("--bits", type=click.Choice(["32", "64"]), default="32", show_default=True)
@click.option("--active", is_flag=True, help="Active variant: signed keys and consistency check.")
@click.option(
    "--dropout",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.05,
    show_default=True,
    help="Fraction of clients that vanish, each before a random phase.",
)
@click.option(
    "--tolerated-dropout",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.10,
    show_default=True,
    help="Dropout fraction the default k and t are chosen to survive.",
)
@click.option(
    "--corrupt",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.05,
    show_default=True,
    help="Fraction of clients assumed to collude with the server.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def one_round(
    num_clients: int,
    vector_length: int,
    graph: str,
    degree: int | None,
    threshold: int | None,
    bits: str,
    active: bool,
    dropout: float,
    tolerated_dropout: float,
    corrupt: float,
    as_json: bool,
) -> None:
    """Run one secure-aggregation round in memory and check its sum."""
    width = int(bits)
    try:
        config = RoundConfig.create(
            num_clients,
            vector_length,
            bits=width,
            graph=graph,  # type: ignore[arg-type]
            k=degree,
            threshold=threshold,
            active=active,
            dropout_fraction=tolerated_dropout,
            corrupt_fraction=corrupt,
        )
    except ConfigurationError as exc:
        # k and t by their flags too: "a Harary graph needs an even degree k in [2, 4]"
        # named neither --k nor, for a threshold past k + 1, --threshold
        raise _config_error(exc, {**_ROUND_FLAGS, "threshold": "--threshold", "k": "--k"}) from exc
    dtype = np.uint32 if width == 32 else np.uint64
    words = num_clients * vector_length
    # a lower bound: the inputs, and the masked copies the server receives
    check_memory(
        2 * words * np.dtype(dtype).itemsize,
        f"--clients {num_clients} x --dim {vector_length} words of {width} bits (the "
        "inputs and their masked copies)",
        "'--clients' / '--dim'",
    )
    if num_clients > DEFAULT_MAX_CLIENTS:
        # the in-memory clients keep the default policy, whose max_clients refused the
        # round from inside it: ``round --clients 1000000 --dim 1000`` (within the
        # cohort range) ended in a 40-line PolicyRefused traceback (front-door audit,
        # 2026-12-05)
        raise click.BadParameter(
            f"{num_clients} is more than the {DEFAULT_MAX_CLIENTS} clients a client joins "
            "by default (its policy's max_clients, which bounds the memory a round may ask "
            "of it)",
            param_hint="'--clients'",
        )
    note = None
    if graph == "harary" and degree is not None and config.graph.name == "COMPLETE":
        # RoundConfig turns a k that reaches everyone into the complete graph: say so
        note = (
            f"--k {degree} reaches every other client (k >= clients - 1 = {num_clients - 1}): "
            f"this is the complete graph (SecAgg), k = {config.degree}"
        )
        if not as_json:
            click.echo(f"note: {note}", err=True)
    try:
        inputs = np.frombuffer(
            os.urandom(num_clients * vector_length * np.dtype(dtype).itemsize), dtype=dtype
        ).reshape(num_clients, vector_length)
    except MemoryError:
        raise _out_of_memory(num_clients, vector_length) from None
    schedule = _random_schedule(num_clients, dropout, active)
    started = time.perf_counter()

    def show_phase(phase: str) -> None:
        if not as_json:
            click.echo(f"  [{time.perf_counter() - started:7.2f} s] {phase}", err=True)

    payload: dict[str, Any] = {
        "config": {
            "num_clients": num_clients,
            "vector_length": vector_length,
            "bits": width,
            "graph": config.graph.name.lower(),
            "k": config.degree,
            "threshold": config.threshold,
            "active": active,
        },
        "dropped": schedule,
    }
    if note is not None:
        payload["note"] = note
    try:
        outcome = run_round(
            inputs,
            graph=graph,
            k=degree,
            threshold=threshold,
            dropped=schedule,
            bits=width,
            active=active,
            dropout_fraction=tolerated_dropout,
            corrupt_fraction=corrupt,
            on_phase=show_phase,
        )
    except MemoryError:  # past the lower bound above, with what else the round holds
        raise _out_of_memory(num_clients, vector_length) from None
    except RoundAborted as exc:
        payload.update(status="aborted", abort_reason=exc.reason)
        _emit(payload, as_json)
        sys.exit(2)
    seconds = time.perf_counter() - started
    included = list(outcome.report.included)
    expected = inputs[included].sum(axis=0, dtype=dtype)
    matches = bool(np.array_equal(outcome.total, expected))
    payload.update(
        status="complete",
        seconds=round(seconds, 4),
        included=len(included),
        sum_matches_plaintext=matches,
        responders={phase: len(p) for phase, p in outcome.report.responders.items()},
    )
    _emit(payload, as_json)
    if not matches:
        sys.exit(1)


@main.command()
@click.option(
    "--clients",
    "num_clients",
    type=int,
    required=True,
    callback=_cohort_size,
    help="Cohort size n (at least 2).",
)
@click.option(
    "--corrupt",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.05,
    show_default=True,
    help="Fraction of clients that may collude with the server.",
)
@click.option(
    "--dropout",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    default=0.10,
    show_default=True,
    help="Fraction of clients that may drop out.",
)
@click.option("--semi-malicious", is_flag=True, help="Server may lie about dropouts.")
def params(num_clients: int, corrupt: float, dropout: float, semi_malicious: bool) -> None:
    """Show the SecAgg+ neighbour count k and threshold t for a cohort.

    The numbers a round of this size runs with, as the server plans it, colluder
    floor included.
    \f
    Why: ``RoundConfig.create``'s figures; before, this printed the bare graph search,
    k = 2, t = 2 for 4 to 10 clients, where the rounds ran k = 4, t = 3 or the complete
    graph (network audit, 2026-12-03). The history stays here, after click's ``\\f``,
    out of ``--help`` (a newcomer read "(network audit, 2026-12-03)" and RST markup
    there, walk-through of 2026-12-05)."""
    try:
        config = RoundConfig.create(
            num_clients,
            1,
            active=semi_malicious,
            dropout_fraction=dropout,
            corrupt_fraction=corrupt,
        )
    except ConfigurationError as exc:
        raise _config_error(exc, {**_ROUND_FLAGS, "dropout_fraction": "--dropout"}) from exc
    colluders = f"tolerates {config.tolerated_colluders} colluders"
    if config.degree >= num_clients - 1:
        click.echo(
            f"complete graph for n={num_clients}: k={config.degree} neighbours, "
            f"t={config.threshold} ({colluders})"
        )
    else:
        click.echo(
            f"k={config.degree} neighbours, t={config.threshold} (of k+1 share holders; "
            f"{colluders})"
        )


@main.group()
def privacy() -> None:
    """DP-FedAvg accounting: epsilon for a plan, or the noise for a budget."""


_ACCOUNTANT_OPTION = click.option(
    "--accountant",
    type=click.Choice(["pld", "rdp"]),
    default="pld",
    show_default=True,
    help="PLD (tightest upper bound) or RDP (cross-check).",
)


def _beyond_the_accountant(accountant: str, exc: BaseException) -> str:
    """One line for values the accountant cannot compute with (a noise multiplier of
    1e-300, a PLD grid larger than memory): they were a traceback (CLI audit)."""
    detail = " ".join(str(exc).split())[:120] or type(exc).__name__
    other = ", or try --accountant rdp" if accountant != "rdp" else ""  # not to RDP itself
    return (
        f"the {accountant} accountant cannot compute with these values ({detail}); "
        f"check -z, -q and -T{other}"
    )


#: The smallest noise multiplier ``privacy`` hands the PLD accountant at q < 1. One PLD
#: evaluation of a Poisson-sampled Gaussian grows about as 1/z^2 (measured at -q 0.1
#: -T 10: z = 0.3 in 3 s, 0.1 in 19 s and 0.5 GB, 0.01 past 5 minutes and 5 GB, 0.003
#: 20 GB), and z below 0.1 gives epsilon in the hundreds, which is no privacy: RDP
#: answers there in milliseconds. q = 1 uses the closed form and needs no floor.
PLD_SAMPLED_MIN_NOISE = 0.1


def _pld_out_of_reach(rate: float, accountant: str) -> str | None:
    """Why the PLD accountant is not asked below :data:`PLD_SAMPLED_MIN_NOISE` (None if
    it may be): ``privacy epsilon -z 0.003 -q 0.5`` took 20 GB and was killed, and
    ``privacy noise --epsilon 1e300 -q 0.1`` drove its search down there and never ended."""
    if accountant != "pld" or rate >= 1.0:
        return None
    return (
        "where the pld accountant cannot compute with these values at -q < 1 (minutes to "
        "hours, gigabytes); try --accountant rdp"
    )


def _pld_refusal(exc: Any) -> click.BadParameter:
    """The accountant's :class:`~secagg.dp.accounting.PldTooLarge` in this command's words:
    the flag to change and ``--accountant rdp`` (its own message names the Python
    argument ``accountant='rdp'``, which nobody types at a shell)."""
    from secagg.dp.accounting import MAX_PLD_POINTS

    held = f"more than the {MAX_PLD_POINTS} points the pld accountant holds in memory"
    if exc.rounds is not None:
        return click.BadParameter(
            f"{exc.rounds} rounds at q = {exc.sample_rate:g} compose to a PLD of "
            f"{exc.points:.3g} points at z = {exc.noise_multiplier:g}, {held}; try "
            "--accountant rdp (an upper bound for any number of rounds), or fewer rounds",
            param_hint="'--rounds' / '-T'",
        )
    return click.BadParameter(
        f"z = {exc.noise_multiplier:g} at q = {exc.sample_rate:g} needs a PLD of "
        f"{exc.points:.3g} points for one round, {held}; try --accountant rdp, or more noise",
        param_hint="'--noise-multiplier' / '-z'",
    )


_SAMPLE_RATE_OPTION = click.option(
    "--sample-rate",
    "-q",
    type=FiniteFloat(0.0, 1.0, min_open=True),
    required=True,
    help="Poisson client rate, in (0, 1].",
)
_CLIENTS_OPTION = click.option(
    "--clients",
    "-N",
    type=click.IntRange(min=1),
    default=None,
    help="The federation's clients: with q < 1, the figure a secagg federation claims "
    "(each client charged for its own rounds, no amplification by sampling).",
)


def _federation_figure(sample_rate: float, rounds: int, clients: int | None) -> Any:
    """What the figure is charged for (:func:`~secagg.dp.accounting.plan_charge`): its
    ``most_rounds`` is the rounds the most sampled of ``clients`` likely takes part in
    (None: q = 1 or no ``--clients``, so the Poisson figure is what is printed), at least
    1: a round that runs charges its members, however rare the sampling (``-q 1e-9
    --clients 10`` printed epsilon 0 where ``privacy noise`` charged one round). The dp
    layer's rule, not a copy of it."""
    from secagg.dp.accounting import plan_charge

    return plan_charge(sample_rate, rounds, clients)


def _delta_for_clients(delta: float, clients: int | None) -> None:
    """With ``--clients N``, ``--delta`` must lie below 1/N, as a federation's config
    requires of client-level DP.

    Why: at delta >= 1/N an (epsilon, delta) guarantee allows releasing one of the N
    clients' data outright, whatever the epsilon; ``secagg server`` refuses such a
    ``[dp] delta``, yet ``privacy epsilon --clients 3 --delta 0.5`` printed an epsilon
    (4.03 at z = 1) as "what a federation claims" (front-door audit, 2026-12-05)."""
    if clients is not None and delta >= 1 / clients:
        raise click.BadParameter(
            f"{delta:g} is not below 1 / --clients = 1/{clients}: at delta >= 1/N the "
            "guarantee allows releasing one client's data outright, and a federation's "
            "config refuses it",
            param_hint="'--delta'",
        )


def _amplified_note(sample_rate: float, most: int | None, as_json: bool) -> None:
    """After a sampled figure without ``--clients``: on stderr, what it credits (JSON
    says so in its ``amplified_by_sampling`` field)."""
    if sample_rate < 1.0 and most is None and not as_json:
        click.echo(
            "note: at q < 1 this credits amplification by secret sampling, which a secagg "
            "federation does not claim (a round's members see each other); pass --clients "
            "N for the figure it does",
            err=True,
        )


_ROUNDS_OPTION = click.option(
    "--rounds", "-T", type=click.IntRange(min=1), required=True, help="Rounds (at least 1)."
)
_DELTA_OPTION = click.option(
    "--delta",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    required=True,
    help="The delta of (epsilon, delta), in (0, 1).",
)


@privacy.command("epsilon")
@click.option(
    "--noise-multiplier",
    "-z",
    # at most a federation's (dp.noise_multiplier, simulate's): -z 1e300 printed epsilon
    # 0.0000 for a noise no federation can run (upper-bounds review, 2026-12-06)
    type=FiniteFloat(0.0, MAX_NOISE_MULTIPLIER, min_open=True),
    required=True,
    help=f"Noise std / clip (positive, at most {MAX_NOISE_MULTIPLIER:g}, a federation's largest).",
)
@_SAMPLE_RATE_OPTION
@_ROUNDS_OPTION
@_DELTA_OPTION
@_CLIENTS_OPTION
@_ACCOUNTANT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def privacy_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    rounds: int,
    delta: float,
    clients: int | None,
    accountant: str,
    as_json: bool,
) -> None:
    """Epsilon of DP-FedAvg after ROUNDS rounds at Poisson rate q (client-level, zero-out
    one client's update). With --clients and q < 1: what a federation claims, the most
    sampled client's, over the rounds it likely takes part in, unamplified."""
    from secagg.dp import accounting
    from secagg.dp.display import shown

    _delta_for_clients(delta, clients)
    charge = _federation_figure(sample_rate, rounds, clients)
    most = charge.most_rounds
    slow = _pld_out_of_reach(charge.sample_rate, accountant)
    if slow is not None and noise_multiplier < PLD_SAMPLED_MIN_NOISE:
        raise click.BadParameter(
            f"{noise_multiplier:g} is below {PLD_SAMPLED_MIN_NOISE:g}, {slow}",
            param_hint="'--noise-multiplier' / '-z'",
        )
    try:
        with _quiet_accountant():
            eps = accounting.plan_epsilon(
                noise_multiplier, sample_rate, rounds, delta, clients, accountant
            )
    except accounting.PldTooLarge as exc:
        raise _pld_refusal(exc) from exc
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except (ValueError, ArithmeticError, MemoryError) as exc:  # ZeroDivisionError at z=1e-300
        raise click.UsageError(_beyond_the_accountant(accountant, exc)) from exc
    payload = {
        "epsilon": eps,
        "delta": delta,
        "noise_multiplier": noise_multiplier,
        "sample_rate": sample_rate,
        "rounds": rounds,
        "accountant": accountant,
        "dp_accounting": accounting.dp_accounting_version(),
        "unit": "client",
        "amplified_by_sampling": most is None and sample_rate < 1,
    }
    if most is not None:
        payload |= {"clients": clients, "most_rounds_per_client": most}
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    else:
        # the line names what the figure assumes: an amplified one (a secret Poisson
        # sample, which a secagg federation does not claim) read as "per client" alone
        # looked like the federation's figure (review, 2026-12-05)
        detail = [accountant, "per client"]
        if most:
            detail.append(f"the most sampled client likely in {most} of {rounds} rounds")
        if payload["amplified_by_sampling"]:
            detail.append(f"amplified by sampling at q = {sample_rate:g}")
        click.echo(
            f"epsilon = {shown(eps)} at delta = {shown(delta, 6, significant=True)} "
            f"({detail[0]}, {'; '.join(detail[1:])})"
        )
    _amplified_note(sample_rate, most, as_json)


@privacy.command("noise")
@click.option(
    "--epsilon",
    "target",
    # at most secagg simulate's target (MAX_EPSILON): --epsilon 1e300 printed z = 0.000001,
    # which spends 4.9e12 (upper-bounds review, 2026-12-06)
    type=FiniteFloat(0.0, MAX_EPSILON, min_open=True),
    required=True,
    help=f"Budget epsilon (positive, at most {MAX_EPSILON:g}, as secagg simulate's target).",
)
@_DELTA_OPTION
@_SAMPLE_RATE_OPTION
@_ROUNDS_OPTION
@_CLIENTS_OPTION
@_ACCOUNTANT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def privacy_noise(
    target: float,
    delta: float,
    sample_rate: float,
    rounds: int,
    clients: int | None,
    accountant: str,
    as_json: bool,
) -> None:
    """The smallest noise multiplier whose epsilon stays within the budget (with
    --clients and q < 1: the epsilon a federation claims, see `privacy epsilon`)."""
    from secagg.dp import accounting
    from secagg.dp.display import shown

    _delta_for_clients(delta, clients)
    charge = _federation_figure(sample_rate, rounds, clients)
    most, rate, charged = charge.most_rounds, charge.sample_rate, charge.rounds
    slow = _pld_out_of_reach(rate, accountant)
    if slow is not None:
        try:  # more rounds than PLD composes at any noise: milliseconds to tell
            accounting.check_pld_rounds(rate, charged)
        except accounting.PldTooLarge as exc:
            raise _pld_refusal(exc) from exc
        # RDP bounds epsilon from above and PLD is tighter: if RDP meets the budget at
        # the floor, PLD's answer (and its search) lies below it
        # (and where RDP is loose, at a tiny q, the subsampling bound may still tell)
        with _quiet_accountant():
            generous = min(
                accounting.epsilon(PLD_SAMPLED_MIN_NOISE, rate, charged, delta, "rdp"),
                accounting.subsampled_epsilon_bound(PLD_SAMPLED_MIN_NOISE, rate, charged, delta),
            )
        if generous <= target:
            raise click.BadParameter(
                f"{target:g} needs a noise multiplier below {PLD_SAMPLED_MIN_NOISE:g}, {slow}",
                param_hint="'--epsilon'",
            )
    try:
        with _quiet_accountant(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", accounting.NoiseFloorWarning)
            # z rounded up as printed (the line printed it to the nearest 1e-4: 0.2900 for
            # 0.29004, which then spent 20.0038 of a budget of 20), and the epsilon of
            # exactly that z, both from the dp layer (the CLI had its own copy)
            found = accounting.noise_for_budget(
                target, delta, sample_rate, rounds, clients, accountant
            )
            shown_z, z, eps = found.text, found.noise_multiplier, found.epsilon
    except accounting.PldTooLarge as exc:
        raise _pld_refusal(exc) from exc
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except (ValueError, ArithmeticError, MemoryError) as exc:  # ZeroDivisionError at z=1e-300
        raise click.UsageError(_beyond_the_accountant(accountant, exc)) from exc
    floors = [w.message for w in caught if isinstance(w.message, accounting.NoiseFloorWarning)]
    # the budget was met only from far above (PLD's floor): say so, with the printed z's
    # epsilon; the z PLD refused is rounded down (a noise figure never shows more than was
    # meant, and PLD cannot evaluate any z below the refused one either)
    floor = (
        f"the budget is not reachable from above: the pld accountant cannot evaluate "
        f"z = {shown(floors[0].unevaluable, 4, significant=True, lower=True)}, so z = "
        f"{shown_z} is the least noise it found "
        f"within the budget, and it spends only epsilon {shown(eps)} of {target:g}; "
        "--accountant rdp may find less noise"
        if floors
        else None
    )
    if as_json:
        payload = {"noise_multiplier": z, "epsilon": eps, "target_epsilon": target}
        if floor is not None:
            payload |= {"budget_not_reachable_from_above": True, "note": floor}
        payload |= {"delta": delta, "sample_rate": sample_rate, "rounds": rounds}
        payload |= {"accountant": accountant, "unit": "client"}
        payload |= {"amplified_by_sampling": most is None and sample_rate < 1}
        if most is not None:
            payload |= {"clients": clients, "most_rounds_per_client": most}
        click.echo(json.dumps(payload, indent=2))
    else:
        # as privacy epsilon's line: an amplified epsilon is named as such on stdout, not
        # only in the stderr note (review, 2026-12-05)
        amplified = (
            f"; amplified by sampling at q = {sample_rate:g}"
            if most is None and sample_rate < 1
            else ""
        )
        click.echo(
            f"noise multiplier z = {shown_z} (epsilon = {shown(eps)} at delta = "
            f"{shown(delta, 6, significant=True)}{amplified})"
        )
        if floor is not None:
            click.echo(f"note: {floor}", err=True)
    _amplified_note(sample_rate, most, as_json)


@main.group()
def bench() -> None:
    """Benchmarks (JSON on stdout, or in the --out file)."""


def _emit_bench(party: str, result: dict[str, Any], out: str | None) -> None:
    """A ``secagg bench`` run's JSON on stdout, or in ``out`` (whole or not at all) with
    one line on stdout; a write that fails is one line naming the file.

    Why: ``--out``'s folder is checked before the run, yet a folder removed or a disk
    filled while a grid ran ended in a traceback after the whole run (review,
    2026-12-05)."""
    from secagg.apps.bench import emit

    try:
        emit(result, out, click.echo, file_only=True)
    except OSError as exc:
        _fail(party, f"cannot write the results to {out}: {_os_error(exc)}")


def _bench_json_output(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` and ``--out FILE``, the same on every ``secagg bench`` command that
    prints one JSON document (each had its own copy of both).

    ``--json`` is the default and changes nothing; it stays so that scripts passing it
    keep working. ``--out``'s folder is checked before the benchmark runs
    (:func:`_output_path`) and the file is written by :func:`_emit_bench`."""
    command = click.option(
        "--out",
        type=NonEmptyPath(dir_okay=False, writable=True),
        default=None,
        callback=_output_path,
        help="Write the JSON to FILE instead of stdout (one line there says where).",
    )(command)
    return click.option(
        "--json", "as_json", is_flag=True, default=True, help="JSON output (the default)."
    )(command)


@bench.command("masking")
@click.option("--quick", is_flag=True, help="A small grid that runs in seconds.")
@click.option("--n", "ns", type=_CLIENTS, multiple=True, help="Client counts (repeatable).")
@click.option("--d", "ds", type=_LENGTH, multiple=True, help="Vector lengths (repeatable).")
@click.option(
    "--dropout",
    "dropouts",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    multiple=True,
    help="Dropout fractions, in [0, 1).",
)
@click.option(
    "--graph",
    "graphs",
    type=click.Choice(["complete", "harary"]),
    multiple=True,
    help="Graphs (repeatable).",
)
@_bench_json_output
def bench_masking(
    quick: bool,
    ns: tuple[int, ...],
    ds: tuple[int, ...],
    dropouts: tuple[float, ...],
    graphs: tuple[str, ...],
    as_json: bool,
    out: str | None,
) -> None:
    """Client masking, server unmasking and memory vs plaintext sum and raw AES-CTR."""
    from secagg.apps.bench import masking

    grid: dict[str, Any] = dict(masking.QUICK_GRID) if quick else {}
    for name, values in (("ns", ns), ("ds", ds), ("dropouts", dropouts), ("graphs", graphs)):
        if values:
            grid[name] = tuple(values)
    planned = {**masking.GRID, **grid}
    try:
        masking.plan_grid(planned["ns"], planned["dropouts"], planned["graphs"])
    except ConfigurationError as exc:
        names = {
            "num_clients": "--n",
            "dropout_fraction": "--dropout",
            "corrupt_fraction": f"the assumed corrupt fraction ({DEFAULT_CORRUPT_FRACTION})",
        }
        raise _config_error(exc, names) from exc
    n, d = max(planned["ns"]), max(planned["ds"])
    check_memory(
        masking.memory_bytes(n, d),
        f"--n {n} x --d {d} float32 inputs and their masked copies",
        "'--n' / '--d'",
    )
    result = masking.run_benchmark(**grid)
    _emit_bench("secagg bench masking", result, out)


@bench.command("papers", short_help="The SecAgg/SecAgg+ papers' cost figures beside ours.")
@click.option("--quick", is_flag=True, help="Small grids that run in well under a minute.")
@click.option(
    "--out",
    type=NonEmptyPath(file_okay=False, writable=True),
    callback=_output_path,
    default="papers-results",
    show_default=True,
    help="Directory for papers.json, papers.md and the PNG plots.",
)
def bench_papers(quick: bool, out: str) -> None:
    """Bonawitz et al. 2017 and Bell et al. 2020 cost figures, ours beside the papers'."""
    from secagg.apps.bench import papers

    papers.run_and_write(out, quick=quick, echo=click.echo)


@bench.command("dp")
@click.option("--quick", is_flag=True, help="d = 10 000 only: seconds.")
@click.option("--d", "dimensions", type=_LENGTH, multiple=True, help="Vector lengths (repeatable).")
@click.option("--runs", type=_RUNS, default=5, show_default=True, help="Timed runs per step.")
@_bench_json_output
def bench_dp(
    quick: bool, dimensions: tuple[int, ...], runs: int, as_json: bool, out: str | None
) -> None:
    """Per-client cost of clipping, encoding, rotation and noise vs one plaintext pass."""
    from secagg.apps.bench import dp

    dims = dimensions or (dp.QUICK_DIMENSIONS if quick else dp.DIMENSIONS)
    result = dp.run_benchmark(dimensions=dims, runs=runs)
    _emit_bench("secagg bench dp", result, out)


@bench.command("ckks")
@click.option("--quick", is_flag=True, help="n = 4, d = 10 000: seconds.")
@click.option("--n", "ns", type=_CLIENTS, multiple=True, help="Client counts (repeatable).")
@click.option("--d", "ds", type=_LENGTH, multiple=True, help="Vector lengths (repeatable).")
@click.option(
    "--backend",
    "backends",
    type=click.Choice(["plain", "secagg+", "ckks"]),
    multiple=True,
    help="Backends to compare (repeatable; default all three).",
)
@_bench_json_output
def bench_ckks(
    quick: bool,
    ns: tuple[int, ...],
    ds: tuple[int, ...],
    backends: tuple[str, ...],
    as_json: bool,
    out: str | None,
) -> None:
    """CKKS encryption, server addition, decryption and wire size vs masking and plaintext."""
    from secagg.apps.bench import backends as bench_backends

    grid: dict[str, Any] = dict(bench_backends.QUICK) if quick else {}
    for name, values in (("ns", ns), ("ds", ds), ("backends", backends)):
        if values:
            grid[name] = tuple(values)
    planned = {
        "ns": bench_backends.NS,
        "ds": bench_backends.DS,
        "backends": bench_backends.BACKEND_NAMES,
        **grid,
    }
    try:
        bench_backends.plan_grid(planned["ns"], planned["ds"], planned["backends"])
    except ConfigurationError as exc:
        flags = {"num_clients": "--n", "dimension": "--d"}
        raise click.BadParameter(
            f"{', '.join(map(str, planned['ns']))} clients: {_config_error(exc, flags).message}",
            param_hint="'--n'",
        ) from exc
    n, d = max(planned["ns"]), max(planned["ds"])
    check_memory(
        bench_backends.memory_bytes(n, d), f"--n {n} x --d {d} float64 updates", "'--n' / '--d'"
    )
    result = bench_backends.run_benchmark(**grid)
    _emit_bench("secagg bench ckks", result, out)


def _plan_bench_round(num_clients: int, vector_length: int, clients_flag: str, d_flag: str) -> None:
    """Plan a benchmark's SecAgg+ round (k and t) before any work; a round no
    configuration can run is one usage line naming the flag.

    Why: ``bench grpc --clients 1000000000`` issued certificates one by one for an hour
    and more, and ``bench scale --n 1000000000`` started its cells, before the round's
    planning refused them (at most 10^6 clients)."""
    try:
        RoundConfig.create(num_clients, vector_length)
    except ConfigurationError as exc:
        flags = {"num_clients": clients_flag, "vector_length": d_flag}
        raise _config_error(exc, flags) from exc


@bench.command("scale", short_help="Thousands of clients: the in-process and Ray engines.")
@click.option("--quick", is_flag=True, help="60 clients, d = 1000: well under a minute.")
@click.option("--n", "ns", type=click.IntRange(min=3), multiple=True, help="Clients (repeatable).")
@click.option("--d", "dimension", type=_LENGTH, default=None, help="Model size.")
@click.option("--dropout", type=FiniteFloat(0.0, 0.5), default=None, help="Vanishing share (0.05).")
@click.option("--workers", type=_WORKERS, default=None, help="Ray workers (CPUs).")
@_bench_json_output
def bench_scale(
    quick: bool,
    ns: tuple[int, ...],
    dimension: int | None,
    dropout: float | None,
    workers: int | None,
    as_json: bool,
    out: str | None,
) -> None:
    """One SecAgg+ round of n clients on both engines (wall time, memory per worker,
    identical models), then slice-parallel unmasking on 1..workers Ray workers."""
    from secagg.apps.bench import scale as bench_scale_module
    from secagg.runtime.ray_engine import RayUnavailable, require_ray

    grid: dict[str, Any] = dict(bench_scale_module.QUICK) if quick else {}
    if ns:
        grid["ns"] = ns
    if dimension is not None:
        grid["d"] = dimension
    if dropout is not None:
        grid["dropout"] = dropout
    for n in grid.get("ns", bench_scale_module.NS):
        _plan_bench_round(n, grid.get("d", bench_scale_module.D), "--n", "--d")
    try:
        require_ray()
    except RayUnavailable:
        _fail("secagg bench scale", "needs the ray extra: pip install 'secagg[ray]'", 2)
    try:
        result = bench_scale_module.run_benchmark(**grid, workers=workers)
    except bench_scale_module.ScaleBenchmarkError as exc:
        _fail("secagg bench scale", str(exc))
    _emit_bench("secagg bench scale", result, out)


@bench.command("grpc")
@click.option("--quick", is_flag=True, help="12 clients in 3 processes, d = 10 000: seconds.")
@click.option("--clients", type=_CLIENTS, default=None, help="Client count (default 100).")
@click.option(
    "--processes", type=click.IntRange(min=1), default=None, help="Worker processes (default 10)."
)
@click.option("--d", "dimension", type=_LENGTH, default=None, help="Model size (default 1e5).")
@click.option("--rounds", type=_ROUNDS, default=None, help="Rounds (default 3).")
@_bench_json_output
def bench_grpc(
    quick: bool,
    clients: int | None,
    processes: int | None,
    dimension: int | None,
    rounds: int | None,
    as_json: bool,
    out: str | None,
) -> None:
    """A SecAgg+ federation round over gRPC/mTLS vs the same round in-process."""
    from secagg.apps.bench import grpc as bench_grpc_module

    grid: dict[str, Any] = dict(bench_grpc_module.QUICK) if quick else {}
    for name, value in (
        ("clients", clients),
        ("processes", processes),
        ("dimension", dimension),
        ("rounds", rounds),
    ):
        if value is not None:
            grid[name] = value
    _plan_bench_round(
        grid.get("clients", bench_grpc_module.CLIENTS),
        grid.get("dimension", bench_grpc_module.DIMENSION),
        "--clients",
        "--d",
    )
    spread = grid.get("processes", bench_grpc_module.PROCESSES)
    if spread > grid.get("clients", bench_grpc_module.CLIENTS):
        raise click.BadParameter("more worker processes than clients", param_hint="--processes")
    with _warnings_as_lines("secagg bench grpc"):
        result = bench_grpc_module.run_benchmark(**grid)
    _emit_bench("secagg bench grpc", result, out)


@contextlib.contextmanager
def _warnings_as_lines(party: str) -> Iterator[None]:
    """Meanwhile, each Python warning is one line on stderr, ``party: warning: Category:
    message``. Why: ``secagg bench grpc --quick`` printed its federation's
    PrivacyCostWarning in Python's own form, the source path and the line of code under
    it (``return DPConfig(``) among its progress lines (front-door audit, 2026-12-05)."""

    def one_line(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        del filename, lineno, file, line
        text = " ".join(str(message).split())
        click.echo(f"{party}: warning: {category.__name__}: {text}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        yield


@main.group()
def certs() -> None:
    """A development CA: server and per-branch certificates for mTLS."""


@certs.command("init")
@click.option("--dir", "directory", default="certs", show_default=True, type=NonEmptyPath())
@click.option(
    "--server-name",
    "server_names",
    multiple=True,
    help="Host name or IP clients dial (repeatable; default localhost and 127.0.0.1).",
)
@click.option("--force", is_flag=True, help="Replace an existing CA (old certificates die).")
def certs_init(directory: str, server_names: tuple[str, ...], force: bool) -> None:
    """Create the CA, the server certificate and an empty revocation list."""
    names = server_names or ("localhost", "127.0.0.1")
    try:
        made = devca.init_ca(directory, server_names=names, force=force)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # a --dir that is a file, a folder that cannot be written
        raise click.BadParameter(_os_error(exc), param_hint="--dir") from exc
    click.echo(f"CA in {directory} (fingerprint {made.ca_fingerprint[:16]}...)")
    carried = devca.server_names_carried(names)  # once each, as gRPC spells an address
    click.echo(f"server certificate for {', '.join(carried)}: {made.server.certificate}")


@certs.command("issue")
@click.argument("name")
@click.option("--dir", "directory", default="certs", show_default=True, type=NonEmptyPath())
@click.option("--force", is_flag=True, help="Re-issue an existing or revoked name.")
def certs_issue(name: str, directory: str, force: bool) -> None:
    """Issue the certificate and key of branch NAME."""
    try:
        issued = devca.issue_client(directory, name, force=force)
    except MissingCertificate as exc:  # the CA's files, not there or behind a file
        raise click.BadParameter(str(exc), param_hint="--dir") from exc
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # a --dir that is a file, a folder that cannot be written
        raise click.BadParameter(_os_error(exc), param_hint="--dir") from exc
    # the key holder's certificate is issued here too: "the branch" misnamed its party
    click.echo(
        f"{name}: {issued.certificate} and {issued.key} (key: it goes to {name}'s machine only)"
    )
    click.echo(f"fingerprint {issued.fingerprint}")


@certs.command("revoke")
@click.argument("name")
@click.option("--dir", "directory", default="certs", show_default=True, type=NonEmptyPath())
@click.option(
    "--force",
    is_flag=True,
    help="Bar NAME even without a certificate here (one deleted here but still out there).",
)
def certs_revoke(name: str, directory: str, force: bool) -> None:
    """Bar branch NAME (and its current certificate) from the federation.

    A NAME with no certificate in the directory is refused (exit 2), so a typo does not
    pass for a revocation; --force records it anyway."""
    try:
        devca.revoke(directory, name, force=force)
    except MissingCertificate as exc:  # the CA's files, not there or behind a file
        raise click.BadParameter(str(exc), param_hint="--dir") from exc
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # a --dir that is a file, a folder that cannot be written
        raise click.BadParameter(_os_error(exc), param_hint="--dir") from exc
    # the server re-reads the list at each connection, before each round's sampling and
    # every 30 s for the open sessions (docs/deployment.md): an open session ends too
    click.echo(
        f"{name} revoked; the server refuses it from its next connection and ends its "
        "open session within 30 s"
    )


@main.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=NonEmptyPath(exists=True, dir_okay=False),
    help="The federation's TOML file.",
)
@click.option(
    "--init",
    is_flag=True,
    help="Start a new federation: create its state (server.state). Refused when the state "
    "already holds rounds; without it a missing state is an error, never a new federation.",
)
@click.option(
    "--wait",
    default=60.0,
    show_default=True,
    type=FiniteFloat(min=0.0, max=MAX_WAIT_SECONDS),
    help="Seconds to wait for branches (at most a week, 604800).",
)
@click.option(
    "--quiet", is_flag=True, help="Log warnings and errors only (default: INFO, a line a round)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log everything (DEBUG).")
def server(config_path: str, init: bool, wait: float, quiet: bool, verbose: bool) -> None:
    """Run a federation's server over gRPC with mTLS (state in its SQLite file).

    The state is locked (one server per state), checked against its ledger and
    tested for writing before the port is bound. Exit status: 0 when the
    federation finished (or had already finished); 1 when it stopped before its
    last round, or for a state, ledger or network failure (one line naming it);
    2 for a mistake in the options or the config.
    """
    import sqlite3

    from secagg.ledger.chain import LedgerError
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import serve
    from secagg.runtime.store import StateError
    from secagg.transport.base import TransportError
    from secagg.transport.certs import CertificateStoreError

    def one_line(exc: BaseException) -> str:
        return " ".join(str(exc).split()) or type(exc).__name__

    if quiet and verbose:
        _fail("secagg server", "--quiet and -v/--verbose contradict each other: pass one", 2)
    _setup_logging(verbose, quiet)
    try:
        config = FederationConfig.load(config_path)
    except ConfigurationError as exc:
        _fail("secagg server", _config_failure(config_path, exc), 2)
    too_large = _model_past_memory(config_path, config)
    if too_large is not None:  # before the state is opened or the port bound
        _fail("secagg server", too_large, 2)
    state = config.server.state
    try:
        with _sigterm_as_interrupt(), _verdict_said_here(verbose):
            server, results = serve(config, wait_for_clients=wait, init=init)
    except CertificateStoreError as exc:  # the server's own folder: missing, incomplete
        _fail("secagg server", _certificates_failure(config_path, config, exc), 2)
    except ConfigurationError as exc:
        _fail("secagg server", _config_failure(config_path, exc), 2)
    except (StateError, LedgerError, TransportError) as exc:
        _fail("secagg server", one_line(exc))
    except sqlite3.Error as exc:
        _fail("secagg server", f"the state {state} or its ledger: {one_line(exc)}")
    except OSError as exc:
        _fail("secagg server", one_line(exc))
    except SecAggError as exc:
        _fail("secagg server", f"stopped: {one_line(exc)}")
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (_Terminated)
        _stopped("secagg server", exc, _what_a_stop_keeps(state))
    try:
        done = server.completed_rounds()
        if not results and done >= config.rounds:
            click.echo(
                f"federation {config.name} is already finished: {done} of {config.rounds} "
                f"rounds complete (state {state}); nothing to do"
            )
            return
        aborted = sum(1 for result in results if result.status == "aborted")
        click.echo(
            f"federation {config.name}: {done} of {config.rounds} rounds complete "
            f"(this run: {len(results) - aborted} complete, {aborted} aborted)"
        )
        if server.ledger is not None:
            click.echo(
                f"ledger head {server.ledger.anchor()} (publish it: auditors pass it to "
                "secagg audit verify --expect-head, which then detects a ledger cut back)"
            )
        if not server.finished:  # stopped early: the server's stop_reason says why
            why = server.stop_reason or server.budget_reached
            # at the budget, another start would stop the same way: say what would help
            hint = (
                "the budget is all but spent: a new start runs only rounds that still fit "
                "it (raise dp.epsilon_budget or the noise for a new federation)"
                if server.budget_reached is not None
                else "run the server again to continue"
            )
            _fail(
                "secagg server",
                f"federation {config.name} did not finish: {done} of {config.rounds} rounds "
                f"complete{f' ({why})' if why else ''}; {hint}",
            )
    finally:
        if server.ledger is not None:
            server.ledger.close()
        server.store.close()


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


def _hook_module(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--hook module:factory`` names a module Python can find.

    Why: the ``secagg`` command, an installed script, does not search the current
    folder, so ``cd examples/bank_fraud`` and ``--hook dpsgd_hook:make_hook`` (what the
    example's docstring said) ended ``cannot load hook ...: No module named
    'dpsgd_hook'``, with nothing saying where Python looks (front-door audit,
    2026-12-05). The line names the file Python looks for under the folder, since for
    a dotted module that folder is the one above its package: ``PYTHONPATH=/opt/mybank``
    for ``mybank.fraud`` (what docs/deployment.md showed) does not find
    ``/opt/mybank/fraud.py``, and "the folder that holds it" read as that one
    (newcomer's walk-through, 2026-12-05). A malformed spec is left to the runtime's
    own message."""
    del ctx, param
    module = (value or "").partition(":")[0]
    if value is None or value == "demo" or ":" not in value or not module:
        return value
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; an empty or relative name
        found = False
    if not found:
        # the file a dotted name is looked up as: PYTHONPATH names the folder above the
        # top package, not the one holding the file ("PYTHONPATH=/opt/mybank" with
        # /opt/mybank/fraud.py and "mybank.fraud" does not import; the folder is /opt)
        where = module.replace(".", "/") + ".py"
        raise click.BadParameter(
            f"no module {module!r} on Python's path (the secagg command does not look in the "
            f"current folder): install it, or put on PYTHONPATH the FOLDER of FOLDER/{where} "
            f"(PYTHONPATH=FOLDER secagg client ... --hook {value})"
        )
    return value


def _setup_logging(verbose: bool, quiet: bool) -> None:
    """Timestamped log lines for a long-running party: INFO by default (connections,
    rounds), warnings and errors only with ``--quiet``, everything with ``-v``."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    warnings.showwarning = _warning_as_log_line


def _warning_as_log_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """A Python warning (e.g. the config's ``PrivacyCostWarning``) as one timestamped
    WARNING line of the party's log. Why: ``secagg server`` printed it in Python's own
    form, the source file's path and the line of code under it, the first thing an
    operator read at every start (operator pass, 2026-12-04)."""
    del filename, lineno, file, line
    logging.getLogger("secagg.warnings").warning(
        "%s: %s", category.__name__, " ".join(str(message).split())
    )


def _verbosity(function: Any) -> Any:
    """``-v/--verbose`` and ``--quiet``, as the server has them."""
    function = click.option(
        "--quiet", is_flag=True, help="Log warnings and errors only (default: INFO)."
    )(function)
    return click.option("-v", "--verbose", is_flag=True, help="Log everything (DEBUG).")(function)


def _verdict_said_here(verbose: bool) -> contextlib.AbstractContextManager[None]:
    """The runtime's log records of the federation's verdict (finished, or stopped and
    why) silenced, because the command prints it in its own line: an early stop read
    twice, once as an ERROR record (review, 2026-12-05). ``-v`` logs everything."""
    from secagg.runtime.outcome import reported_by_caller

    return contextlib.nullcontext() if verbose else reported_by_caller()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C is (a KeyboardInterrupt), so that a
    party stopped by its service manager takes the same path as one stopped from a
    terminal: one line naming the signal, exit status 128 + its number.

    Why: ``systemctl stop`` (SIGTERM) ended ``secagg server``, ``client`` and
    ``keyholder`` silently (status -15: no line said what was kept), and Ctrl-C on a
    branch or key holder printed click's bare ``Aborted!`` with status 1."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` in the main thread while the block runs (the
    previous handler is put back after); elsewhere than the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        del frame
        raise _Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _what_a_stop_keeps(state: str) -> str:
    """What a server stopped by a signal leaves, read from its state: the round in
    flight is named only when there was one (a running row, which the next start
    records as aborted). Before, a server stopped while waiting for its branches also
    said "a round in flight is recorded as aborted"."""
    from secagg.runtime.store import rounds_in_flight

    flight = rounds_in_flight(state)
    if flight is None:  # the state cannot be read now: say what holds either way
        return (
            "completed rounds are kept; a round in flight, if any, is recorded as aborted "
            "at the next start"
        )
    if not flight:
        return "completed rounds are kept; no round was in flight"
    numbers = ", ".join(str(n) for n in flight)
    return (
        f"completed rounds are kept; round {numbers} was in flight and is recorded as "
        "aborted at the next start"
    )


def _stopped(party: str, exc: KeyboardInterrupt, what_happens: str) -> NoReturn:
    """The one line of a party stopped by Ctrl-C or SIGTERM, and 128 + the signal's
    number as its status (130, 143), as a shell reports a process the signal ended."""
    signum = exc.signum if isinstance(exc, _Terminated) else int(signal.SIGINT)
    how = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
    _fail(party, f"stopped by {how}: {what_happens}", 128 + signum)


#: what a server holds per parameter at the least, whatever the backend: its model and
#: its FedAvgM velocity, 64-bit floats each (a round's inputs and sums come on top)
SERVER_BYTES_PER_PARAMETER = 16


def _model_past_memory(config_path: str, config: FederationConfig) -> str | None:
    """The one line refusing a ``federation.dimension`` whose model this machine cannot
    hold, or None.

    Why: the key is bounded by the wire format (:data:`MAX_DIMENSION`), not by memory, and
    the server allocates its model and velocity when it is built: 2**31 parameters need
    32 GiB before any round, which ended in a MemoryError traceback or the kernel's
    out-of-memory killer after the state was opened and the port bound (config review,
    2026-12-05). A machine's memory is a fixed bound, so refusing past it is never wrong."""
    limit = cli_types.memory_limit()
    needed = config.dimension * SERVER_BYTES_PER_PARAMETER
    if limit is None or needed <= limit:
        return None
    need, have = cli_types.size_in_gib(needed), cli_types.size_in_gib(limit)
    return (
        f"--config {config_path}: federation.dimension = {config.dimension}: the server's "
        f"model and its momentum alone need {need} of memory, more than the {have} this "
        "machine has"
    )


def _config_failure(config_path: str, exc: BaseException) -> str:
    """A federation config's error as the one line that names ``--config`` and the file
    once (``secagg server: x.csv: x.csv is not valid TOML`` named the file twice and the
    flag not at all)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if message.startswith((f"{config_path} ", f"{config_path}:")):
        return f"--config {message}"
    return f"--config {config_path}: {message}"


def _certificates_failure(config_path: str, config: FederationConfig, exc: BaseException) -> str:
    """A server's certificate folder that does not hold what it needs, as the one line
    that names the key it came from, ``[server] certificates``, and, for a relative
    path, the folder it was read from.

    Why: ``secagg server --config fed/federation.toml`` started from another folder read
    ``--config fed/federation.toml: CA certificate not found at certs/ca.pem``, which named
    neither the key nor that a relative path is taken from the current folder, not the
    config file's (newcomer's walk-through, 2026-12-05)."""
    folder = str(config.server.certificates)
    where = (
        ""
        if os.path.isabs(folder)
        else f" (a relative path: read from the current folder {os.getcwd()}, not the config's)"
    )
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"--config {config_path}: [server] certificates = {folder!r}{where}: {message}"


def _fail(party: str, message: str, status: int = 1) -> NoReturn:
    """The one line a party prints when it stops on an error it cannot fix itself."""
    click.echo(f"{party}: {message}", err=True)
    sys.exit(status)


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


def _certs_error(exc: BaseException, name: str) -> click.BadParameter:
    """A certificate folder's missing or unreadable file as a usage error naming --certs.

    Why: ``client --certs base.toml`` exited 1 with ``[Errno 20] Not a directory``, a
    failure the user could not tell was their option (CLI audit, 2026-12-05)."""
    return click.BadParameter(_one_line(exc, name), param_hint="'--certs'")


def _one_line(exc: BaseException, name: str = "") -> str:
    """An error's message on one line, without a leading ``name:`` (the CLI adds it)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{name}: "
    return message[len(prefix) :] if name and message.startswith(prefix) else message


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
            return (
                f"TLS handshake with {target} failed: the server's certificate is not "
                f"trusted by {layout.ca_cert} ({exc.verify_message}); is that the "
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
        click.option("--name", required=True, help=name_help),
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
    """``--connect-timeout`` and ``--give-up-after``, the same for every party that
    dials the server (``secagg keyholder`` lacked the first while ``secagg client`` had
    it: one definition keeps them alike)."""
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
    """A TLS alert from the server is its verdict on this party's certificate; anything
    else (not TLS at all, no common version) is named as it is."""
    reason = getattr(exc, "reason", None)
    said = str(reason).replace("_", " ").lower() if reason else str(exc)
    if "alert" in said:
        return (
            f"TLS handshake with {target} failed: the server refused this party's "
            f"certificate ({said}); was {cert} issued by the federation's CA?"
        )
    return f"TLS handshake with {target} failed ({said}): is {target} a secagg server?"


@main.command()
@_dialling_party("This branch's name (its certificate's).")
@click.option(
    "--hook",
    default="demo",
    show_default=True,
    callback=_hook_module,
    help="'demo' or 'module:factory' (the module importable: installed, or its folder on "
    "PYTHONPATH).",
)
@click.option(
    "--dimension",
    # a federation's bound (federation.dimension): --dimension 2**70 was an OverflowError
    # traceback from numpy, and 3 000 000 000 allocated until killed (upper-bounds review)
    type=click.IntRange(1, MAX_DIMENSION),
    required=True,
    help=f"Model parameters (at most {MAX_DIMENSION}, a federation's largest model).",
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=None, help="Stop after this many rounds."
)
@click.option(
    "--idle",
    type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True, allow_inf=True),
    default=900.0,
    show_default=True,
    help="Give up when the server is silent this long between rounds (inside a round the "
    "branch waits for the deadline the server announced). Keep it above the server's "
    "quorum_wait_seconds (600 by default), during which a lone connected branch hears "
    "nothing; at most a week (604800); 'inf': never.",
)
@_redialling
@_verbosity
@click.option(
    "--policy",
    "policy_path",
    type=NonEmptyPath(exists=True, dir_okay=False),
    help="A TOML file whose [branch] table is this branch's policy (options below override it).",
)
@click.option(
    "--allow-plain",
    is_flag=True,
    default=None,
    help="Accept the plain backend, which sends the update in clear (refused by default).",
)
@click.option(
    "--key-holder-fingerprint",
    default=None,
    help="The CKKS key holder's fingerprint (64 hex digits); CKKS rounds need it.",
)
@click.option(
    "--max-clip",
    # bounded as a federation's dp.clip (MAX_CLIP): 1e300 capped nothing any round can have
    type=FiniteFloat(0.0, MAX_CLIP, min_open=True),
    default=None,
    help=f"Refuse rounds clipping above this (at most {MAX_CLIP:g}, a federation's largest clip).",
)
@click.option(
    "--min-noise-multiplier",
    # no round satisfies more than a federation's largest z: 1e300 started a branch that
    # then refused every round (upper-bounds review, 2026-12-06)
    type=FiniteFloat(0.0, MAX_NOISE_MULTIPLIER, min_open=True),
    default=None,
    help="Join only rounds where this branch adds a distributed noise share of at least this "
    f"z (at most {MAX_NOISE_MULTIPLIER:g}, a federation's largest).",
)
@click.option(
    "--expected-clients",
    type=click.IntRange(min=1),
    default=None,
    help="The cohort this branch expects.",
)
@click.option(
    "--min-threshold",
    type=click.IntRange(min=1),
    default=None,
    help="A floor on the Shamir threshold.",
)
@click.option(
    "--require-active",
    is_flag=True,
    default=None,
    help="Join only the active (malicious-server) variant of the masking backends.",
)
@click.option(
    "--epsilon-budget",
    type=FiniteFloat(0.0, min_open=True),
    default=None,
    help="This branch's own privacy budget: it takes only rounds where it adds its own "
    "distributed noise share, and none that would take its epsilon (its own accounting, "
    "kept in --state) past this. Needs --delta and --state.",
)
@click.option(
    "--delta",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="The delta of --epsilon-budget (well below 1 over the customers this branch protects).",
)
@click.option(
    "--federation",
    default=None,
    help="The federation this branch joins (the server's [federation] name): a round of "
    "any other is refused before anything is trained or sent. Without it the branch joins "
    "the federation the server names at the first round.",
)
@click.option(
    "--state",
    "state_path",
    default=None,
    help="This branch's state file: the federation its rounds belong to and the last round "
    "number it started, so that a restarted branch still refuses a round it already ran "
    "and a round of another federation (created if missing; one file per branch and "
    "federation). Without it the branch remembers rounds only while it runs.",
)
def client(
    target: str,
    server_name: str | None,
    name: str,
    certificates: str,
    hook: str,
    dimension: int,
    rounds: int | None,
    idle: float,
    connect_timeout: float,
    give_up_after: float,
    policy_path: str | None,
    verbose: bool,
    quiet: bool,
    state_path: str | None,
    **policy_options: object,
) -> None:
    """Run one branch: dial the server, train locally, send only masked updates.

    The branch enforces its own policy: a round weaker than it (the plain backend,
    a CKKS key that is not the pinned key holder's, a larger clip, a smaller noise
    share, a lower threshold) or of another federation than --federation is refused
    before anything of the update leaves, and the command exits with status 3. With
    --state it keeps the last round it started, and its federation, across restarts
    and refuses a round at or below it, or of another federation (exit status 2).
    With --epsilon-budget (and --delta) it keeps its own privacy budget, in --state
    (required with it: a spend kept in memory restarts from 0): a round it cannot
    account for, or one that would take its epsilon past the budget, is refused before
    training (exit status 3); the summary line says the epsilon spent.

    Exit status: 0 when the server announced that the federation finished (or after
    --rounds rounds); 1, with one line naming the cause, when the federation was
    stopped before it finished, the server cannot be reached, the TLS handshake fails,
    the server refuses this branch, the server runs an older secagg release (its round
    start is of an older wire version: upgrade the server), or the branch gave up
    redialling; 2 for a mistake in its options or files (a model whose size is not the
    federation's included, and a --state file that cannot be read or written).
    """
    import math

    from secagg.runtime.branch_state import BranchStateError
    from secagg.runtime.client import BranchRefused, ServerOutdated
    from secagg.runtime.launch import load_hook, run_branch
    from secagg.transport.base import TransportError
    from secagg.transport.certs import CertificateStoreError

    # the model, the update and a round's masked copy, 8 bytes a parameter each (the
    # demo hook's target is a fourth): --dimension 2147483648 (within the federation's
    # bound) allocated until the machine's memory ran out (upper-bounds review, 2026-12-05)
    check_memory(
        32 * dimension, f"--dimension {dimension} (a model and its round copies)", "'--dimension'"
    )
    _setup_logging(verbose, quiet)
    try:
        policy = _branch_policy(policy_path, policy_options)
        _check_budget_is_kept(policy, policy_options, state_path, name)
        with _sigterm_as_interrupt(), _verdict_said_here(verbose):
            stats = run_branch(
                target,
                name,
                load_hook(hook, name, dimension),
                certificates,
                policy=policy,
                rounds=rounds,
                idle_timeout=None if math.isinf(idle) else idle,
                connect_timeout=connect_timeout,
                give_up_after=None if math.isinf(give_up_after) else give_up_after,
                dimension=dimension,
                name_override=server_name,
                state=state_path,
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (_Terminated)
        _stopped(
            f"secagg client: {name}",
            exc,
            "nothing more of this branch's update leaves; a round in flight goes on without "
            "it (a dropout), and the branch rejoins the next round once started again",
        )
    except BranchRefused as exc:
        _fail("secagg client", f"{name} refused {exc}", 3)
    except ServerOutdated as exc:  # the server's side, as a refusal of this branch: 1
        _fail("secagg client", f"{name}: {_one_line(exc, name)}", 1)
    except BranchStateError as exc:  # its state file: named by the flag that gave it
        _fail("secagg client", f"{name}: --state {_one_line(exc, name)}", 2)
    except CertificateStoreError as exc:  # missing, unreadable, a file for a folder
        raise _certs_error(exc, name) from None
    except ConfigurationError as exc:  # its files, its policy, its model's dimension
        _fail("secagg client", f"{name}: {_one_line(exc, name)}", 2)
    except TransportError as exc:  # cannot connect, refused, gave up redialling
        _fail("secagg client", f"{name}: {_connection_failure(exc, target, certificates, name)}")
    except (SecAggError, OSError) as exc:
        _fail("secagg client", f"{name}: {_one_line(exc, name)}")
    own = "".join(  # rounds it refused, left or lost: not "completed" (review, 2026-12-05)
        f"{count} {what}, "
        for count, what in (
            (getattr(stats, "rounds_refused", 0), "refused by its policy"),
            (getattr(stats, "rounds_left", 0), "left"),
            (getattr(stats, "rounds_lost", 0), "lost"),
        )
        if count
    )
    summary = (
        f"{name}: {stats.rounds_completed} rounds completed, {stats.rounds_aborted} aborted, "
        f"{own}{stats.refused_messages} messages refused{_budget_summary(stats)}"
    )
    outcome = getattr(stats, "outcome", None)
    if outcome == "stopped":  # the server announced an end before the last round
        reason = getattr(stats, "end_reason", "") or "no reason given"
        _fail("secagg client", f"{summary}; the federation stopped before it finished: {reason}")
    click.echo(summary + ("; the federation finished" if outcome == "finished" else ""))


def _check_budget_is_kept(
    policy: BranchPolicy, options: dict[str, object], state_path: str | None, name: str
) -> None:
    """Refuse a branch budget without ``--state`` (one line, exit 2), before anything is
    dialled.

    Why refuse rather than warn: a budget kept in memory starts again from 0 whenever the
    process restarts, and the server decides when it stops. It announces the federation's
    end early (exit 1), or runs the round the budget refuses (exit 3), and the service
    manager the deployment guide recommends (``Restart=on-failure``) starts the branch
    again with its whole budget: round after round, as if it had none (review of the
    branch budget, 2026-12-05). A state file costs nothing; the library's
    :class:`~secagg.runtime.client.FederationClient` still keeps a spend in memory (with
    a warning) for simulations and tests."""
    if policy.epsilon_budget is None or state_path is not None:
        return
    given = (
        "--epsilon-budget"
        if options.get("epsilon_budget") is not None
        else "branch.epsilon_budget (--policy)"
    )
    _fail(
        "secagg client",
        f"{name}: {given} needs --state: without a state file the spend is kept in memory "
        "and starts again from 0 whenever the branch restarts, which the server can cause "
        "(an early end exits 1, a refused round 3; a service manager then restarts it)",
        2,
    )


def _budget_summary(stats: Any) -> str:
    """``; epsilon spent 1.2346 of its budget 3.0000 (delta 1e-06)`` for a branch with its
    own budget (branch.epsilon_budget), rounded up; nothing without one."""
    from secagg.dp.display import shown

    spent = getattr(stats, "epsilon_spent", None)
    budget = getattr(stats, "epsilon_budget", None)
    delta = getattr(stats, "privacy_delta", None)
    if spent is None or budget is None or delta is None:
        return ""
    return (
        f"; epsilon spent {shown(spent)} of its budget {shown(budget)} "
        f"(delta {shown(delta, 4, significant=True)})"
    )


def _read_table(path: str, table: str) -> dict[str, Any]:
    """The one ``[table]`` of a party's own TOML file; other tables are an error, with
    the likely spelling (``[brnach]``: did you mean [branch]?), as the federation config
    gives it: without it a misspelt table was only "unknown" (review, 2026-12-05)."""
    from secagg.errors import closest_spelling
    from secagg.runtime.config import read_toml

    data = read_toml(path)
    unknown = sorted(set(data) - {table})
    if unknown:
        near = [name for name in unknown if closest_spelling(name, {table}) is not None]
        if len(unknown) == 1 and near:
            hint = f" (did you mean [{table}]?)"
        elif near:
            hint = " (" + "; ".join(f"[{name}]: did you mean [{table}]?" for name in near) + ")"
        else:
            hint = ""
        raise ConfigurationError(f"{path}: unknown sections {unknown}; expected [{table}]{hint}")
    section = data.get(table, {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"{path}: {table} must be a table ([{table}]), not a value")
    return dict(section)


def _branch_policy(path: str | None, options: dict[str, object]) -> BranchPolicy:
    """The ``[branch]`` table of ``path`` (if given), overridden by the options set."""
    section: dict[str, object] = _read_table(path, "branch") if path is not None else {}
    typed = {key: value for key, value in options.items() if value is not None}
    section.update(typed)
    try:
        return BranchPolicy.from_dict(section)
    except ConfigurationError as exc:
        # a value typed as an option is named as that option, not as the policy file's
        # key: ``--max-clip -1`` said ``branch.max_clip must be ...`` (CLI audit, 2026-12-05)
        # (every such key: ``--epsilon-budget needs branch.delta`` named a flag and a key)
        message = str(exc)
        named = [key for key in typed if re.search(rf"\bbranch\.{key}\b", message)]
        for key in named:
            message = re.sub(rf"\bbranch\.{key}\b", "--" + key.replace("_", "-"), message)
        if named:
            flag = "--" + named[0].replace("_", "-")
            raise click.BadParameter(message, param_hint=f"'{flag}'") from None
        raise


def _key_holder_settings(path: str | None, key: str | None) -> tuple[dict[str, Any], Any]:
    """The ``[key_holder]`` table of ``path`` (paths in it relative to its folder) and
    the folder; ``--key`` overrides its ``key``."""
    from pathlib import Path

    section = _read_table(path, "key_holder") if path is not None else {}
    base = Path(path).resolve().parent if path is not None else None
    if key is not None:
        section["key"] = str(Path(key).resolve())
    return section, base


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
    holder = config.backend.key_holder
    if holder is None:
        _fail(
            party, f"--config {config_path}: the {config.backend.name} backend has no key holder", 2
        )
    if holder != name:
        _fail(
            party,
            f"--name {name} is not this federation's key holder: --config {config_path} names "
            f"{holder!r} ([backend] key_holder), the only name its server admits as one",
            2,
        )
    return config


@main.command("keyholder-init")
@click.option("--config", "config_path", required=True, type=NonEmptyPath(exists=True))
@click.option("--key", "key_path", required=True, type=NonEmptyPath(), help="Where to write it.")
def keyholder_init(config_path: str, key_path: str) -> None:
    """Make the key holder's key for a federation and print the fingerprint branches pin."""
    from pathlib import Path

    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import make_key_holder_key

    # each mistake is one line with the command's prefix, as the other commands print
    # theirs (it was click's "Error: --key: ..."), naming the flag; exit status 2
    party = "secagg keyholder-init"
    if Path(key_path).is_dir():  # "exists; a new key would orphan every pin" misled
        _fail(party, f"--key {key_path} is a folder: give the key file's path in it", 2)
    if Path(key_path).exists():
        _fail(party, f"--key {key_path} exists; a new key would orphan every pin", 2)
    try:
        config = FederationConfig.load(config_path)
    except ConfigurationError as exc:
        _fail(party, _config_failure(config_path, exc), 2)
    try:
        fingerprint = make_key_holder_key(config, key_path)
    except OSError as exc:  # a folder that does not exist or cannot be written
        _fail(party, f"--key {key_path}: {_os_error(exc)}", 2)
    except ConfigurationError as exc:
        _fail(party, _config_failure(config_path, exc), 2)
    click.echo(f"key written to {key_path} (mode 0600: the secret key; keep it here only)")
    click.echo(f"fingerprint {fingerprint.hex()}")
    click.echo("every branch pins it: key_holder_fingerprint in [branch], or")
    click.echo(f"  secagg client ... --key-holder-fingerprint {fingerprint.hex()}")


@main.command()
@_dialling_party("The key holder's name (its certificate's).")
@click.option(
    "--idle",
    type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True, allow_inf=True),
    default=None,
    help="Stop after this many seconds of silence, at most a week (604800). Default: with "
    "--config, the longest silence of that server towards its key holder "
    "(quorum_wait_seconds + round_seconds + 30 s); without, 600. The server says nothing "
    "to its key holder before round 1: keep it above the server's --wait when that is "
    "longer; 'inf': never.",
)
@_redialling
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
    "key); max_decryptions is required when noise_stddev is set.",
)
@click.option("--key", "key_path", default=None, help="The key file keyholder-init wrote.")
@click.option(
    "--backend",
    default="ckks",
    show_default=True,
    help="Without --config: the backend whose key this party holds (a key made per run, "
    "which branches cannot pin).",
)
@_verbosity
def keyholder(
    target: str,
    server_name: str | None,
    name: str,
    certificates: str,
    idle: float | None,
    connect_timeout: float,
    give_up_after: float,
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
    reached or refuses this party, or the key holder gave up redialling; 2 for a
    mistake in its options or files."""
    import math

    from secagg.runtime.launch import run_key_holder
    from secagg.transport.base import TransportError
    from secagg.transport.certs import CertificateStoreError

    _setup_logging(verbose, quiet)
    config = _key_holders_federation(config_path, name) if config_path is not None else None
    try:
        settings, base = _key_holder_settings(policy_path, key_path)
        if "key" in settings and config_path is None:
            raise ConfigurationError(
                "--key needs --config: a key is used only once it matches the key holder "
                "pinned in the federation's config"
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
    except ConfigurationError as exc:
        _fail("secagg keyholder", f"{name}: {_one_line(exc, name)}", 2)
    except TransportError as exc:
        _fail("secagg keyholder", f"{name}: {_connection_failure(exc, target, certificates, name)}")
    except (SecAggError, OSError) as exc:
        _fail("secagg keyholder", f"{name}: {_one_line(exc, name)}")
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


main.add_command(simulate)
main.add_command(audit)


def run() -> NoReturn:
    """The ``secagg`` command: :func:`main`, then the exit.

    A command that opened gRPC sessions (server, client, keyholder, bench grpc) leaves
    through :func:`~secagg.transport.process.exit_process`, skipping gRPC's teardown,
    which can hang a process that has finished its work (see that module). Every
    other command exits normally. Tests call :func:`main` (click's runner), not this.
    """
    try:
        main()  # standalone: click always ends with SystemExit
    except SystemExit as exc:
        code: object = exc.code
    else:  # pragma: no cover - click's standalone mode never returns
        code = 0
    if "secagg.transport.grpc_transport" in sys.modules:
        from secagg.transport.process import exit_process

        exit_process(code)
    sys.exit(code)  # type: ignore[arg-type]


if __name__ == "__main__":
    run()
