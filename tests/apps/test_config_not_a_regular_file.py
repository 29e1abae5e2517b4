"""A named pipe or a character device given as a config or policy file: one line, at once.

Why: ``--config`` / ``--policy`` naming a FIFO passed click's ``exists=True,
dir_okay=False`` and then blocked at ``open()`` forever, waiting for a writer that never
came (CLI review, 2026-12-06). :func:`read_toml` now refuses every path that is not a
regular file before opening it, naming the path and what it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _fifo import in_thread, needs_fifos
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.errors import ConfigurationError
from secagg.runtime.config import read_toml


@needs_fifos
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "federation.toml"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: read_toml(str(fifo)), unblock=fifo)
    assert isinstance(outcome, ConfigurationError), outcome
    assert str(outcome) == f"{fifo} is a named pipe, not a configuration file"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_character_device_is_refused() -> None:
    # /dev/null rather than /dev/stdin: the same kind (a character device) without
    # depending on what pytest's stdin is; before, it read as an empty, valid TOML file
    with pytest.raises(ConfigurationError) as caught:
        read_toml("/dev/null")
    assert str(caught.value) == "/dev/null is a character device, not a configuration file"


def test_a_regular_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[federation]\nname = "pilot"\n')
    assert read_toml(path) == {"federation": {"name": "pilot"}}


@needs_fifos
@pytest.mark.parametrize(
    ("args", "party"),
    [
        (["server", "--config"], "secagg server:"),
        (
            [
                "client", "--server", "127.0.0.1:9", "--name", "branch-a",
                "--dimension", "4", "--policy",
            ],
            "secagg client: branch-a:",
        ),
        (["keyholder", "--server", "127.0.0.1:9", "--name", "holder", "--policy"],
         "secagg keyholder: holder:"),
    ],
)  # fmt: skip
def test_a_named_pipe_flag_is_one_line_exit_2(tmp_path: Path, args: list[str], party: str) -> None:
    fifo = tmp_path / "given.toml"
    os.mkfifo(fifo)
    result = in_thread(lambda: CliRunner().invoke(main, [*args, str(fifo)]), unblock=fifo)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(party), result.output
    assert f"{fifo} is a named pipe, not a configuration file" in lines[0], lines[0]
