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
@click.option("--pubkey", type=click.Path(dir_okay=False),
              help="The ledger's public key (PEM) as the auditor received it.")  # fmt: skip
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
        click.echo(f"VERIFIED: {payload['rows']} rows, chain and signatures intact, every "
                   f"epsilon claim follows; cumulative epsilon {payload['epsilon']}")  # fmt: skip
        click.echo(f"head hash (keep it to detect a rollback): {result.chain.head_hash}")
        if pubkey is None:
            click.echo("note: checked against the key embedded in the ledger; pass --pubkey "
                       "with the key you received to rule out a re-signed ledger")  # fmt: skip
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
