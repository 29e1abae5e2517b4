"""``secagg audit verify | report | empirical``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from secagg.errors import ConfigurationError


@click.group()
def audit() -> None:
    """Check a privacy ledger, report it, or estimate epsilon empirically."""


def _key(pubkey: str | None) -> bytes | None:
    from secagg.ledger.chain import load_public_key

    return None if pubkey is None else load_public_key(pubkey)


@audit.command("verify")
@click.argument("ledger", type=click.Path(dir_okay=False))
@click.option(
    "--pubkey",
    type=click.Path(dir_okay=False),
    help="The ledger's public key (PEM) as the auditor received it.",
)
@click.option("--json", "as_json", is_flag=True)
def verify(ledger: str, pubkey: str | None, as_json: bool) -> None:
    """Check the chain, every signature and every epsilon claim; exit 1 on any failure."""
    from secagg.ledger.verify import verify_ledger

    try:
        result = verify_ledger(ledger, _key(pubkey))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except Exception as exc:
        click.echo(f"FAILED: {ledger} cannot be read as a ledger: {exc}", err=True)
        sys.exit(1)
    last = result.epsilons[-1][1] if result.epsilons else None
    payload = {
        "ok": result.ok,
        "rows": len(result.chain.rows),
        "first_failure": result.first_failure,
        "public_key": result.chain.public_key.hex(),
        "key_source": result.chain.key_source,
        "head_hash": result.chain.head_hash,
        "epsilon": None if last is None else (str(last) if last == float("inf") else last),
    }
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    elif result.ok:
        click.echo(
            f"VERIFIED: {payload['rows']} rows, chain and signatures intact, every "
            f"epsilon claim follows; cumulative epsilon {payload['epsilon']}"
        )
        click.echo(f"head hash (keep it to detect a rollback): {result.chain.head_hash}")
        if pubkey is None:
            click.echo(
                "note: checked against the key embedded in the ledger; pass --pubkey "
                "with the key you received to rule out a re-signed ledger"
            )
    else:
        click.echo(f"FAILED: {result.first_failure}", err=True)
    if not result.ok:
        sys.exit(1)


@audit.command("report")
@click.argument("ledger", type=click.Path(dir_okay=False))
@click.option("--pubkey", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=".", show_default=True)
def report(ledger: str, pubkey: str | None, out: str) -> None:
    """Write ledger-report.md / .html / .png for a compliance officer."""
    from secagg.ledger.report import write_report

    try:
        written = write_report(ledger, out, _key(pubkey))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    for path in written:
        click.echo(str(Path(path)))


@audit.command("empirical")
@click.option(
    "--noise-multiplier",
    "-z",
    type=float,
    default=5.0,
    show_default=True,
    help="Central noise std / clip of the audited run (0: no noise).",
)
@click.option("--rounds", type=int, default=10, show_default=True)
@click.option(
    "--canaries",
    type=int,
    default=400,
    show_default=True,
    help="Inserted canary clients (as many more are held out).",
)
@click.option("--branches", type=int, default=8, show_default=True)
@click.option("--delta", type=float, default=1e-5, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Replay seed (data, canaries, noise); default: fresh CSPRNG draws.",
)
@click.option("--json", "as_json", is_flag=True)
def empirical(
    noise_multiplier: float,
    rounds: int,
    canaries: int,
    branches: int,
    delta: float,
    seed: int | None,
    as_json: bool,
) -> None:
    """One-shot empirical epsilon with canary clients (Andrew et al., ICLR 2024)."""
    import warnings

    from secagg.apps.audit.empirical import run_canary_audit

    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    try:
        estimate = run_canary_audit(
            noise_multiplier=noise_multiplier,
            rounds=rounds,
            canaries=canaries,
            branches=branches,
            delta=delta,
            seed=seed,
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    payload = {
        k: (str(v) if isinstance(v, float) and v == float("inf") else v)
        for k, v in estimate.as_dict().items()
    }
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        f"canary audit: {rounds} rounds, {branches} branches + {canaries} canaries "
        f"({canaries} held out), d = {estimate.dimension}, z = {noise_multiplier}"
    )
    click.echo(f"  empirical epsilon estimate      {estimate.epsilon_estimate:.3f}")
    click.echo(
        f"  empirical lower bound           {estimate.epsilon_lower_95:.3f}  "
        f"({estimate.confidence})"
    )
    click.echo(
        f"  accountant's upper bound        {estimate.epsilon_accountant:.3f}  (delta = {delta:g})"
    )
