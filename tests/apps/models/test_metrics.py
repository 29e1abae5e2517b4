"""Fraud metrics against their brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.metrics import average_precision, fraud_metrics, recall_at_fpr, roc_auc
from secagg.errors import ConfigurationError

# --- metrics against their definitions ---------------------------------------------


def _brute_ap(y: np.ndarray, s: np.ndarray) -> float:
    positives = y.sum()
    total = 0.0
    for threshold in np.unique(s)[::-1]:
        chosen = s >= threshold
        new_tp = y[s == threshold].sum()
        total += new_tp / positives * y[chosen].sum() / chosen.sum()
    return total


def _brute_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


def _brute_recall(y: np.ndarray, s: np.ndarray, max_fpr: float) -> float:
    best = 0.0
    for threshold in np.unique(s):
        chosen = s >= threshold
        if chosen[y == 0].mean() <= max_fpr + 1e-12:
            best = max(best, chosen[y == 1].mean())
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=60).filter(
        lambda rows: 0 < sum(y for y, _ in rows) < len(rows)
    ),
    st.sampled_from([0.0, 0.1, 0.3]),
)
def test_metrics_match_their_definitions_with_ties(rows: list, max_fpr: float) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)  # few distinct values: many ties
    assert average_precision(y, s) == pytest.approx(_brute_ap(y, s))
    assert roc_auc(y, s) == pytest.approx(_brute_auc(y, s))
    assert recall_at_fpr(y, s, max_fpr) == pytest.approx(_brute_recall(y, s, max_fpr))
    order = np.random.default_rng(len(rows)).permutation(len(rows))  # row order is irrelevant
    assert average_precision(y[order], s[order]) == pytest.approx(average_precision(y, s))


def test_metric_edge_cases_and_errors() -> None:
    perfect = fraud_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert (perfect.auprc, perfect.roc_auc, perfect.recall_at_1pct_fpr) == (1.0, 1.0, 1.0)
    assert np.isnan(average_precision(np.zeros(3), np.arange(3.0)))
    with pytest.raises(ConfigurationError, match="0 or 1"):
        roc_auc(np.array([0, 2]), np.array([0.0, 1.0]))
    with pytest.raises(ConfigurationError, match="labels but"):
        roc_auc(np.array([0, 1]), np.array([0.0]))
    with pytest.raises(ConfigurationError, match="finite"):
        roc_auc(np.array([0, 1]), np.array([0.0, np.nan]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_diverged_model_is_reported_not_raised(bad: float) -> None:
    """The ML review: `secagg simulate --seed 5` died with "scores must be finite" after
    its baselines, printed as a usage error. A model that scores NaN or infinity has
    diverged: its metrics say so and are NaN, and the labels are still counted."""
    labels = np.array([0, 0, 1, 1, 0])
    diverged = fraud_metrics(labels, np.array([0.1, bad, 0.8, 0.9, 0.2]))
    assert diverged.diverged
    assert all(np.isnan(v) for v in (diverged.auprc, diverged.roc_auc))
    assert np.isnan(diverged.recall_at_1pct_fpr)
    assert (diverged.positives, diverged.negatives) == (2, 3)
    assert diverged.as_dict()["diverged"] is True
    assert not fraud_metrics(labels, np.array([0.1, 0.5, 0.8, 0.9, 0.2])).diverged
    with pytest.raises(ConfigurationError, match="0 or 1"):  # bad labels stay an error
        fraud_metrics(np.array([0, 2]), np.array([np.nan, 1.0]))
    with pytest.raises(ConfigurationError, match="labels but"):
        fraud_metrics(np.array([0, 1]), np.array([np.nan]))
