"""``secagg audit verify`` and ``report`` take the ledger as LEDGER or as ``--ledger``.

Why: every other command names its files by flags (``server --config``, ``client
--state``, ``certs --dir``), and an auditor who typed ``audit verify --ledger L`` was
told ``No such option '--ledger'. Did you mean '--prior-ledger'?``: the flag of another
file altogether (the archive of a ledger's earlier rows), which then ran without the
ledger (``Missing argument 'LEDGER'``). The positional form the docs and ``--help`` give
keeps working; ``--ledger`` is the same file, and giving both, or neither, is one usage
line (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.ledger.chain import export_public_key


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A closed two-row ledger without DP and its public key file."""
    folder = tmp_path_factory.mktemp("flag")
    path, key = write_ledger(folder / "fed.ledger", [ledger_row(n, None, None) for n in (1, 2)])
    return path, export_public_key(key.public_key, folder / "fed.pub")


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["audit", *args])


def test_verify_takes_the_ledger_by_its_flag_as_by_its_position(ledger: tuple[Path, Path]) -> None:
    path, pubkey = ledger
    positional = _run("verify", str(path), "--pubkey", str(pubkey))
    flagged = _run("verify", "--ledger", str(path), "--pubkey", str(pubkey))
    assert flagged.exit_code == positional.exit_code == 3, flagged.output  # no DP: exit 3
    assert flagged.output == positional.output  # was: "No such option '--ledger'"


def test_verify_json_by_the_flag(ledger: tuple[Path, Path]) -> None:
    path, pubkey = ledger
    result = _run("verify", "--json", "--pubkey", str(pubkey), "--ledger", str(path))
    assert json.loads(result.stdout)["rows"] == 2 and result.exit_code == 3, result.output


def test_report_takes_the_ledger_by_its_flag(ledger: tuple[Path, Path], tmp_path: Path) -> None:
    path, pubkey = ledger
    result = _run("report", "--ledger", str(path), "--pubkey", str(pubkey), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ledger-report.md").exists()


@pytest.mark.parametrize("command", ["verify", "report"])
def test_both_forms_at_once_or_neither_is_one_usage_line(
    ledger: tuple[Path, Path], command: str
) -> None:
    path, _pubkey = ledger
    both = _run(command, str(path), "--ledger", str(path))
    assert both.exit_code == 2, both.output
    assert both.stderr.startswith(f"Error: Invalid value for '--ledger': {path}: the ledger ")
    assert "give it once, as LEDGER or as --ledger, not both" in both.stderr
    neither = _run(command)
    assert neither.exit_code == 2, neither.output
    assert "Missing argument 'LEDGER' (or --ledger LEDGER)" in neither.stderr
    assert "Traceback" not in both.output + neither.output


def test_json_says_a_missing_ledger_as_its_usage_error() -> None:
    result = _run("verify", "--json")
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["verdict"] == "USAGE ERROR" and "--ledger" in payload["error"]
