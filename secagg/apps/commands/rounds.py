"""``secagg round`` (one secure-aggregation round in memory, checked against the plaintext
sum) and ``secagg params`` (the k and t a round of that size runs with).

Both plan with :meth:`~secagg.protocol.RoundConfig.create` and name its refusals by the
flags typed (:func:`~secagg.apps.commands.common._config_error`).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from typing import Any

import click
import numpy as np

from secagg.apps.cli_types import FiniteFloat, check_memory
from secagg.apps.commands.common import _LENGTH, _config_error
from secagg.apps.json_output import dumps
from secagg.errors import ConfigurationError, RoundAborted
from secagg.protocol import PHASES, RoundConfig, run_round
from secagg.protocol.config import DEFAULT_MAX_CLIENTS
from secagg.protocol.messages import MAX_POPULATION

#: ``secagg round``'s exit status for an aborted round (2 is click's, for a usage mistake)
ROUND_ABORTED_EXIT = 3

#: Phases a simulated client may vanish before (the advertise phase is left
#: out of the random schedule: a client that never shows up is simply absent).
_DROPOUT_PHASES = PHASES[1:]


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
        click.echo(dumps(payload))
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


#: ``secagg round --k``'s largest value: a client of the largest cohort a client joins
#: by default (its policy's max_clients) has this many neighbours at most
MAX_DEGREE = DEFAULT_MAX_CLIENTS - 1

#: ``round``'s flags for RoundConfig's keys
_ROUND_FLAGS = {
    "num_clients": "--clients",
    "vector_length": "--dim",
    "corrupt_fraction": "--corrupt",
    "dropout_fraction": "--tolerated-dropout",
}


def _round_refusal(exc: ConfigurationError, degree: int | None) -> click.BadParameter:
    """RoundConfig's refusal of ``round``'s values, naming only the flag at fault.

    Why: k and t by their flags: "a Harary graph needs an even degree k in [2, 4]" named
    neither --k nor, for a threshold past k + 1, --threshold. But a threshold outside
    [1, k + 1] is the threshold's mistake: its line named ``'--threshold' / '--k'``,
    even when no --k was typed (k was the SecAgg+ search's) and, with one, for a k valid
    on its own (review, 2026-12-06). ``k`` reads as the flag only where --k was typed."""
    names = {**_ROUND_FLAGS, "threshold": "--threshold", "k": "--k" if degree is not None else "k"}
    error = _config_error(exc, names)
    if str(exc).startswith("threshold must be in "):  # k + 1 is its bound, not its fault
        error.param_hint = ["--threshold"]
    return error


def _population_option(function: Any) -> Any:
    """``--population``, shared by ``round`` and ``params``."""
    return click.option(
        "--population",
        type=click.IntRange(2, MAX_POPULATION),
        default=None,
        help="Clients the round is drawn from (a federation that samples its rounds): k "
        "and t are sized for the colluders of all of them, any of whom the server may put "
        "in the round (default: the round is its own population).",
    )(function)


def _check_population(population: int | None, num_clients: int) -> None:
    """A population of fewer clients than the round is no population it was drawn from:
    the flag's mistake, in one line."""
    if population is not None and population < num_clients:
        raise click.BadParameter(
            f"{population} is fewer than --clients {num_clients}: a round is drawn from a "
            "population of at least its own clients",
            param_hint="'--population'",
        )


def _population_refusal(
    error: click.BadParameter, cause: ConfigurationError, population: int | None
) -> click.BadParameter:
    """A round too small for its population's colluders: the round's size, the
    population and the fraction refuse it together, so all three flags are named."""
    if population is not None and "drawn from a population" in str(cause):
        error.param_hint = ["--clients", "--population", "--corrupt"]
    return error


def _out_of_memory(num_clients: int, vector_length: int) -> click.BadParameter:
    """A round that fit the lower bound but not the memory free: one line, not a
    MemoryError traceback."""
    return click.BadParameter(
        f"--clients {num_clients} x --dim {vector_length} ran out of memory",
        param_hint="'--clients' / '--dim'",
    )


@click.command("round")
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
@click.option(
    "--bits",
    type=click.Choice(["32", "64"]),
    default="32",
    show_default=True,
    help="Width of a masked coordinate: inputs, masks and the sum are taken modulo 2^bits.",
)
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
@_population_option
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
    population: int | None,
    as_json: bool,
) -> None:
    """Run one secure-aggregation round in memory and check its sum.

    Exit status: 0 when the round completed and its sum equals the plaintext sum of the
    included inputs; 1 when it completed with another sum; 2 for a mistake in the
    options; 3 when the round aborted (fewer survivors than the threshold: no sum)."""
    width = int(bits)
    _check_population(population, num_clients)
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
            population=population,
        )
    except ConfigurationError as exc:
        raise _population_refusal(_round_refusal(exc, degree), exc, population) from exc
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
    if population is not None:
        payload["config"]["population"] = population
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
            population=population,
        )
    except MemoryError:  # past the lower bound above, with what else the round holds
        raise _out_of_memory(num_clients, vector_length) from None
    except RoundAborted as exc:
        payload.update(status="aborted", abort_reason=exc.reason)
        _emit(payload, as_json)
        # not 2: a script must tell an aborted round from a mistake in its options
        sys.exit(ROUND_ABORTED_EXIT)
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


@click.command()
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
@_population_option
def params(
    num_clients: int,
    corrupt: float,
    dropout: float,
    semi_malicious: bool,
    population: int | None,
) -> None:
    """Show the SecAgg+ neighbour count k and threshold t for a cohort.

    The numbers a round of this size runs with, as the server plans it, colluder
    floor included.
    \f
    Why: ``RoundConfig.create``'s figures; before, this printed the bare graph search,
    k = 2, t = 2 for 4 to 10 clients, where the rounds ran k = 4, t = 3 or the complete
    graph (network audit, 2026-12-03). The history stays here, after click's ``\\f``,
    out of ``--help`` (a newcomer read "(network audit, 2026-12-03)" and RST markup
    there, walk-through of 2026-12-05).

    ``--population`` (second review of colluders, 2026-12-07): a sampled round is
    planned for its population's colluders (``RoundConfig.create(population=...)``),
    and an operator had no way to see the k and t, or the refusal, of such a round."""
    _check_population(population, num_clients)
    try:
        config = RoundConfig.create(
            num_clients,
            1,
            active=semi_malicious,
            dropout_fraction=dropout,
            corrupt_fraction=corrupt,
            population=population,
        )
    except ConfigurationError as exc:
        error = _config_error(exc, {**_ROUND_FLAGS, "dropout_fraction": "--dropout"})
        raise _population_refusal(error, exc, population) from exc
    colluders = f"tolerates {config.tolerated_colluders} colluders"
    if population is not None and population > num_clients:
        colluders += (
            f"; drawn from a population of {population}, sized for its {config.colluders} colluders"
        )
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
