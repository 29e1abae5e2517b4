"""A file read from Python runs the rounds ``secagg simulate --config`` runs with it.

Why: the noise added once takes :data:`RECORD_DISTRIBUTED_ROUNDS` (30) when neither the
file nor ``--rounds`` sets the rounds, but only ``secagg simulate`` applied that rule:
``SimulationConfig.load`` (docs/scaling.md's way to run a file from Python) and
``SimulationConfig.from_dict`` read the same file as 10 rounds (second review of the
noise once's defaults, 2026-12-07), although the file layout they document says 30.
The constructor keeps 10 for every mechanism, and says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import RECORD_DISTRIBUTED_ROUNDS, SimulationConfig
from secagg.errors import ConfigurationError

NOISE_ONCE = '[privacy]\nunit = "record"\nmechanism = "distributed"\n'


def test_a_file_without_rounds_loads_the_rounds_the_cli_runs(tmp_path: Path) -> None:
    path = tmp_path / "once.toml"
    path.write_text(NOISE_ONCE)
    assert build_config(str(path), {}).rounds == RECORD_DISTRIBUTED_ROUNDS
    assert SimulationConfig.load(path).rounds == RECORD_DISTRIBUTED_ROUNDS
    table = {"privacy": {"unit": "record", "mechanism": "distributed"}}
    assert SimulationConfig.from_dict(table).rounds == RECORD_DISTRIBUTED_ROUNDS


@pytest.mark.parametrize("rounds", [1, 10, 12])
def test_a_file_setting_rounds_keeps_them(tmp_path: Path, rounds: int) -> None:
    path = tmp_path / "once.toml"
    path.write_text(f"[simulation]\nrounds = {rounds}\n" + NOISE_ONCE)
    assert SimulationConfig.load(path).rounds == build_config(str(path), {}).rounds == rounds


def test_a_base_of_the_callers_keeps_its_rounds(tmp_path: Path) -> None:
    """A base is the caller's configuration: its rounds are its choice, as a flag's."""
    path = tmp_path / "once.toml"
    path.write_text(NOISE_ONCE)
    assert SimulationConfig.load(path, base=SimulationConfig(rounds=7)).rounds == 7
    assert SimulationConfig.load(path, base=SimulationConfig()).rounds == 10


def test_the_constructor_keeps_ten_rounds_and_says_so() -> None:
    config = SimulationConfig(unit="record", mechanism="distributed")
    assert config.rounds == 10
    assert "RECORD_DISTRIBUTED_ROUNDS" in (SimulationConfig.__doc__ or "")


@settings(max_examples=40, deadline=None)
@given(
    unit=st.sampled_from(["record", "client"]),
    mechanism=st.sampled_from(["dpsgd", "distributed", "central", "off"]),
    rounds=st.none() | st.integers(min_value=1, max_value=60),
)
def test_python_and_the_cli_read_any_file_alike(
    unit: str, mechanism: str, rounds: int | None
) -> None:
    text = f'[privacy]\nunit = "{unit}"\nmechanism = "{mechanism}"\n'
    if rounds is not None:
        text = f"[simulation]\nrounds = {rounds}\n" + text
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.toml"
        path.write_text(text)
        try:
            expected = build_config(str(path), {}).rounds
        except ConfigurationError:
            return  # a combination no reader takes (record + central, client + dpsgd)
        assert SimulationConfig.load(path).rounds == expected
