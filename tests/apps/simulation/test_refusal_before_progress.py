"""``secagg simulate`` without ``--quiet``: a run refused as it reads its data, before any
stage began, prints its ``Error:`` line alone, as with ``--quiet``.

Why: the progress bars were started on entering their block, and rich's last render of
no bars was an empty line on stdout before the refusal (a CSV without a fraud row, a
``data.label`` of the ``--config`` file its CSV lacks); second review of the in_file
change, 2026-12-07.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation.cli import _ProgressBar


def _csv(path: Path, fraud: bool) -> Path:
    lines = ["amount,velocity,is_fraud"]
    lines += [f"{(i % 7) / 3:.3f},{i % 3},{int(fraud and i % 10 == 0)}" for i in range(400)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _only_line(result: Result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == "", repr(result.stdout)
    lines = result.output.splitlines()
    assert len(lines) == 1, repr(result.output)
    return lines[0]


@pytest.mark.parametrize("quiet", [False, True])
def test_a_csv_without_a_fraud_row_is_one_line(tmp_path: Path, quiet: bool) -> None:
    data = _csv(tmp_path / "no-fraud.csv", fraud=False)
    config = tmp_path / "team-shared.toml"
    config.write_text("[simulation]\nbranches = 3\n")
    args = ["simulate", "--config", str(config), "--data", "csv", "--path", str(data)]
    args += ["--label", "is_fraud", "--out", str(tmp_path / "run")]
    line = _only_line(CliRunner().invoke(main, args + (["--quiet"] if quiet else [])))
    assert line.startswith(f"Error: {data}: the label 'is_fraud' has no positive"), line


@pytest.mark.parametrize("quiet", [False, True])
def test_a_files_label_the_csv_lacks_is_one_line(tmp_path: Path, quiet: bool) -> None:
    data = _csv(tmp_path / "t.csv", fraud=True)
    config = tmp_path / "team-shared.toml"
    config.write_text(f'[data]\nsource = "csv"\npath = "{data}"\nlabel = "y"\n')
    args = ["simulate", "--config", str(config), "--out", str(tmp_path / "run")]
    line = _only_line(CliRunner().invoke(main, args + (["--quiet"] if quiet else [])))
    assert line.startswith(f"Error: --config {config}: data.label = 'y': {data} has no"), line


def test_the_bars_print_nothing_until_a_stage_begins() -> None:
    """Entered and left without an update: nothing; with one, the stage is drawn."""
    out = io.StringIO()
    with redirect_stdout(out):
        bar = _ProgressBar()
        with bar:
            pass
    assert out.getvalue() == ""
    with redirect_stdout(out):
        bar = _ProgressBar()
        with bar:
            bar.update("federated", 1, 2, "round 1")
    assert "federated" in out.getvalue(), out.getvalue()
