"""The clipped per-unit gradient sum of record-level distributed DP, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from secagg.dp.gradient_sum import clipped_gradient_sum
from secagg.dp.user_level import CustomerLoss, group_by_customer
from secagg.errors import ConfigurationError


def _model(features: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, 1))


def _brute_force(model: nn.Module, inputs, targets, loss_fn, clip: float) -> np.ndarray:
    """One backward pass per unit, clipped and summed in float64."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = np.zeros(sum(p.numel() for p in params))
    for x, y in zip(inputs, targets, strict=True):
        model.zero_grad()
        loss_fn(model(x.unsqueeze(0)), y.unsqueeze(0)).backward()
        g = torch.cat([p.grad.reshape(-1) for p in params]).double().numpy()
        norm = np.linalg.norm(g)
        total += g * min(1.0, clip / norm) if norm > 0 else g
    return total


def _rows(seed: int, n: int = 40, features: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)  # test data only
    x = torch.as_tensor(rng.normal(size=(n, features)) * 3, dtype=torch.float32)
    y = torch.as_tensor((rng.random((n, 1)) < 0.3).astype(np.float32))
    return x, y


@pytest.mark.parametrize("clip", [0.05, 1.0, 100.0])
def test_row_units_match_one_backward_pass_per_row(clip: float) -> None:
    x, y = _rows(1)
    model = _model(4)
    loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]))
    got = clipped_gradient_sum(model, x, y, loss, clip=clip, chunk=7)
    assert got == pytest.approx(_brute_force(model, x, y, loss, clip), rel=1e-5, abs=1e-6)


def test_customer_units_match_one_backward_pass_per_customer() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 4))
    y = (rng.random(60) < 0.2).astype(float)
    customers = rng.integers(0, 15, size=60)
    rows, target = group_by_customer(x, y, customers, max_rows=3, seed=b"s").tensors
    model = _model(4, seed=3)
    loss = CustomerLoss(positive_weight=10.0)
    got = clipped_gradient_sum(model, rows, target, loss, clip=0.5)
    assert got == pytest.approx(_brute_force(model, rows, target, loss, 0.5), rel=1e-5, abs=1e-6)


def test_frozen_parameters_get_no_entry_and_the_order_is_the_model_vectors() -> None:
    x, y = _rows(3)
    model = _model(4)
    for p in model[0].parameters():
        p.requires_grad_(False)
    loss = nn.BCEWithLogitsLoss()
    got = clipped_gradient_sum(model, x, y, loss, clip=1.0)
    assert got.shape == (6,)  # the output layer: 5 weights and a bias
    assert got == pytest.approx(_brute_force(model, x, y, loss, 1.0), rel=1e-5, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), drop=st.integers(0, 39), clip=st.floats(0.01, 10.0))
def test_one_unit_moves_the_sum_by_at_most_the_clip(seed: int, drop: int, clip: float) -> None:
    """The sensitivity the noise is sized for: add or remove any one unit."""
    x, y = _rows(seed)
    model = _model(4, seed=seed % 7)
    loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]))
    full = clipped_gradient_sum(model, x, y, loss, clip=clip)
    keep = torch.arange(x.shape[0]) != drop
    without = clipped_gradient_sum(model, x[keep], y[keep], loss, clip=clip)
    assert np.linalg.norm(full - without) <= clip * (1 + 1e-6)


def test_bad_arguments_are_typed_errors() -> None:
    x, y = _rows(0)
    model = _model(4)
    loss = nn.BCEWithLogitsLoss()
    with pytest.raises(ConfigurationError, match="clip"):
        clipped_gradient_sum(model, x, y, loss, clip=0.0)
    with pytest.raises(ConfigurationError, match="units"):
        clipped_gradient_sum(model, x, y[:3], loss, clip=1.0)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ConfigurationError, match="trainable"):
        clipped_gradient_sum(model, x, y, loss, clip=1.0)


def test_a_diverged_model_raises_floating_point_error() -> None:
    x, y = _rows(0)
    model = _model(4)
    with torch.no_grad():
        model[2].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError):
        clipped_gradient_sum(model, x, y, nn.BCEWithLogitsLoss(), clip=1.0)


#: finite float32 features that overflow a model's forward or backward pass
_OVERFLOWING = (-3.0e38, 3.0e38, -1.0e38, 3.4e38)


def _linear_model(features: int) -> nn.Module:
    model = nn.Linear(features, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    return model


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    unit=st.integers(0, 39),
    value=st.sampled_from(_OVERFLOWING),
    columns=st.sets(st.integers(0, 3), min_size=1),
    clip=st.floats(0.01, 10.0),
)
def test_a_unit_whose_gradient_overflows_adds_nothing_and_raises_nothing(
    seed: int, unit: int, value: float, columns: set[int], clip: float
) -> None:
    """Adding one unit never changes whether the sum succeeds: a unit of finite but
    extreme features (NaN or infinite gradient) adds the zero vector, so the sum with it
    is the sum without it, and the sensitivity holds. The sum used to raise
    FloatingPointError because of that one unit: the branch's round failed, telling the
    server the unit was there, an outcome no epsilon covers."""
    x, y = _rows(seed)
    x[unit, sorted(columns)] = value
    model = _linear_model(4)
    loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]))
    keep = torch.arange(x.shape[0]) != unit
    without = clipped_gradient_sum(model, x[keep], y[keep], loss, clip=clip)
    with_it = clipped_gradient_sum(model, x, y, loss, clip=clip, chunk=7)
    assert np.all(np.isfinite(with_it))
    assert np.linalg.norm(with_it - without) <= clip * (1 + 1e-6)


@pytest.mark.parametrize(
    ("value", "label"),
    [(-3.0e38, 1.0), (float("inf"), 0.0), (float("-inf"), 1.0), (float("nan"), 0.0)],
)
def test_a_non_finite_gradient_is_the_zero_vector(value: float, label: float) -> None:
    """A unit whose gradient is NaN or infinite (its features overflow the logit, or are
    not finite: this function takes tensors as given) contributes exactly zero."""
    x, y = _rows(5)
    x[3, :] = value
    y[3] = label
    model = _linear_model(4)
    loss = nn.BCEWithLogitsLoss()
    keep = torch.arange(x.shape[0]) != 3
    got = clipped_gradient_sum(model, x, y, loss, clip=1.0)
    expected = clipped_gradient_sum(model, x[keep], y[keep], loss, clip=1.0)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
