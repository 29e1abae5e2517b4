"""The noise added once runs its own tuned number of rounds unless the user sets them.

Why: each round of record-level DP with the noise added once is one step of full-batch
DP gradient descent, and the tuning seeds chose 30 steps over the 10 every other
mechanism runs (``RECORD_DISTRIBUTED_ROUNDS``). A user's ``--rounds`` or file key must
still win, and no other mechanism may change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import RECORD_DISTRIBUTED_ROUNDS, SimulationConfig


def test_the_noise_once_runs_its_tuned_rounds_by_default() -> None:
    config = build_config(None, {"unit": "record", "mechanism": "distributed"})
    assert config.record_distributed
    assert config.rounds == RECORD_DISTRIBUTED_ROUNDS == 30


@pytest.mark.parametrize("rounds", [1, 10, 12, 40])
def test_a_flag_sets_the_rounds_of_the_noise_once(rounds: int) -> None:
    flags = {"unit": "record", "mechanism": "distributed", "rounds": rounds}
    assert build_config(None, flags).rounds == rounds


def test_a_file_sets_the_rounds_of_the_noise_once(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[simulation]\nrounds = 10\n[privacy]\nunit = "record"\nmechanism = "distributed"\n'
    )
    assert build_config(str(path), {}).rounds == 10
    # the file's mechanism, the flag's rounds
    assert build_config(str(path), {"rounds": 7}).rounds == 7


def test_a_file_choosing_the_noise_once_without_rounds_gets_its_default(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[privacy]\nunit = "record"\nmechanism = "distributed"\n')
    assert build_config(str(path), {}).rounds == RECORD_DISTRIBUTED_ROUNDS


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"mechanism": "dpsgd"},
        {"mechanism": "off"},
        {"mechanism": "central"},
        {"mechanism": "distributed"},  # client level: the mechanism implies the unit
        {"unit": "client", "mechanism": "distributed"},
        {"unit": "record", "mechanism": "off"},
    ],
)
def test_every_other_mechanism_keeps_ten_rounds(flags: dict[str, str]) -> None:
    config = build_config(None, flags)
    assert not config.record_distributed
    assert config.rounds == SimulationConfig.rounds == 10


def test_the_rounds_run_are_recorded_so_a_replay_runs_them(tmp_path: Path) -> None:
    """A run folder's config.toml replays the run: it must hold the 30 rounds that ran,
    not leave them to a default that may change."""
    config = build_config(None, {"unit": "record", "mechanism": "distributed"})
    assert config.as_dict()["rounds"] == RECORD_DISTRIBUTED_ROUNDS


def test_every_seed_the_rounds_were_chosen_on_is_a_tuning_seed() -> None:
    """The rounds were chosen on seeds 1000-1009: an experiment reporting any of them
    must say it is in-sample, so each is one of TUNING_SEEDS (1000-1002 until then)."""
    from secagg.apps.simulation.config import TUNING_SEEDS

    assert set(range(1000, 1010)) <= set(TUNING_SEEDS)
    assert not set(range(0, 5)) & set(TUNING_SEEDS)  # the reported seeds stay out
