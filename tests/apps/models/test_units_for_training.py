"""``units_for_training``: the fewest units from which the stratified split always
leaves the training rows asked for, checked against ``train_test_split`` itself.

Why: a quarter of an equal share (12 of 400 rows over 8 branches) left a branch 8 or 9
training rows where ``secagg simulate`` needs 10 (simulate audit, 2026-12-06)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.tabular import train_test_split, units_for_training


def _fewest_training(size: int, fraction: float, seed: int, mins: dict[str, int]) -> int:
    """The smallest training set ``train_test_split`` gives ``size`` units over every
    mix of fraud and legitimate units the minimums allow."""
    least_p = mins["min_train_positives"] + mins["min_test_positives"]
    least_n = mins["min_train_negatives"] + mins["min_test_negatives"]
    fewest = size
    for p in range(least_p, size - least_n + 1):
        labels = np.r_[np.ones(p, dtype=int), np.zeros(size - p, dtype=int)]
        train, _ = train_test_split(np.arange(size), fraction, seed, labels=labels, **mins)
        fewest = min(fewest, train.size)
    return fewest


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.sampled_from([0.1, 0.25, 0.3, 0.5]),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2**16),
)
def test_the_size_is_enough_and_one_fewer_is_not(
    train_units: int, fraction: float, positives: int, negatives: int, seed: int
) -> None:
    mins = {
        "min_train_positives": positives,
        "min_test_positives": positives,
        "min_train_negatives": negatives,
        "min_test_negatives": negatives,
    }
    size = units_for_training(train_units, fraction, **mins)
    assert _fewest_training(size, fraction, seed, mins) >= train_units
    if size - 1 >= 2 * (positives + negatives) and size - 1 >= 1:
        assert _fewest_training(size - 1, fraction, seed, mins) < train_units


def test_simulate_minimums_need_15_units_for_10_training_rows() -> None:
    """The figure ``secagg simulate`` uses: 14 units split 70/30 with 10 frauds leave 9."""
    mins = dict.fromkeys(
        ("min_train_positives", "min_test_positives", "min_train_negatives", "min_test_negatives"),
        2,
    )
    assert units_for_training(10, 0.3, **mins) == 15
