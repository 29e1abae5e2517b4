"""Every ``secagg audit verify | report`` usage error is one line that names its flag as
click names every flag, ``Error: Invalid value for '--flag': ...``, exit 2, and under
``verify --json`` the same message in the object's ``error``.

Why: three kinds of mistake read otherwise (hostile review, 2026-12-06): an invalid or
missing ``--config`` said ``Invalid value for --config`` (unquoted) where a folder given
there said ``Invalid value for '--config'``; a ``--prior-ledger`` that is no ledger, or
the ledger itself, said ``--prior-ledger P is ...`` in words of its own (a named pipe
there said ``Invalid value for '--prior-ledger'``); and an ``--expect-head`` of 0 rows
whose hash is not the ledger's genesis said ``the head '0:aa..' counts 0 rows ...``
without naming the flag at all. Every case here is refused before a row is replayed:
in-process, on a one-row ledger, cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.audit.cli import VERIFY_JSON_KEYS
from secagg.apps.cli import main
from secagg.ledger import export_public_key

#: case -> (the flag it names, the options that make the mistake)
CASES = {
    "--config that is no federation": ("--config", ["--config", "{tmp}/bad.toml"]),
    "--config missing": ("--config", ["--config", "{tmp}/nope.toml"]),
    "--config a folder": ("--config", ["--config", "{tmp}"]),
    "--prior-ledger that is no ledger": ("--prior-ledger", ["--prior-ledger", "{tmp}/junk"]),
    "--prior-ledger the ledger itself": ("--prior-ledger", ["--prior-ledger", "{ledger}"]),
    "--expect-head 0 rows, not the genesis": ("--expect-head", ["--expect-head", "0:" + "a" * 64]),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("usage")
    ledger, key = write_ledger(tmp / "l.ledger", [ledger_row(1, None, None)])
    (tmp / "bad.toml").write_text('[federation]\nname = "t"\n')
    (tmp / "junk").write_bytes(b"not a ledger")
    pub = export_public_key(key.public_key, tmp / "l.pub")
    return {"tmp": str(tmp), "ledger": str(ledger), "pub": str(pub)}


def _args(files: dict[str, str], case: str) -> tuple[str, list[str]]:
    flag, options = CASES[case]
    return flag, [option.format(**files) for option in options]


@pytest.mark.parametrize(
    ("command", "case"),
    [("verify", case) for case in sorted(CASES)]
    # report takes no --expect-head (click names that unknown option itself)
    + [("report", case) for case in sorted(CASES) if CASES[case][0] != "--expect-head"],
)
def test_the_usage_line_names_the_flag_as_click_does(
    files: dict[str, str], command: str, case: str
) -> None:
    flag, options = _args(files, case)
    out = ["--out", str(Path(files["tmp"]) / "report")] if command == "report" else []
    result = CliRunner().invoke(
        main, ["audit", command, files["ledger"], "--pubkey", files["pub"], *options, *out]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: Invalid value for '{flag}': "), line
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_json_carries_the_same_line(files: dict[str, str], case: str) -> None:
    flag, options = _args(files, case)
    result = CliRunner().invoke(
        main, ["audit", "verify", files["ledger"], "--pubkey", files["pub"], *options, "--json"]
    )
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert tuple(payload) == VERIFY_JSON_KEYS and payload["exit_status"] == 2
    assert payload["error"].startswith(f"Invalid value for '{flag}': "), payload["error"]
    assert result.stderr.splitlines() == [f"Error: {payload['error']}"]
