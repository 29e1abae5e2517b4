"""A mistake in a file named by ``--config`` or ``--policy`` is one line whatever the file
is called: a name with a line break, an ANSI escape, a bidirectional override or a tab
is shown as its ``repr`` (``--config 'a\\nb.toml': ...``), a plain one (spaces, a
relative path) as typed.

Why: ``in_file`` folded the message to one line and then put the path in as it was,
so ``secagg simulate --config $'a\\nb.toml'`` with ``epsilon = -1`` printed ``Error:
--config a`` and ``b.toml: privacy.epsilon must be positive`` on two lines, as did a
missing or empty such file, ``secagg server --config F``, ``client --policy F`` and
``audit verify --config F``; an escape in the name reached the terminal (second review
of the merged in_file change, 2026-12-07).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.common import in_file
from secagg.ledger import export_public_key


def _shown(path: str) -> str:
    """The path as the line must show it: as typed when plain, else its ``repr``."""
    plain = path.isprintable() and " ".join(path.split()) == path and path != ""
    return path if plain else repr(path)


class _Started(Exception):
    """The simulation would have run."""


def _simulate(*args: str) -> Result:
    with (
        mock.patch("secagg.apps.simulation.runner.run_simulation", side_effect=_Started),
        mock.patch("secagg.apps.simulation.experiment.run_experiment", side_effect=_Started),
    ):
        return CliRunner().invoke(main, ["simulate", *args, "--quiet"])


def _line(result: Result) -> str:
    """The one line of a refusal: exit 2, no traceback, nothing started."""
    assert not isinstance(result.exception, _Started), "the simulation started"
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


#: names a terminal would not show as typed
ODD_NAMES = {
    "a line break": "a\nb.toml",
    "a carriage return": "a\rb.toml",
    "an ANSI escape": "a\x1b[31mred.toml",
    "a bidirectional override": "a\u202eb.toml",
    "a tab": "a\tb.toml",
    "a line separator": "a\u2028b.toml",
}

#: a simulate --config mistake -> the file's text (None: no file) and the words after F
SIMULATE_MISTAKES = {
    "a bad value": ("[privacy]\nepsilon = -1\n", ": privacy.epsilon must be positive"),
    "not TOML": ("branches = = 3\n", " is not valid TOML"),
    "an empty file": ("", " sets nothing (is it empty?)"),
    "no such file": (None, ": no such file"),
}


@pytest.mark.parametrize("mistake", sorted(SIMULATE_MISTAKES))
@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
def test_simulate_names_an_odd_file_on_one_line(tmp_path: Path, kind: str, mistake: str) -> None:
    text, said = SIMULATE_MISTAKES[mistake]
    config = tmp_path / ODD_NAMES[kind]
    if text is not None:
        config.write_text(text)
    line = _line(_simulate("--config", str(config), "--out", str(tmp_path / "run")))
    assert line.startswith(f"Error: --config {str(config)!r}{said}"), line
    assert "\x1b" not in line and "\u202e" not in line, line


def test_a_plain_name_is_shown_as_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spaces, and a relative path stay what the user typed (no quotes, not resolved)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my team").mkdir()
    (tmp_path / "my team" / "shared file.toml").write_text("[privacy]\nepsilon = -1\n")
    line = _line(_simulate("--config", "my team/shared file.toml", "--out", "run"))
    assert line == "Error: --config my team/shared file.toml: privacy.epsilon must be positive"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(
        st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    ).filter(lambda n: n not in {".", ".."} and len(n.encode()) < 200)
)
def test_any_file_name_keeps_the_refusal_one_line(name: str) -> None:
    """Any name the file system takes: one line, exit 2, the name as ``commands.common.shown_path``
    shows it (as typed when plain)."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / name
        config.write_text("[privacy]\nepsilon = -1\n")
        line = _line(_simulate("--config", str(config), "--out", str(Path(folder) / "run")))
    assert line == f"Error: --config {_shown(str(config))}: privacy.epsilon must be positive"


@given(
    path=st.text(min_size=1, max_size=30),
    message=st.text(max_size=60),
)
def test_in_file_is_one_line(path: str, message: str) -> None:
    """Whatever the path and the message hold (the path inside the message too)."""
    for said in (message, f"{path}: {message}", f"{path} {message}"):
        line = in_file("--config", path, said)
        assert len(line.splitlines()) <= 1, line
        assert line.startswith(f"--config {_shown(path)}"), line


def test_the_server_names_an_odd_config_on_one_line(tmp_path: Path) -> None:
    config = tmp_path / ODD_NAMES["a line break"]
    config.write_text("[federation]\nname = = 1\n")
    result = CliRunner().invoke(main, ["server", "--config", str(config)])
    assert result.exit_code == 2, result.output
    (line,) = result.output.splitlines()  # it read "--config a", "b.toml: a b.toml is ..."
    assert line.startswith(f"secagg server: --config {str(config)!r} is not valid TOML"), line


def test_the_client_names_an_odd_policy_on_one_line(tmp_path: Path) -> None:
    policy = tmp_path / ODD_NAMES["an ANSI escape"]
    policy.write_text("[branch]\nmax_clip = -1.0\n")
    args = ["client", "--server", "127.0.0.1:9", "--name", "branch-a", "--dimension", "4"]
    result = CliRunner().invoke(main, [*args, "--policy", str(policy)])
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert f"--policy {str(policy)!r}: branch.max_clip must be positive" in line, line
    assert "\x1b" not in line


def test_audit_names_an_odd_config_on_one_line(tmp_path: Path) -> None:
    ledger, key = write_ledger(tmp_path / "l.ledger", [ledger_row(1, None, None)])
    pub = export_public_key(key.public_key, tmp_path / "l.pub")
    config = tmp_path / ODD_NAMES["a line break"]
    config.write_text('[federation]\nname = "t"\nclients = ["a"]\ndimension = 4\n')
    args = ["audit", "verify", str(ledger), "--pubkey", str(pub), "--config", str(config)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"Error: Invalid value for '--config': {str(config)!r}: "), line


#: names whose blanks the line's folding would change: shown whole, named once
BLANK_NAMES = {"a run of blanks": "a  b.toml", "a leading blank": " lead.toml"}


@pytest.mark.parametrize("kind", sorted(BLANK_NAMES))
def test_a_name_with_blanks_is_named_once_as_it_is(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``'a  b.toml'`` was folded inside its quotes to ``'a b.toml'`` (not the file's
    name) and, no longer found where the line named it, named twice. Relative, as
    typed."""
    monkeypatch.chdir(tmp_path)
    config = Path(BLANK_NAMES[kind])
    config.write_text("branches = = 3\n")
    line = _line(_simulate("--config", BLANK_NAMES[kind], "--out", "run"))
    assert line.startswith(f"Error: --config {str(config)!r} is not valid TOML"), line
    result = CliRunner().invoke(main, ["server", "--config", BLANK_NAMES[kind]])
    (line,) = result.output.splitlines()
    assert line.startswith(f"secagg server: --config {str(config)!r} is not valid TOML"), line


def test_a_two_key_refusal_shows_an_odd_policy_name(tmp_path: Path) -> None:
    """``branch.require_active (--policy F)``: the file named where the key was read,
    an escape in its name shown, not sent to the terminal."""
    policy = tmp_path / ODD_NAMES["an ANSI escape"]
    policy.write_text("[branch]\nrequire_active = true\n")
    args = ["client", "--server", "127.0.0.1:9", "--name", "branch-a", "--dimension", "4"]
    result = CliRunner().invoke(main, [*args, "--allow-plain", "--policy", str(policy)])
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert f"--allow-plain with branch.require_active (--policy {str(policy)!r})" in line, line
