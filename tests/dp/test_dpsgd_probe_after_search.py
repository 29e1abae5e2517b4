"""A trainer's check before training (:meth:`DPSGDTrainer._probe`) takes the epsilon its
calibration's search already evaluated for that very history, instead of asking the
accountant again.

Why: at the calibrated z the history a trainer checks is the one the search evaluated
last, and every trainer of a branch (local-only, federated) evaluated it again: near
PRV's floor (``secagg simulate --epsilon 1e6``) 1-2 s of CPU each, six of them 11 of a
small run's 19 s. The same function of the same arguments gives the same float, so the
figure is unchanged (checked here against a fresh evaluation)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from secagg.dp import accountants, dpsgd

STATS = (5.773502691896258, 1.0, 1)  # the simulator's noised feature statistics


def test_the_check_before_training_reuses_the_search_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dpsgd, "_CALIBRATIONS", {})
    monkeypatch.setattr(dpsgd, "_SEARCHED", {})
    asked: list[tuple[Any, ...]] = []
    real = accountants.opacus_epsilon

    def counted(name: str, history: Any, delta: float) -> float:
        asked.append((name, tuple(tuple(run) for run in history), delta))
        return real(name, history, delta)

    monkeypatch.setattr(accountants, "opacus_epsilon", counted)
    generator = torch.Generator().manual_seed(7)
    data = TensorDataset(torch.randn(200, 4, generator=generator), torch.randint(0, 2, (200,)))
    trainer = dpsgd.DPSGDTrainer(
        nn.Linear(4, 2),
        data,
        batch_size=100,
        learning_rate=0.1,
        max_grad_norm=1.0,
        target_epsilon=3.0,
        epochs=1,
        delta=1e-3,
        prior_releases=[STATS],
        replay_seed=b"probe-after-search",
    )
    searched = list(asked)
    final = ("prv", (STATS, (trainer.noise_multiplier, trainer.sample_rate, 2)), 1e-3)
    assert final in searched  # the search evaluated the history the trainer will check
    asked.clear()
    report = trainer.train(1)
    assert final not in asked  # before: asked again, by the check before training
    assert report.epsilon == real("prv", list(final[1]), 1e-3)  # the same float
