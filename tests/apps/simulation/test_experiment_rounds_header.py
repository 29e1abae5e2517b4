"""experiment.md (and the console's experiment lines) name the rounds each seed planned.

Why: the rounds now depend on the mechanism (the noise added once runs
RECORD_DISTRIBUTED_ROUNDS, 30, when none are given; every other mechanism 10), and an
experiment's header named the branches, backend, mechanism and seeds but not the
rounds: the 30-round rerun of seeds 0-4 and its 10-round control (docs/results.md)
wrote experiment.md files with the same header, told apart only inside experiment.json
or a seed's report.md (second review of the noise once's defaults, 2026-12-07).
"""

from __future__ import annotations

import pytest

from secagg.apps.simulation.config import RECORD_DISTRIBUTED_ROUNDS, SimulationConfig
from secagg.apps.simulation.experiment import ExperimentResult, experiment_lines


def _lines(config: SimulationConfig) -> list[str]:
    result = ExperimentResult(config=config, seeds=[0, 1])
    for seed in result.seeds:
        result.per_seed[seed] = {
            "federated (secagg+)": {"auprc": 0.5},
            "centralized (non-private)": {"auprc": 0.6},
        }
        result.ratios[seed] = 0.5 / 0.6
        result.verdicts[seed] = {}
        result.seconds[seed] = 1.0
    return experiment_lines(result)


@pytest.mark.parametrize(
    ("changes", "rounds"),
    [
        ({"unit": "record", "mechanism": "distributed", "rounds": RECORD_DISTRIBUTED_ROUNDS}, 30),
        ({"unit": "record", "mechanism": "distributed", "rounds": 10}, 10),
        ({}, 10),
        ({"rounds": 1}, 1),
    ],
)
def test_the_header_names_the_rounds_each_seed_planned(
    changes: dict[str, object], rounds: int
) -> None:
    header = _lines(SimulationConfig(seeds=2, **changes))[0]
    assert header.startswith("# Experiment: ")
    plural = "s" if rounds != 1 else ""
    assert f"{rounds} round{plural} planned a seed" in header, header


def test_ten_and_thirty_rounds_read_apart() -> None:
    noise_once = {"unit": "record", "mechanism": "distributed", "seeds": 2}
    thirty = _lines(SimulationConfig(rounds=30, **noise_once))[0]
    ten = _lines(SimulationConfig(rounds=10, **noise_once))[0]
    assert thirty != ten
