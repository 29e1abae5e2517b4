"""A refusal that names ``--branches`` when nobody typed it says the 8 is the default.

Why: a ``--config`` file with ``[simulation] sample_rate = 0.2`` and no branch count was
refused with "simulation.sample_rate * --branches (the expected branches in a round)
must be at least 2" (newcomer walk, 2026-12-06): ``--branches`` was never on the
command line, the line gave neither value nor product, and the reader could not tell
where a branch count came from. Each such line now gives the values, and a branch
count nobody set reads ``--branches 8 (the default)``; one typed or read from the file
is named as it was set, without the note.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main


def _refusal(*args: str) -> str:
    result: Result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.usefixtures("nothing_runs")
def test_a_file_sample_rate_with_the_default_branch_count(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[simulation]\nsample_rate = 0.2\n")
    line = _refusal("--config", str(config), "--out", str(tmp_path / "r"))
    assert "simulation.sample_rate = 0.2 * --branches 8 (the default) = 1.6" in line, line
    assert "expected branches in a round" in line, line


@pytest.mark.usefixtures("nothing_runs")
def test_a_typed_or_filed_branch_count_has_no_default_note(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[simulation]\nsample_rate = 0.2\n")
    typed = _refusal("--config", str(config), "--branches", "9", "--out", str(tmp_path / "a"))
    assert "* --branches 9 = 1.8 expected" in typed, typed
    assert "default" not in typed, typed
    config.write_text("[simulation]\nsample_rate = 0.2\nbranches = 9\n")
    filed = _refusal("--config", str(config), "--out", str(tmp_path / "b"))
    assert "* simulation.branches = 9 = 1.8 expected" in filed, filed
    assert "default" not in filed, filed


@pytest.mark.usefixtures("nothing_runs")
def test_a_client_level_delta_against_the_default_branch_count(tmp_path: Path) -> None:
    args = ["--unit", "client", "--mechanism", "central", "--delta", "0.2"]
    line = _refusal(*args, "--out", str(tmp_path / "r"))
    assert "is not below 1 / --branches = 1/8 (--branches 8 is the default)" in line, line
    typed = _refusal(*args, "--branches", "6", "--out", str(tmp_path / "s"))
    assert "is not below 1 / --branches = 1/6:" in typed, typed
