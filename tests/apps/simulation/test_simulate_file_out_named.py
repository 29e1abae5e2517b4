"""``secagg simulate --config F`` whose ``out`` key names a file, not a folder: the line
names the file's key and the file, not ``--out``, which was never typed.

Why: ``out = "results"`` in the file, with ``results`` a file, read ``Error: --out
results is a file, not a folder`` (its sibling, a non-empty folder, said ``(out in F)``
already); a replay of a run folder's config.toml, or a team's shared file, sent the
user looking for a flag on a command line that had none (second review of the in_file
change, 2026-12-07). A typed ``--out`` keeps its own line; a file's name that a
terminal would not show as typed is its repr here too.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from click.testing import CliRunner, Result

from secagg.apps.cli import main


class _Started(Exception):
    """The simulation would have run."""


def _line(*args: str) -> str:
    with (
        mock.patch("secagg.apps.simulation.runner.run_simulation", side_effect=_Started),
        mock.patch("secagg.apps.simulation.experiment.run_experiment", side_effect=_Started),
    ):
        result: Result = CliRunner().invoke(main, ["simulate", *args, "--quiet"])
    assert not isinstance(result.exception, _Started), "the simulation started"
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    (line,) = result.output.splitlines()
    return line


def test_a_files_out_that_is_a_file_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    config = tmp_path / "team-shared.toml"
    config.write_text(f'[simulation]\nout = "{blocker}"\n')
    line = _line("--config", str(config))
    assert line.startswith(f"Error: {blocker} (out in {config}) is a file, not a folder"), line
    assert "pass --out NEW-FOLDER" in line, line
    assert "Error: --out" not in line, line
    for seeds in ("2", "3"):  # an experiment's folder, the same line
        assert _line("--config", str(config), "--seeds", seeds) == line


def test_a_typed_out_that_is_a_file_keeps_its_line(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    config = tmp_path / "team-shared.toml"
    config.write_text(f'[simulation]\nout = "{tmp_path / "elsewhere"}"\n')
    line = _line("--config", str(config), "--out", str(blocker))
    assert line.startswith("Error: Invalid value for '--out'"), line  # click's check
    assert str(config) not in line, line


def test_a_non_empty_out_of_an_odd_file_is_one_line(tmp_path: Path) -> None:
    used = tmp_path / "run-1"
    used.mkdir()
    (used / "report.md").write_text("a run")
    config = tmp_path / "a\nb.toml"
    config.write_text(f'[simulation]\nout = "{used}"\n')
    line = _line("--config", str(config))
    assert line.startswith(f"Error: {used} (out in {str(config)!r}) is not empty"), line
