"""Local-only under record-level distributed DP keeps the steps a branch alone does best with.

Why: the noise added once went to 30 rounds (``RECORD_DISTRIBUTED_ROUNDS``), and
local-only, which took the federation's rounds, went with it: alone, a branch's noise on
its own mean gradient is N / N_b times the federation's and grows with the steps its
budget covers, so at 30 steps local-only scored 0.348 pooled on seed 0 against 0.614 at
10, and every branch's verdict ("at least local") was judged against a baseline the
federation's choice had weakened. Local-only now takes the federation's rounds, at most
``LOCAL_ONLY_MAX_STEPS`` (10), and its recorded parameters and epsilon say so.
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import (
    LOCAL_ONLY_MAX_STEPS,
    BranchTrainer,
    local_only_steps,
)
from secagg.apps.simulation.config import SimulationConfig

BASE = {"branches": 2, "local_epochs": 1, "model": "logistic", "batch_size": 16}


def _branch(rows: int = 60) -> BranchData:
    """``rows`` rows of 20 cards (3 rows each), a fifth of them fraud."""
    grid = np.linspace(-1.0, 1.0, rows * 4, dtype=np.float32).reshape(rows, 4)
    labels = (np.arange(rows) % 5 == 0).astype(np.float32)
    cards = np.arange(rows) // 3
    return BranchData("branch-01", grid, labels, grid, labels, 0.2, customers_train=cards)


@pytest.mark.parametrize("rounds", [1, 3, 10, 11, 30, 400])
def test_local_only_takes_the_rounds_at_most_its_cap(rounds: int) -> None:
    config = SimulationConfig(**BASE, rounds=rounds, unit="record", mechanism="distributed")
    assert local_only_steps(config) == min(rounds, LOCAL_ONLY_MAX_STEPS) == min(rounds, 10)


@pytest.mark.parametrize("rounds", [3, 30])
def test_the_steps_taken_are_the_steps_accounted_and_recorded(
    rounds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secagg.apps.simulation.privacy import local_only_parameters
    from secagg.dp.accounting import epsilon, noise_multiplier_for

    config = SimulationConfig(
        **BASE, rounds=rounds, unit="record", mechanism="distributed", epsilon=3.0
    )
    branch = _branch()
    trainer = BranchTrainer(config, branch, "local")
    steps = []
    original = trainer.gradient_step

    def counted() -> np.ndarray:
        steps.append(1)
        return original()

    monkeypatch.setattr(trainer, "gradient_step", counted)
    trainer.train(config.epochs)
    expected = min(rounds, 10)
    assert len(steps) == expected  # the gradient steps it actually took
    z = noise_multiplier_for(3.0, config.delta, 1.0, expected)
    assert trainer.local_noise_multiplier == pytest.approx(z)
    params = local_only_parameters(config, trainer, branch)
    assert params["steps"] == expected
    assert params["epsilon"] == trainer.epsilon() == epsilon(z, 1.0, expected, config.delta)
    assert trainer.epsilon() <= 3.0 + 1e-9
