"""``secagg simulate --seeds N`` whose experiment folder, or a finished seed's folder, is
removed while a later seed runs (an operator's clean-up, a tmp reaper) writes no
experiment: its summary would present seeds whose ledgers and reports are gone.

Before (2026-12-07): each seed's run makes its folder with its parents, so the next seed
made the experiment folder again, and ``experiment.md`` and ``experiment.json`` summed
up every seed beside only the last seed's folder; a seed folder removed while the seed
ran was made again by its report, a report.md naming a ledger no longer there. The
single run has refused the same since the environment-failure review
(``tests/apps/simulation/test_simulate_failed_run.py``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation import experiment, report
from secagg.apps.simulation.config import SimulationConfig

#: two seeds of a small config: the runs are stand-ins, only the folders are checked
CONFIG = SimulationConfig(branches=3, train_rows=1200, test_rows_per_branch=200)
SEEDS = (4, 5)


def _stand_ins(
    monkeypatch: pytest.MonkeyPatch, during_seed_5: Callable[[Path], None]
) -> list[Path]:
    """Each seed's run as the real one makes its folder (with its parents) and opens its
    ledger; ``during_seed_5(experiment_folder)`` runs inside the second seed's run. The
    report writers make their folders as the real ones do; returns what they wrote."""
    written: list[Path] = []

    def run(config: SimulationConfig, out: Path, progress: object) -> object:
        del progress
        out.mkdir(parents=True, exist_ok=True)
        (out / "ledger.sqlite").write_bytes(b"ledger")
        if config.seed == SEEDS[1]:
            during_seed_5(out.parent)
        fields = {"branch_verdicts": {}, "seconds": 0.0, "settings": {}, "notes": []}
        return type("Run", (), {**fields, "config": config})()

    def write_run_folder(result: Any, run_dir: Path) -> list[Path]:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "report.md").write_text("a seed's report\n")
        written.append(run_dir / "report.md")
        return written[-1:]

    def write_experiment(result: Any, out_dir: Path) -> list[Path]:
        (out_dir / "experiment.md").write_text("seeds 4 and 5\n")
        written.append(out_dir / "experiment.md")
        return written[-1:]

    monkeypatch.setattr(experiment, "run_simulation", run)
    monkeypatch.setattr(experiment, "_check_later_seeds", lambda *args: None)
    monkeypatch.setattr(experiment, "headline_values", lambda run: {})
    monkeypatch.setattr(experiment, "write_experiment", write_experiment)
    monkeypatch.setattr(report, "write_run_folder", write_run_folder)
    return written


def _remove_experiment(folder: Path) -> None:
    shutil.rmtree(folder)


def _remove_first_seed(folder: Path) -> None:
    shutil.rmtree(folder / f"seed-{SEEDS[0]}")


@pytest.mark.parametrize("removal", [_remove_experiment, _remove_first_seed])
def test_a_folder_removed_while_a_later_seed_runs_writes_no_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, removal: Callable[[Path], None]
) -> None:
    out = tmp_path / "exp"
    written = _stand_ins(monkeypatch, removal)
    config = CONFIG.with_changes(seed=SEEDS[0], seeds=len(SEEDS))
    with pytest.raises(FileNotFoundError, match="removed while the experiment ran"):
        experiment.run_experiment(config, out)
    assert not (out / "experiment.md").exists()
    assert written == [out / f"seed-{SEEDS[0]}" / "report.md"]  # the first seed's only


def test_an_experiment_folder_removed_between_seeds_is_not_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed after a seed's report and before the next seed's run: the next seed is
    not run at all (its run would make the folder again)."""
    out = tmp_path / "exp"
    _stand_ins(monkeypatch, lambda folder: None)
    real_write, real_run = report.write_run_folder, experiment.run_simulation
    ran: list[int] = []

    def run(config: SimulationConfig, out: Path, progress: object) -> object:
        ran.append(config.seed)
        return real_run(config, out, progress)

    monkeypatch.setattr(experiment, "run_simulation", run)

    def write_then_remove(result: Any, run_dir: Path) -> list[Path]:
        paths = real_write(result, run_dir)
        if run_dir.name == f"seed-{SEEDS[0]}":
            shutil.rmtree(run_dir.parent)
        return paths

    monkeypatch.setattr(report, "write_run_folder", write_then_remove)
    config = CONFIG.with_changes(seed=SEEDS[0], seeds=len(SEEDS))
    with pytest.raises(FileNotFoundError, match="removed while the experiment ran"):
        experiment.run_experiment(config, out)
    assert not out.exists()
    assert ran == [SEEDS[0]]


def test_the_command_says_it_in_one_line_and_leaves_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``secagg simulate``: one line, exit 1 (the machine's failure, not a flag's),
    and no experiment.md in the folder the later seed left."""
    out = tmp_path / "exp"
    _stand_ins(monkeypatch, _remove_first_seed)
    args = ["simulate", "--branches", "3", "--train-rows", "1200", "--test-rows", "200"]
    args += ["--seed", str(SEEDS[0]), "--seeds", str(len(SEEDS)), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "removed while the experiment ran" in lines[0]
    assert f"seed-{SEEDS[0]}" in lines[0]
    assert not (out / "experiment.md").exists()
