"""``secagg audit verify`` / ``report`` of a file that is not a ledger: a usage mistake.

Why: ``secagg audit verify state/fraud.sqlite``, the server's state database rather
than its ledger ``state/fraud.sqlite.ledger``, printed ``FAILED: ... no such table:
ledger_meta`` and exited 1, which reads as a ledger that failed verification. It is
now one line naming what the file is (and the ledger beside it), exit 2, as for a
missing ledger; a damaged ledger still FAILs (exit 1).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.runtime.store import ServerStore


def _state(tmp_path: Path) -> tuple[Path, Path]:
    """``state/fraud.sqlite`` and its ledger beside it, as a server leaves them."""
    (tmp_path / "state").mkdir()
    state = tmp_path / "state" / "fraud.sqlite"
    ServerStore(state).close()
    key = LedgerKey.generate()
    Ledger(Path(f"{state}.ledger"), key).close()
    return state, export_public_key(key.public_key, tmp_path / "ledger.pub")


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["audit", *args])


def _one_error_line(result: Result) -> str:
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "FAILED" not in result.output and "Traceback" not in result.output
    return lines[0]


def _is_the_state(line: str, state: Path) -> None:
    assert line == (
        f"Error: {state} is not a privacy ledger: it is the secagg server's state database "
        f"(its rounds and checkpoints); its ledger is {state}.ledger: audit that"
    ), line


def test_verify_of_the_state_database_names_it_and_its_ledger_exit_2(tmp_path: Path) -> None:
    state, pem = _state(tmp_path)
    result = _run("verify", str(state), "--pubkey", str(pem))
    assert result.exit_code == 2, result.output
    _is_the_state(_one_error_line(result), state)
    assert result.stdout == ""
    ledger = _run("verify", f"{state}.ledger", "--pubkey", str(pem))
    assert ledger.exit_code == 0, ledger.output  # the file it points to verifies


def test_verify_json_of_the_state_database_is_a_usage_error(tmp_path: Path) -> None:
    state, pem = _state(tmp_path)
    result = _run("verify", str(state), "--pubkey", str(pem), "--json")
    assert result.exit_code == 2, result.output
    payload = json.loads(result.stdout)
    assert payload["verdict"] == "USAGE ERROR" and payload["exit_status"] == 2
    assert payload["error"] == payload["first_failure"]
    assert payload["error"].endswith(f"its ledger is {state}.ledger: audit that")


def test_report_of_the_state_database_names_it_and_writes_nothing(tmp_path: Path) -> None:
    state, pem = _state(tmp_path)
    out = tmp_path / "report"
    result = _run("report", str(state), "--pubkey", str(pem), "--out", str(out))
    assert result.exit_code == 2, result.output
    _is_the_state(_one_error_line(result), state)
    assert not out.exists() or not any(out.iterdir())


def _sqlite_without_ledger(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE transactions (amount REAL)")
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: p.write_text("-----BEGIN PUBLIC KEY-----\n"), "not an SQLite database at all"),
        (_sqlite_without_ledger, "an SQLite database without the ledger's tables"),
    ],
    ids=["pem", "sqlite"],
)
@pytest.mark.parametrize("command", ["verify", "report"])
def test_another_file_is_named_as_what_it_is_exit_2(
    tmp_path: Path, make: object, what: str, command: str
) -> None:
    path = tmp_path / "given.file"
    make(path)  # type: ignore[operator]
    result = _run(command, str(path), *(["--out", str(tmp_path / "r")] * (command == "report")))
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert line.startswith(f"Error: {path} is not a privacy ledger: it is {what}"), line


def test_a_damaged_ledger_still_fails_exit_1(tmp_path: Path) -> None:
    """A ledger missing one of its tables was changed: FAILED, not the wrong file."""
    state, pem = _state(tmp_path)
    ledger = Path(f"{state}.ledger")
    db = sqlite3.connect(ledger)
    db.execute("DROP TABLE ledger_head")
    db.commit()
    db.close()
    result = _run("verify", str(ledger), "--pubkey", str(pem))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"FAILED: {ledger} cannot be read as a ledger: ")


def test_the_help_says_a_file_that_is_not_a_ledger_is_exit_2() -> None:
    for command in ("verify", "report"):
        text = " ".join(_run(command, "--help").output.split())
        assert "2 usage error" in text and "a file that is not a ledger" in text, command
