"""Non-private training and scoring: the baselines a federated model is measured against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from secagg.errors import ConfigurationError


def as_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """Features and 0/1 labels as the (inputs, target) dataset the trainers expect.

    Refused: shapes that do not match, no rows at all, a label other than 0 or 1 (a
    BCE target of 2 trains without an error) and a non-finite feature."""
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ConfigurationError(f"features {x.shape} and labels {y.shape} do not match")
    if x.shape[0] == 0:
        raise ConfigurationError("no rows to train on")
    bad = ~np.isin(y, (0, 1)) if np.asarray(y).dtype.kind in "biuf" else np.ones(y.shape, bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigurationError(f"labels must be 0 or 1; row {i} has {np.asarray(y)[i].item()!r}")
    if not np.all(np.isfinite(x)):
        i, j = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise ConfigurationError(f"the feature at row {i}, column {j} is not finite")
    return TensorDataset(
        torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)),
        torch.as_tensor(np.asarray(y, dtype=np.float32)).reshape(-1, 1),
    )


def train_plain(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    loss_fn: nn.Module,
    seed: int,
    after_epoch: Callable[[int, nn.Module], None] | None = None,
) -> nn.Module:
    """Plain minibatch SGD (no privacy) over the trainable parameters.

    Each epoch visits the rows in a permutation drawn from a torch generator seeded by
    ``seed``, one index per batch (no per-row fetching: 120 000 rows an epoch in well
    under a second). ``after_epoch(epoch, model)`` runs after every epoch: the tuned
    centralized baseline picks its epoch count on validation data with it."""
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ConfigurationError("epochs, batch_size and learning_rate must be positive")
    data = as_dataset(x, y)
    inputs, target = data.tensors
    generator = torch.Generator().manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ConfigurationError("the model has no trainable parameters")
    step = -float(learning_rate)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(inputs.shape[0], generator=generator)
        for start in range(0, inputs.shape[0], batch_size):
            batch = order[start : start + batch_size]
            for parameter in trainable:
                parameter.grad = None
            loss_fn(model(inputs[batch]), target[batch]).backward()
            # torch.optim.SGD's step without momentum or decay, as its CPU path computes
            # it (param += -lr * grad), without the optimizer's per-step hooks and
            # profiler records: a fifth of a step's time for a small model, and the
            # default simulate's tuned fits take about 59 000 steps
            with torch.no_grad():
                for parameter in trainable:
                    if parameter.grad is not None:
                        parameter.add_(parameter.grad, alpha=step)
        if after_epoch is not None:
            after_epoch(epoch + 1, model)
            model.train()
    return model


def scores(model: nn.Module, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Fraud logits for ``x`` (float64), without tracking gradients."""
    # the model's own dtype: numpy's default float64 against float32 weights is an error
    param = next(model.parameters(), None)
    dtype = np.float64 if param is not None and param.dtype == torch.float64 else np.float32
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            chunk = torch.as_tensor(
                np.ascontiguousarray(x[start : start + batch_size], dtype=dtype)
            )
            out.append(model(chunk).reshape(-1).double().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros(0)
