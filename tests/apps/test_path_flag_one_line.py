"""A path typed on a flag (``--out``, ``--dir``, ``--key``, ``--config``, an audited
ledger) whose name holds a line break, a tab, an escape or another character a terminal
would not show as typed is shown by ``shown_path`` (its ``repr``) in the one line a
mistake in it prints: the line stays one line, exit 2.

Helper brief 321 (2026-12-07): the config file's name was shown so
(tests/apps/test_config_path_one_line.py), but a typed path flag was printed raw:
``bench masking --out $'runs/a\\nb/x.json'`` printed ``the folder runs/a`` and ``b does
not exist`` on two lines, and so did ``certs init --dir``, ``keyholder-init --key``,
``bench grpc --out`` (an OSError's path, ``_os_error``), ``audit verify`` and ``audit
report`` of a ledger that is not there or not a ledger, ``audit verify --pubkey`` of a
file that is no key, and the machine's refusal of any path flag (``NonEmptyPath``). The
``server --config`` and ``audit report --out`` cases held already (``in_file``, click's
own check): kept here so that they stay so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from _odd_names import LINE_BREAKER, NAME_CHARACTER
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main


class _Started(Exception):
    """The command would have run: its path was taken."""


def _line(result: Result) -> str:
    """The one line of a refusal: exit 2, no traceback, nothing started."""
    assert not isinstance(result.exception, _Started), "the command started"
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].isprintable(), lines[0]
    return lines[0]


def _missing(folder: Path, name: str, leaf: str) -> str:
    """A path under a folder named ``name`` that does not exist."""
    return str(folder / f"gone-{name}" / leaf)


def _a_file(folder: Path, name: str) -> str:
    path = folder / f"file-{name}"
    path.write_text("not what the flag wants [[[\n")
    return str(path)


def _a_config(folder: Path) -> str:
    path = folder / "federation.toml"
    path.write_text("nothing = 1\n")
    return str(path)


#: a mistake in a typed path flag -> the command line, from a folder and an odd name
CASES: dict[str, Callable[[Path, str], list[str]]] = {
    "bench --out file, folder missing": lambda d, n: [
        "bench",
        "masking",
        "--out",
        _missing(d, n, "x.json"),
    ],
    "bench --out folder, parent missing": lambda d, n: [
        "bench",
        "grpc",
        "--out",
        _missing(d, n, "runs"),
    ],
    "certs init --dir, parent missing": lambda d, n: [
        "certs",
        "init",
        "--dir",
        _missing(d, n, "ca"),
    ],
    "keyholder-init --key, folder missing": lambda d, n: [
        "keyholder-init",
        "--config",
        _a_config(d),
        "--key",
        _missing(d, n, "holder.key"),
    ],
    "keyholder-init --key, a file there": lambda d, n: [
        "keyholder-init",
        "--config",
        _a_config(d),
        "--key",
        _a_file(d, n),
    ],
    "server --config, not TOML": lambda d, n: ["server", "--config", _a_file(d, n)],
    "audit verify, no ledger there": lambda d, n: ["audit", "verify", _missing(d, n, "l.sqlite")],
    "audit report --out, a file": lambda d, n: [
        "audit",
        "report",
        "--out",
        _a_file(d, n),
        _a_file(d, n + "-ledger"),
    ],
    "audit report, not a ledger": lambda d, n: ["audit", "report", _a_file(d, n)],
    "audit verify --pubkey, not a key": lambda d, n: [
        "audit",
        "verify",
        _a_file(d, n + "-ledger"),
        "--pubkey",
        _a_file(d, n),
    ],
}

#: names a terminal would not show as typed
ODD_NAMES = {
    "a line break": "a\nb",
    "a carriage return": "a\rb",
    "a tab": "a\tb",
    "an ANSI escape": "a\x1b[31mred",
    "a bidirectional override": "a\u202eb",
    "a line separator": "a\u2028b",
}


def _run(args: list[str]) -> Result:
    with (
        mock.patch("secagg.apps.bench.emit", side_effect=_Started),
        mock.patch("secagg.runtime.launch.serve", side_effect=_Started),
    ):
        return CliRunner().invoke(main, args)


@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_typed_path_with_an_odd_name_is_one_line(tmp_path: Path, case: str, kind: str) -> None:
    """Before: the line broke where the name does (8 of the 10 cases).
    Now: one printable line, exit 2, the name shown as its ``repr``."""
    name = ODD_NAMES[kind]
    line = _line(_run(CASES[case](tmp_path, name)))
    assert repr(name)[1:-1] in line, line


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(sorted(CASES)),
    before=st.text(NAME_CHARACTER, max_size=8),
    odd=LINE_BREAKER,
    after=st.text(NAME_CHARACTER, max_size=8),
)
def test_any_name_with_a_control_character_is_one_line(
    tmp_path_factory: pytest.TempPathFactory, case: str, before: str, odd: str, after: str
) -> None:
    """Whatever the name holds around a control or separator character: one line, exit 2."""
    name = before + odd + after
    if len(os.fsencode(name)) > 200:  # past a file system's name length: another mistake
        return
    _line(_run(CASES[case](tmp_path_factory.mktemp("odd"), name)))


@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
def test_the_machines_refusal_of_an_odd_path_is_one_line(kind: str) -> None:
    """The exit-1 side of the one rule names the path the same way: an OSError's line
    (``_os_error``, ``_environment_cause``), and a flag's path the machine refuses
    (``NonEmptyPath``), were raw."""
    from secagg.apps.commands.common import _environment_cause, _os_error

    name = f"/srv/{ODD_NAMES[kind]}/state"
    denied = PermissionError(13, "Permission denied", name)
    for said in (_os_error(denied), _environment_cause(denied)):
        assert said.isprintable() and len(said.splitlines()) == 1, said
        assert repr(name) in said, said
    with mock.patch("os.stat", side_effect=denied):
        result = CliRunner().invoke(main, ["server", "--config", name])
    assert result.exit_code == 1, result.output
    assert len(result.output.splitlines()) == 1, result.output
    assert result.output.rstrip("\n").isprintable(), result.output
    assert repr(name) in result.output, result.output
