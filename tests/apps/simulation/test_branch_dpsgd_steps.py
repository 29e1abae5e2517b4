"""A branch's DP-SGD charges exactly the steps it took: every Poisson batch, the empty
ones too (Opacus steps on noise alone), and one full-batch step an epoch for a branch
with fewer protected units than a batch. Counted against the optimizer's own steps,
so a change that skipped empty batches (or charged planned steps that never ran)
fails here (hostile review of the simulator's numbers, 2026-12-06: none found)."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import BranchTrainer
from secagg.apps.simulation.config import SimulationConfig


def _branch(rows: int, customers: bool) -> BranchData:
    x = np.linspace(-1.0, 1.0, rows * 5, dtype=np.float32).reshape(rows, 5)
    y = (np.arange(rows) % 5 == 0).astype(np.float32)
    cards = np.arange(rows) // 3 if customers else None
    return BranchData("branch-01", x, y, x, y, 0.2, customers_train=cards)


@pytest.mark.parametrize(
    ("rows", "batch", "customers", "units"),
    [
        (15, 256, False, 15),  # fewer rows than a batch: q = 1, one step an epoch
        (40, 1, False, 40),  # batch 1 of 40: about a third of the batches are empty
        (60, 256, True, 20),  # 20 cards, fewer than a batch
        (200, 1, True, 67),
    ],
)
def test_the_steps_charged_are_the_steps_taken(
    rows: int, batch: int, customers: bool, units: int
) -> None:
    config = SimulationConfig(
        branches=2,
        rounds=2,
        local_epochs=2,
        batch_size=batch,
        noise_multiplier=1.0,
        epsilon=None,
        model="logistic",
    )
    trainer = BranchTrainer(config, _branch(rows, customers), "local")
    assert trainer.dpsgd is not None
    optimizer = trainer.dpsgd._optimizer
    taken = {"steps": 0, "empty": 0}
    step = optimizer.step

    def counted(*args: object, **kwargs: object) -> object:
        taken["steps"] += 1
        return step(*args, **kwargs)

    loss = trainer.dpsgd._loss_fn

    def seen(output: object, target: object) -> object:
        taken["empty"] += len(target) == 0  # type: ignore[arg-type]
        return loss(output, target)

    optimizer.step = counted  # type: ignore[method-assign]
    trainer.dpsgd._loss_fn = seen
    trainer.train(2)
    history = trainer.privacy_report()["history"]
    assert sum(int(s) for _, _, s in history) == taken["steps"]
    rate = min(batch, units) / units if batch < units else 1.0
    expected_per_epoch = 1 if rate == 1.0 else units  # batch 1: q = 1 / units
    assert taken["steps"] == 2 * expected_per_epoch
    assert all(q == pytest.approx(1 / expected_per_epoch) for _, q, _ in history)
    if batch == 1:  # Poisson sampling drew empty batches, and each was charged
        assert taken["empty"] > 0
    # the report's ε is the accountant's over exactly these steps
    assert trainer.epsilon() == pytest.approx(trainer.dpsgd.epsilon())
