"""Per-branch verdicts (federated against local-only) resample what is independent: the
cards, when the data names them (a compromised card's burst of frauds is one draw), the
rows otherwise; ids may be a table's customer strings."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from secagg.apps.models.metrics import paired_difference_interval
from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.report import verdict_lines
from secagg.apps.simulation.runner import (
    ENOUGH_TEST_FRAUDS,
    SimulationResult,
    _derived_seed,
    branch_verdicts,
)


def _branch(
    name: str, fraud_cards: int, burst: int, seed: int, ids: str = "int"
) -> tuple[BranchData, np.ndarray, np.ndarray]:
    """A branch whose test frauds come in bursts of ``burst`` rows on ``fraud_cards``
    cards, 100 legit cards of 20 rows; and two models' scores for it."""
    rng = np.random.default_rng(seed)
    frauds, legit = fraud_cards * burst, 2000
    y = np.r_[np.ones(frauds, dtype=np.int8), np.zeros(legit, dtype=np.int8)]
    card = np.r_[np.repeat(np.arange(fraud_cards), burst), 1000 + np.arange(legit) // 20]
    # zero-padded strings sort as the integers do: the same cards, in the same order
    customers = np.array([f"card-{c:06d}" for c in card]) if ids == "str" else card.astype(np.int64)
    # each model sees a card its own way: the difference moves card by card
    federated = np.r_[np.repeat(rng.normal(1.5, 1, fraud_cards), burst), rng.normal(0, 1, legit)]
    local = np.r_[np.repeat(rng.normal(1.2, 1, fraud_cards), burst), rng.normal(0, 1, legit)]
    data = BranchData(
        name=name,
        x_train=np.zeros((1, 1), np.float32),
        y_train=np.zeros(1, np.int8),
        x_test=np.zeros((y.size, 1), np.float32),
        y_test=y,
        fraud_rate=0.001,
        customers_test=customers,
    )
    return data, np.round(federated, 3), np.round(local, 3)


def test_verdicts_resample_cards_and_flag_few_fraud_cards() -> None:
    config = SimulationConfig(seed=4)
    many, fed_a, loc_a = _branch("branch-01", fraud_cards=24, burst=2, seed=1)
    bursty, fed_b, loc_b = _branch("branch-02", fraud_cards=5, burst=5, seed=2)
    one_card, fed_c, loc_c = _branch("branch-03", fraud_cards=1, burst=6, seed=3)
    branches = [many, bursty, one_card]
    scores = {"branch-01": (fed_a, loc_a), "branch-02": (fed_b, loc_b), "branch-03": (fed_c, loc_c)}
    federated = {"_scores": {n: s[0] for n, s in scores.items()}}
    local = {"_scores": {n: s[1] for n, s in scores.items()}}
    verdicts = branch_verdicts(config, branches, federated, local)

    for branch in (many, bursty):
        v = verdicts[branch.name]
        expected = paired_difference_interval(
            branch.y_test,
            scores[branch.name][0],
            scores[branch.name][1],
            resamples=1000,
            seed=_derived_seed(config, "verdict", branch.name),
            clusters=branch.customers_test,
        )
        assert (v["low"], v["high"]) == (expected.low, expected.high)
        assert v["judged"] and v["resampled"] == "card"
    # 48 frauds on 24 cards: enough; 25 frauds on 5 cards: flagged, though 25 >= 20 rows
    assert verdicts["branch-01"]["test_fraud_cards"] == 24 >= ENOUGH_TEST_FRAUDS
    assert verdicts["branch-01"]["enough_frauds"]
    assert verdicts["branch-02"]["test_frauds"] == 25 >= ENOUGH_TEST_FRAUDS
    assert not verdicts["branch-02"]["enough_frauds"]
    # every fraud on one card: nothing to resample on the fraud side, so not judged
    c = verdicts["branch-03"]
    assert not c["judged"] and c["low"] is None and not c["at_least_local"]

    lines = verdict_lines(SimulationResult(config=config, branches=[], branch_verdicts=verdicts))
    text = "\n".join(lines)
    assert "resampling the branch's cards" in text and "| test frauds (cards) |" in text
    assert "| branch-02 | 25 (5) |" in text and "few fraud cards (< 20)" in text
    assert "| branch-03 | 6 (1) |" in text and "not judged" in text
    # two judged comparisons: the chance that any falls behind by noise alone is said
    behind = sum(not verdicts[n]["at_least_local"] for n in ("branch-01", "branch-02"))
    assert "about 0.1 of 2 would fall behind" in text
    assert ("none behind, as here" if behind == 0 else f"{behind} or more, as here") in text


def test_a_tables_string_customer_ids_are_cards_too() -> None:
    """A CSV's customer column arrives as strings: the same verdict as integer ids."""
    config = SimulationConfig(seed=9)
    as_int, fed, loc = _branch("branch-01", fraud_cards=12, burst=3, seed=5)
    as_str, _, _ = _branch("branch-01", fraud_cards=12, burst=3, seed=5, ids="str")
    scored = ({"_scores": {"branch-01": fed}}, {"_scores": {"branch-01": loc}})
    by_int = branch_verdicts(config, [as_int], *scored)["branch-01"]
    by_str = branch_verdicts(config, [as_str], *scored)["branch-01"]
    assert by_int["judged"] and math.isfinite(by_int["high"])
    assert by_int == by_str


def test_without_customer_ids_the_rows_are_resampled() -> None:
    config = SimulationConfig(seed=4)
    data, fed, loc = _branch("branch-01", fraud_cards=8, burst=5, seed=1)
    rows_only = dataclasses.replace(data, customers_test=None)
    scored = ({"_scores": {"branch-01": fed}}, {"_scores": {"branch-01": loc}})
    by_row = branch_verdicts(config, [rows_only], *scored)["branch-01"]
    by_card = branch_verdicts(config, [data], *scored)["branch-01"]
    assert by_row["resampled"] == "row" and by_row["test_fraud_cards"] is None
    assert by_row["enough_frauds"] and not by_card["enough_frauds"]  # 40 rows, 8 cards
    # bursts of 5 identical frauds: the row interval counts 5 draws where there is one
    assert by_card["high"] - by_card["low"] > 1.3 * (by_row["high"] - by_row["low"])
