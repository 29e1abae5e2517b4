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
