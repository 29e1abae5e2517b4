"""``secagg audit verify | report --config F``: a mistake in the federation's file names
the file, after the flag click names: ``Error: Invalid value for '--config': F: ...``.

Why: only a file that is not TOML, or no file at all, was named; a bad value, a
misspelt key or section, a type error or an empty file said ``Invalid value for
'--config': [federation] lacks name, clients, dimension``, and an auditor checking
ledgers against several federations' files could not tell which was wrong (as
``secagg simulate --config``, newcomer walk-through, 2026-12-07). One line, exit 2, the
same line in ``verify --json``'s ``error``; nothing is replayed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.ledger import export_public_key

#: a federation file's mistake -> its text and words of the refusal
MISTAKES = {
    "a bad value": (
        '[federation]\nname = "t"\nclients = ["a"]\ndimension = 4\n',
        ": federation.clients must name at least 2 clients",
    ),
    "a misspelt key": (
        '[federation]\nname = "t"\nclients = ["a", "b"]\ndimenson = 4\n',
        ": unknown keys in [federation]: ['dimenson'] (did you mean 'dimension'?)",
    ),
    "a value of the wrong type": (
        '[federation]\nname = "t"\nclients = ["a", "b"]\ndimension = "four"\n',
        ": [federation] dimension must be an integer",
    ),
    "a misspelt section": ('[federaton]\nname = "t"\n', ": unknown sections: ['federaton']"),
    "an empty file": ("", ": [federation] lacks name, clients, dimension"),
    "not TOML": ("name = = 1\n", " is not valid TOML"),
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A one-row ledger and its public key."""
    tmp = tmp_path_factory.mktemp("ledger")
    path, key = write_ledger(tmp / "l.ledger", [ledger_row(1, None, None)])
    return str(path), str(export_public_key(key.public_key, tmp / "l.pub"))


def _audit(command: str, ledger: tuple[str, str], config: str, out: Path) -> Result:
    extra = ["--out", str(out)] if command == "report" else []
    if command == "verify --json":
        command, extra = "verify", ["--json"]
    args = ["audit", command, ledger[0], "--pubkey", ledger[1], "--config", config, *extra]
    return CliRunner().invoke(main, args)


def _line(result: Result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    return line


@pytest.mark.parametrize("command", ["verify", "report", "verify --json"])
@pytest.mark.parametrize("kind", sorted(MISTAKES))
def test_a_mistake_in_the_config_names_the_file(
    tmp_path: Path, ledger: tuple[str, str], command: str, kind: str
) -> None:
    text, said = MISTAKES[kind]
    config = tmp_path / "bank-b.toml"
    config.write_text(text)
    result = _audit(command, ledger, str(config), tmp_path / "report")
    line = _line(result)
    assert line.startswith(f"Error: Invalid value for '--config': {config}{said}"), line
    assert line.count(str(config)) == 1, line
    if command == "verify --json":
        assert line == f"Error: {json.loads(result.stdout)['error']}"


def test_a_short_relative_name_is_named_too(
    tmp_path: Path, ledger: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name found inside the message's words (``f`` in ``federation``) is not taken
    for the file's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text(MISTAKES["a bad value"][0])
    line = _line(_audit("verify", ledger, "f", tmp_path / "report"))
    assert line.startswith("Error: Invalid value for '--config': f: federation.clients"), line


def test_a_missing_config_keeps_its_line(tmp_path: Path, ledger: tuple[str, str]) -> None:
    missing = tmp_path / "nope.toml"
    line = _line(_audit("verify", ledger, str(missing), tmp_path / "report"))
    assert line == f"Error: Invalid value for '--config': no configuration file at {missing}"
