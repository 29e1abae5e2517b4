"""CSV loaders, partitions into branches, standardisation and splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.tabular import (
    CREDITCARD_COLUMNS,
    load_creditcard_csv,
    load_labelled_csv,
    partition,
    standardize,
    train_test_split,
)
from secagg.errors import ConfigurationError

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
