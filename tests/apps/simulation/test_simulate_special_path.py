"""``secagg simulate --path`` given a named pipe names the flag, in one line, exit 2.

Why: the CSV loader refused it in its own words ("X is a named pipe, not a CSV file"),
naming no flag; the field check before it (``_require_file``) caught a missing file and
a folder but not a named pipe."""

from __future__ import annotations

import os
from pathlib import Path

from _fifo import in_thread, needs_fifos
from click.testing import CliRunner, Result

from secagg.apps.cli import main


@needs_fifos
def test_a_named_pipe_for_path_names_the_flag(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    argv = ["simulate", "--data", "csv", "--label", "y", "--path", str(fifo)]
    argv += ["--out", str(tmp_path / "out"), "--quiet"]
    result: Result = in_thread(lambda: CliRunner().invoke(main, argv), fifo)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: --path {fifo} is a named pipe, not a file"
    ]
    assert not (tmp_path / "out").exists()


@needs_fifos
def test_a_named_pipe_a_config_file_names_is_its_key(tmp_path: Path) -> None:
    from secagg.apps.simulation.cli import build_config
    from secagg.errors import ConfigurationError

    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    config = tmp_path / "sim.toml"
    config.write_text(f'[data]\nsource = "csv"\nlabel = "y"\npath = "{fifo}"\n')
    outcome = in_thread(lambda: build_config(str(config), {}), fifo)
    assert isinstance(outcome, ConfigurationError), outcome
    # the file's key, and the file first (as secagg server --config F: ...)
    assert str(outcome) == f"--config {config}: data.path {fifo} is a named pipe, not a file"


@needs_fifos
def test_the_runners_field_check_refuses_a_named_pipe_too(tmp_path: Path) -> None:
    """For a caller of run_simulation without the command line (and a file swapped for a
    named pipe after the command line's check): the field is named, the file not read."""
    from secagg.apps.simulation.config import SimulationConfig
    from secagg.apps.simulation.data import _require_file
    from secagg.errors import ConfigurationError

    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    config = SimulationConfig(source="csv", label="y", path=str(fifo))
    outcome = in_thread(lambda: _require_file(config, "path"), fifo)
    assert isinstance(outcome, ConfigurationError), outcome
    assert str(outcome) == f"data.path {fifo} is a named pipe, not a file"
