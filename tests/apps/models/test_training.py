"""The non-private trainer's inputs: what it refuses and what it converts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from secagg.apps.models.training import as_dataset, scores, train_plain
from secagg.errors import ConfigurationError


def _rows(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5, np.nan])
def test_labels_other_than_0_and_1_are_refused(bad: float) -> None:
    """A label 2 was a BCE target of 2 (and NaN a NaN loss): the model trained without a
    word on labels that are not fraud / legitimate."""
    y = np.r_[np.zeros(9), bad]
    with pytest.raises(ConfigurationError, match=r"labels must be 0 or 1; row 9 has"):
        as_dataset(_rows(), y)


def test_non_finite_features_and_no_rows_are_refused() -> None:
    """A NaN feature trained a NaN model, and zero rows returned the untrained model as
    if it had been fitted."""
    x = _rows()
    x[4, 1] = np.inf
    with pytest.raises(ConfigurationError, match=r"feature at row 4, column 1 is not finite"):
        as_dataset(x, np.zeros(10))
    with pytest.raises(ConfigurationError, match="no rows to train on"):
        train_plain(
            torch.nn.Linear(2, 1), _rows()[:0], np.zeros(0), epochs=1, batch_size=4,
            learning_rate=0.1, loss_fn=torch.nn.BCEWithLogitsLoss(), seed=0,
        )  # fmt: skip


def test_scores_take_float64_features() -> None:
    """numpy's default float64 raised torch's "mat1 and mat2 must have the same dtype"."""
    model = torch.nn.Linear(2, 1)
    x = _rows()
    assert np.array_equal(scores(model, x.astype(np.float64)), scores(model, x))


def _reference_sgd(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, **kw: object) -> None:
    """What train_plain computed through torch.optim.SGD before its step was written out:
    the same permutation, batches and loss, the optimizer's zero_grad and step."""
    from secagg.apps.models.nets import fraud_loss

    inputs, target = as_dataset(x, y).tensors
    generator = torch.Generator().manual_seed(int(kw["seed"]))  # type: ignore[call-overload]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=float(kw["learning_rate"]))  # type: ignore[arg-type]
    loss_fn = fraud_loss(10.0)
    batch_size = int(kw["batch_size"])  # type: ignore[call-overload]
    for _ in range(int(kw["epochs"])):  # type: ignore[call-overload]
        order = torch.randperm(inputs.shape[0], generator=generator)
        for start in range(0, inputs.shape[0], batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs[batch]), target[batch]).backward()
            optimizer.step()


@pytest.mark.parametrize("trainable", ["all", "head"])
def test_the_written_out_sgd_step_trains_what_torch_optim_sgd_trained(trainable: str) -> None:
    """Bit for bit, with every parameter trainable and with the head only (frozen
    parameters have no gradient and must not move): the default simulate's model
    digest depends on it."""
    from secagg.apps.models.nets import build_model, fraud_loss, set_trainable

    draw = np.random.default_rng(3)  # test data only
    x = draw.standard_normal((700, 12)).astype(np.float32)
    y = (np.arange(700) % 9 == 0).astype(np.float32)
    settings = {"epochs": 2, "batch_size": 64, "learning_rate": 0.25, "seed": 11}
    ours = set_trainable(build_model("mlp", 12, seed=5), trainable)
    reference = set_trainable(build_model("mlp", 12, seed=5), trainable)
    train_plain(ours, x, y, loss_fn=fraud_loss(10.0), **settings)  # type: ignore[arg-type]
    _reference_sgd(reference, x, y, **settings)
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine, theirs)
