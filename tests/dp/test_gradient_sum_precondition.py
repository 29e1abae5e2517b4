"""A public diagonal preconditioner applied to each unit's gradient before its clip.

Why: a preconditioner that depends on no unit's data (measured on public data) may
reshape each gradient before the clip without touching the sensitivity the noise is
sized for (AdaDPS, Li et al. 2022); applied after the clip it would not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from secagg.dp.gradient_sum import clipped_gradient_sum
from secagg.errors import ConfigurationError


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 1))


def _rows(seed: int, n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)  # test data only
    x = torch.as_tensor(rng.normal(size=(n, 4)) * 3, dtype=torch.float32)
    y = torch.as_tensor((rng.random((n, 1)) < 0.3).astype(np.float32))
    return x, y


def _scaled_then_clipped(model: nn.Module, x, y, loss_fn, clip: float, scale) -> np.ndarray:
    """One backward pass per row, scaled coordinate by coordinate, then clipped."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = np.zeros(sum(p.numel() for p in params))
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        loss_fn(model(xi.unsqueeze(0)), yi.unsqueeze(0)).backward()
        g = torch.cat([p.grad.reshape(-1) for p in params]).double().numpy() * scale
        norm = np.linalg.norm(g)
        total += g * min(1.0, clip / norm) if norm > 0 else g
    return total


def test_a_preconditioner_of_ones_changes_nothing() -> None:
    x, y = _rows(1)
    model = _model()
    loss = nn.BCEWithLogitsLoss()
    size = sum(p.numel() for p in model.parameters())
    plain = clipped_gradient_sum(model, x, y, loss, clip=0.3)
    ones = clipped_gradient_sum(model, x, y, loss, clip=0.3, precondition=np.ones(size))
    np.testing.assert_array_equal(plain, ones)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), clip=st.floats(0.01, 10.0), low=st.floats(0.01, 1.0))
def test_each_gradient_is_scaled_before_its_clip(seed: int, clip: float, low: float) -> None:
    x, y = _rows(seed)
    model = _model(seed % 5)
    loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]))
    size = sum(p.numel() for p in model.parameters())
    scale = np.random.default_rng(seed).uniform(low, 10.0, size)  # test input only
    got = clipped_gradient_sum(model, x, y, loss, clip=clip, chunk=7, precondition=scale)
    want = _scaled_then_clipped(model, x, y, loss, clip, scale)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
    # the sensitivity is still the clip: drop any one row
    without = clipped_gradient_sum(model, x[1:], y[1:], loss, clip=clip, precondition=scale)
    assert np.linalg.norm(got - without) <= clip * (1 + 1e-6)


@pytest.mark.parametrize(
    "bad", [np.ones(3), np.zeros(31), -np.ones(31), np.full(31, np.nan), np.full(31, np.inf)]
)
def test_a_preconditioner_of_the_wrong_shape_or_sign_is_refused(bad: np.ndarray) -> None:
    x, y = _rows(0)
    with pytest.raises(ConfigurationError, match="precondition"):
        clipped_gradient_sum(_model(), x, y, nn.BCEWithLogitsLoss(), clip=1.0, precondition=bad)
