"""The metrics fraud teams read: AUPRC, ROC-AUC and recall at a fixed false-positive rate.

Accuracy is meaningless at a 0.1 % fraud rate (predicting "legit" everywhere
scores 99.9 %). AUPRC (average precision) is the headline: its no-skill value
is the fraud rate itself. Recall at 1 % FPR answers the operational question
"how much fraud do we catch if analysts can review one legitimate transaction
in a hundred?". Ties in the scores are handled exactly (a tie block counts as
one threshold), so the numbers do not depend on the order of the rows.

A model whose training blew up scores NaN or infinity: it ranks nothing.
:func:`fraud_metrics` then says so (``diverged``, every metric NaN) instead of
raising, so one diverging model (a baseline at too high a learning rate, say)
is a row of the report that reads "diverged", not a run that dies after its
other settings were computed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from secagg.errors import ConfigurationError


@dataclass(frozen=True)
class FraudMetrics:
    auprc: float
    roc_auc: float
    recall_at_1pct_fpr: float
    positives: int
    negatives: int
    #: the scores were not all finite: the metrics are NaN because there is no ranking
    diverged: bool = False

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _checked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ConfigurationError(f"{y.size} labels but {s.size} scores")
    if not np.all((y == 0) | (y == 1)):
        raise ConfigurationError("labels must be 0 or 1")
    if not np.all(np.isfinite(s)):
        raise ConfigurationError("scores must be finite")
    return y.astype(bool), s


def _threshold_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest first."""
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return tp.astype(np.float64), fp.astype(np.float64)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUPRC as average precision: sum over thresholds of (recall step) x precision."""
    y, s = _checked(labels, scores)
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    tp, fp = _threshold_counts(y, s)
    precision = tp / (tp + fp)
    recall_steps = np.diff(np.r_[0.0, tp]) / positives
    return float(np.sum(recall_steps * precision))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), by trapezoids over thresholds."""
    y, s = _checked(labels, scores)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    tp, fp = _threshold_counts(y, s)
    tpr = np.r_[0.0, tp / positives]
    fpr = np.r_[0.0, fp / negatives]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """The highest recall of any threshold whose false-positive rate is at most ``max_fpr``."""
    if not 0 <= max_fpr <= 1:
        raise ConfigurationError("max_fpr must lie in [0, 1]")
    y, s = _checked(labels, scores)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    tp, fp = _threshold_counts(y, s)
    allowed = fp / negatives <= max_fpr + 1e-12
    return float(tp[allowed].max() / positives) if allowed.any() else 0.0


def fraud_metrics(labels: np.ndarray, scores: np.ndarray) -> FraudMetrics:
    """Every metric of one model on one test set; ``diverged`` (and NaN metrics) when
    its scores are not all finite. Labels and shapes are still checked."""
    finite = np.isfinite(np.asarray(scores, dtype=np.float64))
    if not finite.all():
        y, _ = _checked(labels, np.where(finite, scores, 0.0))
        return FraudMetrics(
            auprc=math.nan,
            roc_auc=math.nan,
            recall_at_1pct_fpr=math.nan,
            positives=int(y.sum()),
            negatives=int((~y).sum()),
            diverged=True,
        )
    y, _ = _checked(labels, scores)
    return FraudMetrics(
        auprc=average_precision(labels, scores),
        roc_auc=roc_auc(labels, scores),
        recall_at_1pct_fpr=recall_at_fpr(labels, scores, 0.01),
        positives=int(y.sum()),
        negatives=int((~y).sum()),
    )
