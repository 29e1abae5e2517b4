"""Every branch of a split CSV gets ``MIN_TRAIN_ROWS`` training rows when the file has
enough rows for that, and a split that already gave them is the one it always was.

Why: a 400-row credit-card-layout file with ``--partition feature`` and 8 branches was
refused ("branch-03 gets 9 training rows from the feature split"): the smallest branch
the feature skew allows is a quarter of an equal share, 12 rows, which a 70/30 split
leaves 8 or 9 to train on, though a split giving every branch 10 exists (simulate
audit, 2026-12-06)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from secagg.apps.models.tabular import (
    CREDITCARD_COLUMNS,
    MIN_TEST_NEGATIVES,
    MIN_TRAIN_NEGATIVES,
    branch_minimums,
    partition,
    train_test_split,
)
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import MIN_TRAIN_ROWS, SimulationConfig
from secagg.errors import ConfigurationError


def _creditcard(path: Path, rows: int, frauds: int, seed: int) -> Path:
    """A credit-card-layout file (Time, V1..V28, Amount, Class) with exactly ``frauds``
    frauds (seeded test data)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=int)
    y[rng.choice(rows, frauds, replace=False)] = 1
    lines = [",".join(CREDITCARD_COLUMNS)]
    for i in range(rows):
        v = [f"{x:.4f}" for x in rng.normal(size=28) + y[i]]
        lines.append(",".join([str(10 * i), *v, f"{rng.exponential(60):.2f}", str(y[i])]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("seed", [2, 5])  # the seeds whose first draw left a branch short
def test_a_400_row_file_feature_split_8_ways_trains_every_branch(tmp_path: Path, seed: int) -> None:
    path = _creditcard(tmp_path / "cards.csv", rows=400, frauds=40, seed=seed)
    config = SimulationConfig(
        source="creditcard", path=str(path), partition="feature", alpha=0.1, seed=seed
    )
    branches = runner.load_branches(config)
    assert len(branches) == 8
    assert min(b.y_train.size for b in branches) >= MIN_TRAIN_ROWS
    assert sum(b.y_train.size + b.y_test.size for b in branches) == 400  # every row once


def test_a_file_too_small_for_the_branches_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    """100 rows cannot give 8 branches 15 each (10 training rows after the split)."""
    path = _creditcard(tmp_path / "cards.csv", rows=100, frauds=40, seed=0)
    config = SimulationConfig(source="creditcard", path=str(path), partition="iid")
    with pytest.raises(ConfigurationError) as refused:
        runner.load_branches(config)
    assert str(refused.value) == (
        "100 rows cannot give 8 branches the 15 each that 10 training rows need (a 30 % "
        "test set and its frauds): use at most 6 simulation.branches or a larger file"
    )


def _old_split(
    config: SimulationConfig, labels: np.ndarray, feature: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The split as ``secagg simulate`` drew it before: a quarter of an equal share."""
    least = branch_minimums(labels.size, int(labels.sum()), config.branches)
    parts = partition(
        labels,
        config.branches,
        kind=config.partition,
        alpha=config.alpha,
        seed=config.seed,
        feature=feature if config.partition == "feature" else None,
        min_rows=least.min_rows,
        min_positives=least.min_positives,
        min_negatives=MIN_TRAIN_NEGATIVES + MIN_TEST_NEGATIVES,
    )
    return [
        train_test_split(
            units,
            0.3,
            config.seed + b,
            labels=labels[units],
            min_train_positives=least.min_train_positives,
            min_test_positives=least.min_test_positives,
            min_train_negatives=MIN_TRAIN_NEGATIVES,
            min_test_negatives=MIN_TEST_NEGATIVES,
        )
        for b, units in enumerate(parts)
    ]


@settings(max_examples=300, deadline=None)
@given(
    per_branch=st.integers(10, 50),  # near the minimum, where splits fall short
    fraud_share=st.floats(0.1, 0.5),
    branches=st.integers(2, 10),
    seed=st.integers(0, 2**32 - 1),  # simulation.seed is at most 2^32 - 1
    kind=st.sampled_from(["feature", "feature", "feature", "dirichlet", "iid"]),  # feature skews
    alpha=st.sampled_from([0.05, 0.1, 0.5, 5.0]),
)
def test_every_branch_trains_on_enough_rows_and_good_splits_stay(
    per_branch: int, fraud_share: float, branches: int, seed: int, kind: str, alpha: float
) -> None:
    from secagg.apps.models.tabular import units_for_training
    from secagg.apps.simulation.data import split_units

    rows = per_branch * branches
    frauds = max(1, int(rows * fraud_share))
    rng = np.random.default_rng(seed)
    labels = np.zeros(rows, dtype=np.int8)
    labels[rng.choice(rows, frauds, replace=False)] = 1
    feature = rng.normal(size=rows) + labels
    skew = {} if kind == "iid" else {"alpha": alpha}  # iid draws no Dirichlet
    config = SimulationConfig(
        source="csv", path="unread.csv", label="fraud", partition=kind, branches=branches,
        seed=seed, **skew,
    )  # fmt: skip
    try:
        old = _old_split(config, labels, feature)
    except ConfigurationError:  # too few frauds or legitimate rows: refused as before
        with pytest.raises(ConfigurationError):
            split_units(config, labels, feature, "row", lambda _b, train: train.size)
        event("refused as before")
        return
    needed = units_for_training(MIN_TRAIN_ROWS, 0.3, min_train_positives=2,
                                min_test_positives=2, min_train_negatives=2,
                                min_test_negatives=2)  # fmt: skip
    try:
        new = split_units(config, labels, feature, "row", lambda _b, train: train.size)
    except ConfigurationError as refused:
        assert rows < branches * needed  # refused only when the file is too small
        assert "\n" not in str(refused) and "simulation.branches" in str(refused)
        event("refused: too few rows")
        return
    kept = all(train.size >= MIN_TRAIN_ROWS for train, _ in old)
    event("split kept" if kept else "split redrawn")
    if kept:  # met the rule: unchanged
        assert len(new) == len(old)
        for (old_train, old_test), (new_train, new_test) in zip(old, new, strict=True):
            assert old_train.tobytes() == new_train.tobytes()
            assert old_test.tobytes() == new_test.tobytes()
    assert min(train.size for train, _ in new) >= MIN_TRAIN_ROWS
    units = np.sort(np.concatenate([np.r_[train, test] for train, test in new]))
    assert np.array_equal(units, np.arange(rows))  # disjoint and covering
