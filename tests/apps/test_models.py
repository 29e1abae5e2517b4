"""Fraud data, loaders, partitions and metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.metrics import average_precision, fraud_metrics, recall_at_fpr, roc_auc
from secagg.apps.models.synthetic import FEATURE_NAMES, TYPOLOGIES, generate_branches
from secagg.apps.models.tabular import (
    CREDITCARD_COLUMNS,
    load_creditcard_csv,
    load_labelled_csv,
    partition,
    standardize,
    train_test_split,
)
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


# --- synthetic branches ------------------------------------------------------------


def test_synthetic_branches_are_reproducible_rare_and_non_iid() -> None:
    a = generate_branches(8, seed=3, total_train_rows=40_000, test_rows_per_branch=5_000)
    b = generate_branches(8, seed=3, total_train_rows=40_000, test_rows_per_branch=5_000)
    c = generate_branches(8, seed=4, total_train_rows=40_000, test_rows_per_branch=5_000)
    assert all(np.array_equal(x.x_train, y.x_train) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].x_train, c[0].x_train)
    sizes = [br.num_train for br in a]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]  # unequal sizes
    for branch in a:
        assert 0.001 <= branch.fraud_rate <= 0.02
        assert branch.x_train.shape[1] == len(FEATURE_NAMES)
        assert np.all(np.isfinite(branch.x_train))
    # no branch sees all typologies much: each one's top typology dominates its mix
    dominant = [max(br.typology_mix) for br in a]
    assert np.mean(dominant) > 0.5
    assert len({int(np.argmax(br.typology_mix)) for br in a}) >= 3  # and they differ
    assert len(TYPOLOGIES) == len(a[0].typology_mix)


def test_synthetic_generator_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="at least 2"):
        generate_branches(1)
    with pytest.raises(ConfigurationError, match="fraud_rate_range"):
        generate_branches(4, fraud_rate_range=(0.0, 0.1))
    with pytest.raises(ConfigurationError, match="100 rows"):
        generate_branches(4, total_train_rows=50)


# --- CSV loaders ---------------------------------------------------------------------


def _write_creditcard(path: Path, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(rows, 28))
    amount = rng.exponential(50, rows)
    time = np.sort(rng.uniform(0, 2 * 86_400, rows))
    label = (rng.random(rows) < 0.1).astype(int)
    label[:2] = [0, 1]
    header = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"]
    lines = [",".join(header)]
    for i in range(rows):
        values = [
            f"{time[i]:.1f}",
            *(f"{x:.6f}" for x in v[i]),
            f"{amount[i]:.2f}",
            f'"{label[i]}"',
        ]
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return v, label


def test_creditcard_loader_reads_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "creditcard.csv"
    v, label = _write_creditcard(path, 50)
    table = load_creditcard_csv(path)
    assert table.x.shape == (50, 31) and table.x.dtype == np.float32
    assert np.array_equal(table.y, label)
    assert np.allclose(table.x[:, :28], v, atol=1e-5)
    assert table.feature_names[:2] == ("V1", "V2") and table.feature_names[-3] == "log_amount"
    assert np.allclose(table.x[:, -2] ** 2 + table.x[:, -1] ** 2, 1.0, atol=1e-5)
    assert CREDITCARD_COLUMNS[-1] == "Class"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("Time,V1,Amount,Class\n1,2,3,0\n", "lacks the credit-card columns"),
        ("", "is empty"),
    ],
)
def test_creditcard_loader_refuses_other_layouts(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=error):
        load_creditcard_csv(path)


def test_creditcard_loader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "creditcard.csv"
    _write_creditcard(path, 10)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace('"', "").rsplit(",", 1)[0] + ",2"  # a label of 2
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match="line 6"):
        load_creditcard_csv(path)
    with pytest.raises(ConfigurationError, match="no CSV file"):
        load_creditcard_csv(tmp_path / "missing.csv")


def test_labelled_csv_loader(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("amount,is_fraud,velocity\n10.5,0,1\n999,1,7\n3,0,0\n")
    table = load_labelled_csv(path, "is_fraud")
    assert table.feature_names == ("amount", "velocity")
    assert table.y.tolist() == [0, 1, 0]
    assert table.x[1].tolist() == [999.0, 7.0]
    with pytest.raises(ConfigurationError, match="no label column 'fraud'"):
        load_labelled_csv(path, "fraud")
    path.write_text("amount,is_fraud\n10.5,0\nabc,1\n")
    with pytest.raises(ConfigurationError, match=r"line 3, column 'amount'"):
        load_labelled_csv(path, "is_fraud")
    path.write_text("amount,is_fraud\n10.5,0\n1,1,3\n")
    with pytest.raises(ConfigurationError, match="line 3: 3 fields"):
        load_labelled_csv(path, "is_fraud")


# --- partitions ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(20, 400),
    st.integers(2, 9),
    st.sampled_from(["iid", "dirichlet", "feature"]),
    st.floats(0.05, 10),
    st.integers(0, 2**31),
)
def test_partitions_are_disjoint_cover_every_row_and_leave_no_branch_empty(
    rows: int, branches: int, kind: str, alpha: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.2).astype(int)
    feature = rng.normal(size=rows)
    parts = partition(labels, branches, kind=kind, alpha=alpha, seed=seed, feature=feature)
    assert len(parts) == branches
    assert all(p.size >= 1 for p in parts)
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(rows))
    again = partition(labels, branches, kind=kind, alpha=alpha, seed=seed, feature=feature)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_label_skew_is_skewed_and_iid_is_not() -> None:
    labels = np.r_[np.zeros(5000, int), np.ones(5000, int)]
    skewed = partition(labels, 5, kind="dirichlet", alpha=0.1, seed=1)
    iid = partition(labels, 5, kind="iid", seed=1)
    share = lambda parts: [labels[p].mean() for p in parts]  # noqa: E731
    assert np.ptp(share(skewed)) > 0.5
    assert np.ptp(share(iid)) < 0.1
    with pytest.raises(ConfigurationError, match="partition kind"):
        partition(labels, 3, kind="zipf")
    with pytest.raises(ConfigurationError, match="one feature value per row"):
        partition(labels, 3, kind="feature")


def test_standardize_uses_training_statistics_and_split_is_disjoint() -> None:
    train = np.array([[0.0, 5.0], [2.0, 5.0]], dtype=np.float32)
    test = np.array([[4.0, 5.0]], dtype=np.float32)
    scaled_train, scaled_test = standardize(train, train, test)[1:]
    assert scaled_train[:, 0].tolist() == [-1.0, 1.0]
    assert scaled_test[0].tolist() == [3.0, 0.0]  # constant column: left centred, not NaN
    a, b = train_test_split(np.arange(100), 0.3, seed=2)
    assert a.size == 70 and b.size == 30 and not set(a) & set(b)
