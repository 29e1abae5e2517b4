"""``secagg simulate`` says the population rule of sampled rounds in its own words, once,
before any work; and a ``--config`` or ``--out`` the machine refuses names its flag.

Why: since the population rule (a round drawn from a federation is sized for the whole
population's colluders) ``sample_rate = 0.3`` over 40 branches printed the federation's
SmallDrawWarning three times, once in Python's raw form, naming ``[sampling] rate`` and
``corrupt_fraction`` (keys no simulation file has); a rate whose drawn rounds cannot
plan blamed ``tolerated_dropout``; an unreadable ``--config`` said
``Error: Permission denied: F`` naming no flag, and every failure of ``--out``'s write
probe was exit 2 (review, 2026-12-07). Every case here is refused or warned at load:
nothing trains (the run itself is replaced by a marker).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import secagg.runtime.config as runtime_config
from secagg.apps.cli import main
from secagg.apps.simulation import runner
from secagg.apps.simulation.federation_plan import federation_config


class _RunReached(Exception):
    """The configuration was accepted and the run would start here."""


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is never started: reaching it raises :class:`_RunReached`, so a warning
    test stops right after load and a refusal test fails if the refusal came late."""

    def reached(*args: Any, **kwargs: Any) -> Any:
        raise _RunReached

    monkeypatch.setattr(runner, "run_simulation", reached)


def _simulate(tmp_path: Path, rate: float, *more: str) -> Result:
    config = tmp_path / "sim.toml"
    config.write_text(
        f"[simulation]\nsample_rate = {rate}\nbranches = 40\n[data]\nworld = 'many'\n"
    )
    args = ["simulate", "--config", str(config), "--rounds", "1"]
    return CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run"), *more])


def test_small_draws_are_said_once_in_the_simulations_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def plans_as_the_run_does(config: Any, out: Path, *args: Any) -> Any:
        # the early checks and the federation each build the federation's config
        # (which warned again, twice): done here, under the run's console
        for _ in range(2):
            federation_config(config, 33, tmp_path / "state.db")
        raise _RunReached

    monkeypatch.setattr(runner, "run_simulation", plans_as_the_run_does)
    # 44 % of Binomial(40, 0.3) draws are below the 12 clients a round needs
    result = _simulate(tmp_path, 0.3, "--quiet")
    assert isinstance(result.exception, _RunReached), result.output
    said = [line for line in result.stderr.splitlines() if "SmallDrawWarning" in line]
    assert len(said) == 1, result.stderr
    line = said[0]
    assert line.startswith("warning: SmallDrawWarning: simulation.sample_rate = 0.3 over ")
    assert "simulation.branches = 40" in line and "simulation.corrupt_fraction = 0.25" in line
    assert "[sampling]" not in line and "<string>" not in result.stderr


def test_the_whole_cohort_says_no_small_draw(tmp_path: Path, no_run: None) -> None:
    """The default rate (1: every branch each round) draws no small round."""
    result = _simulate(tmp_path, 1.0)
    assert isinstance(result.exception, _RunReached), result.output
    assert "SmallDrawWarning" not in result.stderr and "warning" not in result.stderr


@pytest.mark.parametrize(
    ("rate", "cause"),
    [
        (0.26, "a round of 11 clients drawn from a population of 40"),  # expected draw
        (0.28, "55.3 % of the draws are smaller"),  # most draws abort
    ],
)
def test_a_rate_no_round_runs_with_is_refused_by_its_keys(
    tmp_path: Path, no_run: None, rate: float, cause: str
) -> None:
    result = _simulate(tmp_path, rate)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    line = lines[0]
    assert f"simulation.sample_rate = {rate}" in line and cause in line
    assert "simulation.branches = 40" in line and "simulation.corrupt_fraction" in line
    assert "tolerated_dropout" not in line and "[sampling]" not in line
    assert "backend.corrupt_fraction" not in line


@pytest.mark.parametrize(("code", "status"), [(errno.EACCES, 1), (errno.EIO, 1), (errno.ENOENT, 2)])
def test_a_config_the_machine_will_not_read_names_the_flag(
    tmp_path: Path, no_run: None, monkeypatch: pytest.MonkeyPatch, code: int, status: int
) -> None:
    real = runtime_config.read_regular_file

    def refused(path: Any, *args: Any) -> bytes:
        if str(path).endswith("sim.toml"):
            raise OSError(code, errno.errorcode[code], str(path))
        return real(path, *args)

    monkeypatch.setattr(runtime_config, "read_regular_file", refused)
    result = _simulate(tmp_path, 1.0)
    assert result.exit_code == status, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert "--config" in lines[0] and str(tmp_path / "sim.toml") in lines[0]
    assert errno.errorcode[code] in lines[0]


@pytest.mark.parametrize(
    ("code", "status"), [(errno.EACCES, 1), (errno.EROFS, 1), (errno.ENOTDIR, 2)]
)
def test_out_the_machine_will_not_let_be_written_follows_the_one_rule(
    tmp_path: Path, no_run: None, monkeypatch: pytest.MonkeyPatch, code: int, status: int
) -> None:
    real = Path.mkdir

    def refused(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == tmp_path / "run":
            raise OSError(code, errno.errorcode[code], str(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused)
    result = _simulate(tmp_path, 1.0)
    assert result.exit_code == status, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert "--out" in lines[0] and str(tmp_path / "run") in lines[0]
    assert errno.errorcode[code] in lines[0]
