"""``check_branch_data`` advised "use --partition iid, a larger --alpha or fewer
--branches" for a branch short of training rows (or of a training fraud) even when the
branches' rows (frauds) in all were too few for every branch to get its minimum: no
split could help, and with two branches fewer could not either. It now says so, and
how many branches the data can serve (hostile review, 2026-12-06). The refusals before
the split (``branch_minimums``, the rows 10 training rows need) told a file too small
for 2 branches, the fewest a federation has, to lower their number."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from secagg.apps.simulation.config import (
    MIN_TRAIN_ROWS,
    SimulationConfig,
    check_branch_data,
    spelled_for,
)
from secagg.apps.simulation.data import load_branches
from secagg.errors import ConfigurationError


def _csv_config(path: Path, **changes: object) -> SimulationConfig:
    values: dict[str, object] = {
        "branches": 2,
        "rounds": 1,
        "source": "csv",
        "path": str(path),
        "label": "is_fraud",
        "partition": "iid",
        "customer_column": "card",
        "max_fraud_share": 1.0,
    }
    return SimulationConfig(**{**values, **changes})  # type: ignore[arg-type]


def _row_csv(path: Path, rows: int, fraud_every: int) -> Path:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["amount", "velocity", "is_fraud"])
        for i in range(rows):
            label = int(i % fraud_every == 0)
            out.writerow([f"{1.0 + 2 * label + 0.01 * i:.3f}", i % 4, label])
    return path


@pytest.mark.parametrize(
    ("rows", "fraud_every", "said"),
    [
        (
            12,
            2,
            "6 fraud rows cannot give 2 branches at least 4 each (2 for training, 2 for "
            "testing): use a larger file (fewer branches cannot help: a federation needs 2 "
            "at the least)",
        ),
        (
            24,
            3,
            "24 rows cannot give 2 branches the 15 each that 10 training rows need (a 30 % "
            "test set and its frauds): use a larger file (fewer --branches cannot help: 2 at "
            "the least)",
        ),
    ],
)
def test_a_file_too_small_for_two_branches_is_not_told_to_lower_them(
    tmp_path: Path, rows: int, fraud_every: int, said: str
) -> None:
    config = _csv_config(_row_csv(tmp_path / "rows.csv", rows, fraud_every), customer_column=None)
    with spelled_for(flags=["branches"], file_keys=()), pytest.raises(ConfigurationError) as info:
        load_branches(config)
    assert str(info.value) == said


def _customer_csv(path: Path, customers: int) -> Path:
    """One row per card, every third card a fraud: 24 cards give 2 branches 8 training
    rows each, below the 10 a branch needs whatever the split."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["amount", "velocity", "card", "is_fraud"])
        for card in range(customers):
            label = int(card % 3 == 0)
            out.writerow([f"{1.0 + 2 * label + 0.01 * card:.3f}", card % 4, card, label])
    return path


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_a_file_too_small_for_any_split_says_no_split_helps(tmp_path: Path, partition: str) -> None:
    config = _csv_config(_customer_csv(tmp_path / "cards.csv", 24), partition=partition)
    with spelled_for(flags=["partition", "branches"], file_keys=()):
        with pytest.raises(ConfigurationError) as info:
            load_branches(config)
    message = str(info.value)
    assert f"at least {MIN_TRAIN_ROWS} are needed" in message
    # the iid split itself was refused: advising it (or fewer than 2 branches) was wrong
    assert "use --partition iid" not in message
    assert "training rows number 16 in all, too few for 10 each" in message
    assert "no split (--partition, --alpha) can help" in message
    assert "nor fewer --branches (2 at the least): use a larger file" in message
    assert "\n" not in message


def test_fewer_branches_that_could_be_served_are_named() -> None:
    config = _csv_config(Path("unused.csv"), branches=4)
    counts = [(f"branch-0{i}", rows, 2, 1) for i, rows in enumerate((12, 9, 8, 6), 1)]
    with spelled_for(flags=["branches"], file_keys=()), pytest.raises(ConfigurationError) as info:
        check_branch_data(config, counts)
    assert str(info.value).endswith(
        "branch-02 gets 9 training rows from the iid split; at least 10 are needed: the 4 "
        "branches' training rows number 35 in all, too few for 10 each, so no split "
        "(--partition, --alpha) can help: use at most 3 --branches or a larger file"
    )


def test_too_few_training_frauds_for_every_branch_say_no_split_helps() -> None:
    config = _csv_config(Path("unused.csv"), branches=3)
    counts = [("branch-01", 200, 2, 1), ("branch-02", 200, 0, 1), ("branch-03", 200, 0, 1)]
    with pytest.raises(ConfigurationError) as info:  # a library caller: TOML keys
        check_branch_data(config, counts)
    assert "data.partition = 'iid'" not in str(info.value)
    assert str(info.value).endswith(
        "the 3 branches' training frauds number 2 in all, too few for 1 each, so no split "
        "(data.partition, data.alpha) can help: use at most 2 simulation.branches or a "
        "larger file"
    )


def test_a_split_that_could_serve_every_branch_keeps_the_split_advice() -> None:
    config = _csv_config(Path("unused.csv"), branches=2, partition="dirichlet")
    with spelled_for(flags=["partition"], file_keys=()), pytest.raises(ConfigurationError) as info:
        check_branch_data(config, [("branch-01", 40, 3, 1), ("branch-02", 6, 1, 1)])
    assert "use --partition iid, a larger --alpha or fewer --branches" in str(info.value)
    with spelled_for(flags=["partition"], file_keys=()), pytest.raises(ConfigurationError) as no:
        check_branch_data(config, [("branch-01", 40, 3, 1), ("branch-02", 60, 0, 1)])
    assert "use --partition iid, a larger --alpha or fewer --branches" in str(no.value)
