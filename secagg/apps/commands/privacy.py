"""``secagg privacy epsilon`` and ``secagg privacy noise``: the DP-FedAvg accountant for
users and auditors, with the options both share and the refusals of values the
accountant cannot compute with.

Every figure comes from the dp layer (:func:`~secagg.dp.accounting.plan_epsilon`,
:func:`~secagg.dp.accounting.noise_for_budget`); this module only checks the flags,
quiets the library's noise and prints.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import click

from secagg.apps.cli_types import FiniteFloat
from secagg.apps.commands.common import MAX_FEDERATION_ROUNDS
from secagg.apps.json_output import dumps
from secagg.apps.simulation.config import MAX_EPSILON
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError
from secagg.protocol.graph_params import MAX_NUM_CLIENTS


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


@click.group()
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
    # at most the largest round secagg plans (MAX_NUM_CLIENTS, 10^6: a masking federation
    # of more is refused at load, and no branch decodes a round of more): -N 2**70 printed
    # a figure for a federation no server can run (review, 2026-12-06)
    type=click.IntRange(1, MAX_NUM_CLIENTS),
    default=None,
    help=f"The federation's clients (at most {MAX_NUM_CLIENTS}, the largest round secagg "
    "plans): with q < 1, the figure a secagg federation claims (each client charged for "
    "its own rounds, no amplification by sampling).",
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
    "--rounds",
    "-T",
    # at most MAX_FEDERATION_ROUNDS (10^9): -T 2**70 printed epsilon 3.95e20 for a
    # federation no server can run (upper-bounds review, 2026-12-06)
    type=click.IntRange(1, MAX_FEDERATION_ROUNDS),
    required=True,
    help=f"Rounds (at least 1, at most {MAX_FEDERATION_ROUNDS}: past any federation's life).",
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
        click.echo(dumps(payload))
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
        click.echo(dumps(payload))
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
