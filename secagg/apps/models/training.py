"""Non-private training and scoring: the baselines a federated model is measured against."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from secagg.errors import ConfigurationError


def as_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """Features and 0/1 labels as the (inputs, target) dataset the trainers expect."""
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ConfigurationError(f"features {x.shape} and labels {y.shape} do not match")
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
) -> nn.Module:
    """Plain minibatch SGD (no privacy): shuffles from a generator seeded by ``seed``."""
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ConfigurationError("epochs, batch_size and learning_rate must be positive")
    loader = DataLoader(
        as_dataset(x, y),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    model.train()
    for _ in range(epochs):
        for inputs, target in loader:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs), target).backward()
            optimizer.step()
    return model


def scores(model: nn.Module, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Fraud logits for ``x`` (float64), without tracking gradients."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            chunk = torch.as_tensor(np.ascontiguousarray(x[start : start + batch_size]))
            out.append(model(chunk).reshape(-1).double().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros(0)
