"""``secagg audit verify --json`` and ``audit empirical --json``: a usage error is a JSON
object on stdout too, whichever check finds it, with the one usage line on stderr.

Why: ``verify --json`` printed its object for a usage error found once the command ran
(no ledger at the path) but nothing for one click found while parsing (``--first-round
0``, an unreadable ``--pubkey``, ``--config``, a malformed ``--expect-head``), and
``empirical --json --rounds 0`` printed nothing either: a script parsing stdout got an
empty string or an object depending on which check caught the mistake (hostile CLI
review, 2026-12-06). Every case here is refused before any ledger is read or any
federation run, so the file is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from secagg.apps.audit.cli import VERIFY_JSON_KEYS, empirical, verify
from secagg.apps.cli import main


def _ledger_path(tmp_path: Path) -> str:
    path = tmp_path / "l.ledger"
    path.write_bytes(b"")  # every case below is refused before the ledger is read
    return str(path)


VERIFY_CASES = {
    "--first-round out of range": (["--first-round", "0"], "Invalid value for '--first-round'"),
    "a missing --pubkey": (["--pubkey", "{tmp}/nope.pem"], "Invalid value for '--pubkey'"),
    "a malformed --expect-head": (["--expect-head", "x"], "Invalid value for '--expect-head'"),
    "a missing --config": (["--config", "{tmp}/nope.toml"], "Invalid value for '--config'"),
    "an unknown option": (["--no-such-option"], "No such option '--no-such-option'"),
}


@pytest.mark.parametrize("case", sorted(VERIFY_CASES))
@pytest.mark.parametrize("json_first", [True, False])
def test_verify_json_usage_error_is_one_object(tmp_path: Path, case: str, json_first: bool) -> None:
    options, words = VERIFY_CASES[case]
    options = [option.format(tmp=tmp_path) for option in options]
    ledger = _ledger_path(tmp_path)
    args = ["--json", ledger, *options] if json_first else [ledger, *options, "--json"]
    result = CliRunner().invoke(main, ["audit", "verify", *args])
    assert result.exit_code == 2, (result.output, result.exception)
    payload = json.loads(result.stdout)
    assert tuple(payload) == VERIFY_JSON_KEYS
    assert payload["verdict"] == "USAGE ERROR" and payload["exit_status"] == 2
    assert payload["ok"] is False and payload["epsilon"] is None
    assert payload["error"].startswith(words), payload["error"]
    assert payload["first_failure"] == payload["error"]
    assert result.stderr.splitlines() == [f"Error: {payload['error']}"]


def test_verify_json_keeps_the_options_parsed_before_the_error(tmp_path: Path) -> None:
    """A usage error found once the options are parsed (no ledger at the path) keeps them."""
    result = CliRunner().invoke(
        main, ["audit", "verify", str(tmp_path / "none.ledger"), "--first-round", "3", "--json"]
    )
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert (
        payload["first_round"] == 3 and payload["error"] == f"no ledger at {tmp_path}/none.ledger"
    )


def test_verify_without_json_prints_no_object(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["audit", "verify", _ledger_path(tmp_path), "--first-round", "0"]
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1


def test_a_json_word_after_double_dash_is_an_argument_not_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "verify", "--first-round", "0", "--", "--json"])
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--rounds", "0"], "Invalid value for '--rounds'"),
        (["-z", "nan"], "Invalid value for '--noise-multiplier'"),
        (["--backend", "ckks"], "Invalid value for '--backend'"),
    ],
)
def test_empirical_json_usage_error_is_one_object(options: list[str], words: str) -> None:
    from dataclasses import fields

    from secagg.apps.audit.empirical import EmpiricalAudit

    result = CliRunner().invoke(main, ["audit", "empirical", "--json", *options])
    assert result.exit_code == 2, (result.output, result.exception)
    payload = json.loads(result.stdout)
    result_keys = [field.name for field in fields(EmpiricalAudit)]
    assert list(payload) == [*result_keys, "error", "exit_status"]
    assert all(payload[key] is None for key in result_keys)
    assert payload["exit_status"] == 2 and payload["error"].startswith(words), payload
    assert result.stderr.splitlines() == [f"Error: {payload['error']}"]


def _value_options(command: click.Command) -> list[str]:
    """Every option of ``command`` that takes a value, by its long name."""
    return [
        next(name for name in option.opts if name.startswith("--"))
        for option in command.params
        if isinstance(option, click.Option) and not option.is_flag and not option.count
    ]


@pytest.mark.parametrize(
    ("command", "option"),
    [("verify", option) for option in _value_options(verify)]
    + [("empirical", option) for option in _value_options(empirical)],
)
def test_a_json_word_taken_as_an_options_value_is_not_the_flag(
    tmp_path: Path, command: str, option: str
) -> None:
    """``verify --pubkey --json L``: click reads "--json" as the key's path, so --json is
    not given, and the refusal is the one plain line, as ``verify --config --json L``'s
    always was (refused once the command ran). Until 2026-12-06 a refusal found while
    parsing printed a JSON object too, because the word "--json" was among the words."""
    ledger = [_ledger_path(tmp_path)] if command == "verify" else []
    result = CliRunner().invoke(main, ["audit", command, option, "--json", *ledger])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: Invalid value for '") and f"'{option}'" in line, line
    assert "--json" in line  # the value it was refused for


def test_the_flag_after_an_options_value_is_still_the_flag(tmp_path: Path) -> None:
    """The value is skipped, not the rest: ``--pubkey P --json`` and ``--pubkey --json
    --json`` (the first the path, the second the flag) print the object."""
    ledger = _ledger_path(tmp_path)
    for options in (
        ["--pubkey", f"{tmp_path}/nope.pem", "--json"],
        ["--pubkey", "--json", "--json"],
    ):
        result = CliRunner().invoke(main, ["audit", "verify", ledger, *options])
        assert result.exit_code == 2
        assert json.loads(result.stdout)["error"].startswith("Invalid value for '--pubkey'")
