"""A simulation refused before its checks build the starting model does not import torch,
and every step that computes with torch still runs on one thread.

:func:`~secagg.apps.simulation.runner.run_simulation` imported torch first thing, only
to read and pin its thread count: a run refused at its folder or its data paid the
import (2-3 s of CPU a process) for nothing (test profiling of 2026-12-06). torch is
now imported where the run first needs it, just before the checks that build the
model, and the thread count is pinned there.

A fresh interpreter for the import, because the test process has imported torch long
before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig

ROOT = Path(__file__).resolve().parents[3]

#: two refusals a run makes before the starting model: its folder holds a run, and its
#: data (a CSV with no fraud row) has nothing to learn; then whether torch was imported
_REFUSED = """
import sys
from pathlib import Path
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.runner import run_simulation
from secagg.errors import ConfigurationError

scratch = Path(sys.argv[1])
rows = "".join(f"{i % 97}.5,{i % 24},0\\n" for i in range(400))
(scratch / "legit.csv").write_text("amount,hour,fraud\\n" + rows)
config = SimulationConfig(source="csv", path=str(scratch / "legit.csv"), label="fraud",
                          branches=2, mechanism="off", prior="none")
held = scratch / "held"
held.mkdir()
(held / "server.sqlite").write_bytes(b"")
for run_dir in (held, scratch / "new"):
    try:
        run_simulation(config, run_dir)
    except ConfigurationError as exc:
        print("refused:", exc)
print("torch imported:", "torch" in sys.modules)
"""


def test_a_run_refused_at_its_folder_or_its_data_does_not_import_torch(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _REFUSED, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3, done.stdout
    assert "already holds a run" in lines[0], lines[0]
    assert "nothing to learn" in lines[1], lines[1]
    assert lines[2] == "torch imported: False", done.stdout  # before: True


class _Stop(Exception):
    """Ends the run once the step under test has been seen."""


def test_the_prior_fits_on_one_thread_and_the_count_is_given_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where torch is imported moved: the prior's fit (the first step that trains)
    still runs on one torch thread, and the caller's count is back after the run,
    which here ends in an error. A guard: it passes before the move too."""
    import torch

    seen: list[int] = []

    def prior_seen(config: SimulationConfig, stats: object) -> None:
        seen.append(torch.get_num_threads())
        raise _Stop

    monkeypatch.setattr(runner, "prior_model", prior_seen)
    config = SimulationConfig(
        branches=2, rounds=1, train_rows=600, test_rows_per_branch=200, mechanism="off"
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(_Stop):
            runner.run_simulation(config, tmp_path / "run")
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
