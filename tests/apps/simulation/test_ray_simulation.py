"""``secagg simulate --engine ray``: the branches (and their DP-SGD) run in Ray actors and
the run folder says what the in-process engine's says, number for number.

The same seed gives the same rounds on either engine: the same branches vanish at the
same phases, the same updates meet in the secure sum (the masks are fresh on every run
and cancel exactly), and each branch's record-level epsilon reaches every round's row
from its Ray worker."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ray import local_ray
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError
from secagg.runtime.ray_engine import RAY_EXTRA

#: a small, fast run (as tests/integration/test_simulation.py's): 4 branches, 2 rounds,
#: record-level DP-SGD, a quarter of the branches vanishing per round (seed 5: one
#: branch vanishes before its encrypted shares in round 2), no public prior to fit
SMALL = [
    "--branches", "4", "--rounds", "2", "--model", "logistic", "--train-rows", "2000",
    "--test-rows", "400", "--batch-size", "64", "--dropout", "0.25", "--seed", "5",
    "--prior", "none", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """One local Ray instance for the module; the simulator joins it (and leaves it up).
    Started as the engine starts its own, again when the raylet misses Ray's 30 s
    registration on a busy machine, with Ray's memory monitor off (see tests/_ray.py)."""
    with local_ray() as ray:
        yield ray


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _without_timings(value: Any) -> Any:
    """``value`` without wall-clock fields (seconds, seconds_per_round, ...)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _run_folder(run: Path) -> tuple[Any, Any, np.ndarray]:
    summary = json.loads((run / "summary.json").read_text())
    summary.pop("config")  # the engine differs, nothing else
    rounds = json.loads((run / "rounds.json").read_text())
    model = np.load(run / "model.npy", allow_pickle=False)
    return _without_timings(summary), _without_timings(rounds), model


def test_simulate_on_ray_replays_the_in_process_run(ray_instance: Any, tmp_path: Path) -> None:
    local, on_ray = tmp_path / "inprocess", tmp_path / "ray"
    done = _simulate(*SMALL, "--out", str(local))
    assert done.exit_code == 0, done.output
    done = _simulate(*SMALL, "--engine", "ray", "--ray-workers", "2", "--out", str(on_ray))
    assert done.exit_code == 0, done.output
    assert 'engine = "ray"' in (on_ray / "config.toml").read_text()
    local_summary, local_rounds, local_model = _run_folder(local)
    ray_summary, ray_rounds, ray_model = _run_folder(on_ray)
    assert np.array_equal(ray_model, local_model)  # bit for bit
    assert ray_rounds == local_rounds  # metrics, contributors, dropouts, epsilon, bytes
    assert ray_summary == local_summary  # every setting's metrics, the privacy parameters
    # not vacuous: a branch vanished mid-protocol, and record-level epsilon (accounted in
    # the Ray workers' DP-SGD) reached every round's row
    assert any(r["dropped"] for r in ray_rounds)
    for row in ray_rounds:
        eps = row["epsilon_record_level"]
        assert set(eps) == {f"branch-0{b}" for b in range(1, 5)}
        assert all(e is not None and 0 < e <= 3.0 for e in eps.values())
    assert ray_summary["privacy_parameters"]["branches"]  # each branch's DP-SGD, from its host


def _one_line_error(result: Result) -> str:
    """The usage error printed: exit status 2, one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line: no click "Usage:" / "Try ..." preamble
    return lines[0]


def test_engine_flags_are_checked_in_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    assert "--engine" in _one_line_error(_simulate("--engine", "spark", "--out", out))
    error = _one_line_error(_simulate("--engine", "ray", "--ray-workers", "0", "--out", out))
    assert "--ray-workers must be at least 1" in error
    error = _one_line_error(_simulate("--ray-workers", "2", "--out", out))
    assert "--ray-workers is read only with --engine ray" in error
    error = _one_line_error(_simulate("--ray-address", "auto", "--out", out))
    assert "--ray-address is read only with --engine ray" in error
    assert not (tmp_path / "run").exists()


def test_a_missing_ray_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    error = _one_line_error(_simulate("--engine", "ray", "--out", str(tmp_path / "run")))
    assert error == f"Error: {RAY_EXTRA}"
    assert not (tmp_path / "run").exists()  # said before anything ran


def test_the_engine_keys_of_a_config_file(tmp_path: Path) -> None:
    file = tmp_path / "sim.toml"
    file.write_text('[simulation]\nengine = "ray"\nray_workers = 3\nray_address = "auto"\n')
    config = SimulationConfig.load(file)
    assert (config.engine, config.ray_workers, config.ray_address) == ("ray", 3, "auto")
    file.write_text('[simulation]\nengine = "ray"\nray_workers = 0\n')
    with pytest.raises(ConfigurationError, match=r"^simulation\.ray_workers must be at least 1$"):
        SimulationConfig.load(file)
    file.write_text('[simulation]\nengine = "threads"\n')
    with pytest.raises(ConfigurationError, match=r"simulation\.engine must be one of"):
        SimulationConfig.load(file)
    assert SimulationConfig().engine == "inprocess"  # the default stays in-process
