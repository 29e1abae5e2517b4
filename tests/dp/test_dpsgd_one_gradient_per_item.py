"""DP-SGD refuses a model whose per-sample gradients are not one per protected item.

Opacus clips along the batch axis its layers see. A model that folds a customer's rows
into that axis (``x.reshape(b * r, f)``, then back to ``[b, r]``) passed every shape
check, trained, and reported a customer-level epsilon (3.17) while each *row* had been
clipped to ``C``: one customer of six rows moved a step by up to ``6 C``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from secagg.dp.dpsgd import DPSGDTrainer
from secagg.dp.user_level import CustomerLoss, group_by_customer
from secagg.errors import ConfigurationError

ROWS = 6


class RowWise(nn.Module):
    """One logit per row, computed with the rows folded into the batch axis."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, rows, features = x.shape
        return self.linear(x.reshape(batch * rows, features)).reshape(batch, rows)


class PerCustomer(nn.Module):
    """The same logits with the batch axis kept: nn.Linear on ``[b, r, f]``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


def _trainer(model: nn.Module) -> DPSGDTrainer:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20 * ROWS, 3)).astype(np.float32)
    y = (rng.random(20 * ROWS) < 0.5).astype(np.float32)
    customers = np.repeat(np.arange(20), ROWS)
    data = group_by_customer(x, y, customers, max_rows=ROWS, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DPSGDTrainer(
            model,
            data,
            batch_size=10,
            learning_rate=0.1,
            max_grad_norm=1.0,
            noise_multiplier=1.0,
            loss_fn=CustomerLoss(),
            delta=1e-3,
            replay_seed=b"one gradient per item",
        )


def test_a_model_that_folds_rows_into_the_batch_is_refused_before_its_step() -> None:
    model = RowWise(3)
    trainer = _trainer(model)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(
        ConfigurationError,
        match=r"per-sample gradients count \d+ samples in a batch of \d+ customers",
    ):
        trainer.train(1)
    # the seeded first batch holds customers: refused before any step, nothing charged
    assert trainer.steps == 0
    assert trainer.epsilon() == 0.0
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))


def test_a_model_that_keeps_the_batch_axis_trains() -> None:
    trainer = _trainer(PerCustomer(3))
    report = trainer.train(1)
    assert report.steps == trainer.steps_per_epoch
    assert 0 < report.epsilon < float("inf")


class HalfRecords(nn.Module):
    """Record level: each record's 4 features split into two samples of 2."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.reshape(len(x) * 2, 2)).reshape(len(x), 2).sum(dim=1, keepdim=True)


def test_a_record_split_into_samples_is_refused_too() -> None:
    rng = np.random.default_rng(1)
    data = torch.utils.data.TensorDataset(
        torch.tensor(rng.normal(size=(40, 4)), dtype=torch.float32),
        torch.tensor((rng.random((40, 1)) < 0.5), dtype=torch.float32),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = DPSGDTrainer(
            HalfRecords(),
            data,
            batch_size=20,
            learning_rate=0.1,
            max_grad_norm=1.0,
            noise_multiplier=1.0,
            loss_fn=nn.BCEWithLogitsLoss(),
            delta=1e-3,
            replay_seed=b"one gradient per record",
        )
    with pytest.raises(ConfigurationError, match="records"):
        trainer.train(1)
