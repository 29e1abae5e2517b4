"""A ``--config`` or ``--policy`` file that the machine will not let a command read (no
permission) is exit 1 in every command alike, one line naming the flag, the file and
"Permission denied".

Helper brief 321 (2026-12-07) asked whether this should be exit 2, as every other
mistake in such a file is. The project's rule says 1 (docs/deployment.md, "Every
command says an error of the system on a path it was given by one rule": what the path
names is the flag's mistake, exit 2; "what the machine refuses is exit 1, one line
naming the flag, the path and the cause (no permission, ...)"; docs/audit.md's exit
table: "one the machine refuses is exit 1, ``Error: --config: Permission denied: F``").
The same file works once the machine lets it (a chmod), so the code is left as it is
and pinned here for every command that takes such a file, ``simulate --config`` and
``audit report --config`` included (tests/apps/test_path_failure_rule.py pinned the
others at ``read_regular_file``).

The refusal is made at the open itself (``os.open`` raising ``PermissionError``), as
``chmod 000`` makes it for a user other than root: a test run as root reads any file
whatever its mode, so a chmod would prove nothing there.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path

#: a command that reads a file named by a flag -> (the command line, ``{file}`` for
#: that file, ``{tmp}`` for the test's folder; the flag; how the line begins)
READS: dict[str, tuple[list[str], str, str]] = {
    "server --config": (["server", "--config", "{file}"], "--config", "secagg server: "),
    "keyholder-init --config": (
        ["keyholder-init", "--config", "{file}", "--key", "{tmp}/kh.key"],
        "--config",
        "secagg keyholder-init: ",
    ),
    "keyholder --config": (
        [
            *("keyholder", "--server", "127.0.0.1:9", "--name", "kh", "--certs", "{tmp}"),
            *("--config", "{file}"),
        ],
        "--config",
        "secagg keyholder: ",
    ),
    "keyholder --policy": (
        [
            *("keyholder", "--server", "127.0.0.1:9", "--name", "kh", "--certs", "{tmp}"),
            *("--policy", "{file}"),
        ],
        "--policy",
        "secagg keyholder: kh: ",
    ),
    "client --policy": (
        [
            *("client", "--server", "127.0.0.1:9", "--name", "b", "--certs", "{tmp}"),
            *("--dimension", "4", "--policy", "{file}"),
        ],
        "--policy",
        "secagg client: b: ",
    ),
    "simulate --config": (["simulate", "--config", "{file}", "--quiet"], "--config", "Error: "),
    "audit verify --config": (
        ["audit", "verify", "--config", "{file}", "{tmp}/ledger"],
        "--config",
        "Error: ",
    ),
    "audit report --config": (
        ["audit", "report", "--config", "{file}", "{tmp}/ledger"],
        "--config",
        "Error: ",
    ),
}


class _Started(Exception):
    """The command went on past the file: it was read."""


@pytest.mark.parametrize("command", sorted(READS))
def test_a_file_the_machine_will_not_read_is_exit_1_naming_it(tmp_path: Path, command: str) -> None:
    """One line, exit 1: the flag, the file, "Permission denied"; nothing started."""
    template, flag, start = READS[command]
    given = tmp_path / "given.toml"
    given.write_text("[x]\n")
    (tmp_path / "ledger").write_bytes(b"")
    real_open = os.open
    opened: list[str] = []

    def refusing_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if isinstance(path, str | os.PathLike) and os.fspath(path) == str(given):
            opened.append(str(path))
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(given))
        return real_open(path, *args, **kwargs)

    args = [part.format(file=given, tmp=tmp_path) for part in template]
    with (
        mock.patch("os.open", refusing_open),
        mock.patch("secagg.runtime.launch.serve", side_effect=_Started),
        mock.patch("secagg.apps.simulation.runner.run_simulation", side_effect=_Started),
    ):
        result = CliRunner().invoke(main, args)
    assert opened, "the file was not opened: the case proves nothing"
    assert not isinstance(result.exception, _Started), result.output
    assert "Traceback" not in result.output
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    line = lines[0]
    assert line.startswith(start), line
    assert flag in line and shown_path(str(given)) in line, line
    assert "Permission denied" in line, line
