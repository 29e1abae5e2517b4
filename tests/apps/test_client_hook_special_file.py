"""``secagg client --hook`` naming a named pipe: one line naming ``--hook`` and the pipe.

Why: ``--hook FIFO`` was refused as "neither 'demo' nor 'module:factory'", and a hook
module whose ``.py`` file is a named pipe as "no module ... on Python's path" (Python's
finder skips a file that is not a regular one), so the operator looked for a missing
module or a wrong PYTHONPATH while the file was there, of the wrong kind. The check
stats the path and never opens it: a pipe with no writer cannot block it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def _refusal(hook: str) -> list[str]:
    """The non-empty output lines of ``secagg client --hook HOOK ...`` (exit 2 checked).

    ``--hook`` comes first: its check runs at parsing, before any other option's file is
    looked at and before anything is dialled (nothing listens on port 9)."""
    args = ["client", "--hook", hook, "--server", "127.0.0.1:9", "--name", "b1"]
    args += ["--dimension", "3", "--certs", "no-such-certs", "--connect-timeout", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), "a traceback"
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize("suffix", ["", ":make_hook"])
def test_a_named_pipe_given_as_the_hook_is_named(tmp_path: Path, suffix: str) -> None:
    pipe = tmp_path / "hook_pipe"
    os.mkfifo(pipe)
    lines = _refusal(f"{pipe}{suffix}")
    assert len(lines) == 1, lines
    assert "'--hook'" in lines[0], lines[0]
    assert f"'{pipe}' is a named pipe, not a Python module" in lines[0], lines[0]
    assert "no module" not in lines[0] and "neither" not in lines[0], lines[0]


def test_a_hook_module_file_that_is_a_named_pipe_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    os.mkfifo(tmp_path / "secagg_piped_hook.py")
    lines = _refusal("secagg_piped_hook:make_hook")
    assert len(lines) == 1, lines
    assert "'--hook'" in lines[0], lines[0]
    assert f"'{tmp_path / 'secagg_piped_hook.py'}' is a named pipe" in lines[0], lines[0]
    assert "no module" not in lines[0], lines[0]


def test_a_missing_module_is_still_said_as_missing(tmp_path: Path) -> None:
    """The check names special files only: a module that is simply absent keeps its
    "no module ... on Python's path" line (with where Python looks)."""
    lines = _refusal("secagg_no_such_hook_module:make_hook")
    assert len(lines) == 1, lines
    assert "no module 'secagg_no_such_hook_module' on Python's path" in lines[0], lines[0]
