"""Fraud metrics against their brute-force definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.metrics import (
    INTERVAL_METRICS,
    FraudMetrics,
    Interval,
    SeedSummary,
    _bootstrap_multiplicities,
    _bootstrap_values,
    amount_caught_at_top,
    average_precision,
    bootstrap_interval,
    fraud_metrics,
    paired_difference_interval,
    precision_at_top,
    recall_at_fpr,
    roc_auc,
    summarise,
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


# --- the fraud team's metrics: the top of the ranking, ties at the cut-off ---------


def _brute_top_all_orderings(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, share: float
) -> tuple[float, float]:
    """Precision and fraud amount caught in the top k, averaged over every order in which
    tied rows could be broken (all n! tie-breaks: fine for n <= 6)."""
    n = y.size
    k = max(1, math.ceil(round(share * n, 9)))
    precision = caught = 0.0
    perms = list(itertools.permutations(range(n)))
    for perm in perms:
        top = sorted(range(n), key=lambda i: (-s[i], perm[i]))[:k]
        precision += y[top].sum() / k
        caught += (a[top] * y[top]).sum()
    total = (a * y).sum()
    return precision / len(perms), (caught / len(perms) / total if total > 0 else math.nan)


def _brute_top_expected(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, share: float
) -> tuple[float, float]:
    """The same, one row at a time: a row is an alert with probability (slots left for its
    tie block) / (size of its tie block)."""
    k = max(1, math.ceil(round(share * y.size, 9)))
    expected_tp = expected_amount = 0.0
    for i in range(y.size):
        above, tied = (s > s[i]).sum(), (s == s[i]).sum()
        chance = min(max(k - above, 0), tied) / tied
        expected_tp += chance * y[i]
        expected_amount += chance * y[i] * a[i]
    total = (a * y).sum()
    return expected_tp / k, (expected_amount / total if total > 0 else math.nan)


_rows = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(0, 50)), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None)
@given(_rows, st.sampled_from([0.005, 0.2, 0.34, 0.5, 1.0]))
def test_top_share_metrics_average_over_every_tie_break(rows: list, share: float) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)
    a = np.array([r[2] for r in rows], dtype=float)
    precision, caught = _brute_top_all_orderings(y, s, a, share)
    assert precision_at_top(y, s, share) == pytest.approx(precision, abs=1e-12)
    assert amount_caught_at_top(y, s, a, share) == pytest.approx(caught, abs=1e-12, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 9)), max_size=80),
    st.sampled_from([0.005, 0.05, 0.1, 0.3, 0.77]),
)
def test_top_share_metrics_match_the_expected_value_with_ties(rows: list, share: float) -> None:
    if not rows:
        return
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)
    a = np.array([r[2] for r in rows], dtype=float)
    precision, caught = _brute_top_expected(y, s, a, share)
    assert precision_at_top(y, s, share) == pytest.approx(precision, abs=1e-12)
    assert amount_caught_at_top(y, s, a, share) == pytest.approx(caught, abs=1e-12, nan_ok=True)
    order = np.random.default_rng(len(rows)).permutation(len(rows))  # row order is irrelevant
    assert precision_at_top(y[order], s[order], share) == pytest.approx(precision, abs=1e-12)
    if share == 0.005:  # the fraud_metrics fields are the 0.5 % ones
        m = fraud_metrics(y, s, a)
        assert m.precision_at_top_05pct == pytest.approx(precision, abs=1e-12)
        assert m.fraud_amount_caught_at_top_05pct == pytest.approx(caught, nan_ok=True)


def test_the_fraud_team_fields_on_a_realistic_test_set() -> None:
    """20 000 rows, 40 frauds, coarse scores: k = 100 alerts, recall at 0.1 % FPR."""
    rng = np.random.default_rng(3)
    y = (rng.random(20_000) < 0.002).astype(int)
    s = np.round(rng.normal(size=y.size) + 2.5 * y, 1)  # heavy ties, also at the cut-off
    a = rng.exponential(80.0, y.size)
    m = fraud_metrics(y, s, a)
    assert m.recall_at_01pct_fpr == pytest.approx(_brute_recall(y, s, 0.001))
    assert m.recall_at_01pct_fpr <= m.recall_at_1pct_fpr
    precision, caught = _brute_top_expected(y, s, a, 0.005)
    assert m.precision_at_top_05pct == pytest.approx(precision)
    assert m.fraud_amount_caught_at_top_05pct == pytest.approx(caught)
    assert np.isnan(fraud_metrics(y, s).fraud_amount_caught_at_top_05pct)  # no amounts


def test_new_fields_without_fraud_divergence_and_old_constructions() -> None:
    legit_only = fraud_metrics(np.zeros(4), np.arange(4.0), np.ones(4))
    assert np.isnan(legit_only.recall_at_01pct_fpr)
    assert np.isnan(legit_only.fraud_amount_caught_at_top_05pct)
    assert legit_only.precision_at_top_05pct == 0.0  # the alerts exist, all false
    diverged = fraud_metrics(np.array([0, 1, 1]), np.array([np.inf, 0.2, 0.3]), np.ones(3))
    assert diverged.diverged
    for name in ("recall_at_01pct_fpr", "precision_at_top_05pct"):
        assert np.isnan(getattr(diverged, name))
    assert np.isnan(diverged.as_dict()["fraud_amount_caught_at_top_05pct"])
    old = FraudMetrics(0.5, 0.6, 0.7, 3, 9, True)  # positional, as before the new fields
    assert old.diverged and np.isnan(old.recall_at_01pct_fpr)


@pytest.mark.parametrize(
    ("amounts", "match"),
    [
        ([1.0, 2.0], "2 amounts but 3 rows"),
        ([1.0, np.nan, 2.0], "finite"),
        ([1.0, np.inf, 2.0], "finite"),
        ([1.0, -0.5, 2.0], "non-negative"),
    ],
)
def test_bad_amounts_are_configuration_errors(amounts: list, match: str) -> None:
    y, s = np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3])
    with pytest.raises(ConfigurationError, match=match):
        fraud_metrics(y, s, np.array(amounts))
    with pytest.raises(ConfigurationError, match=match):  # even when the scores diverged
        fraud_metrics(y, np.array([np.nan, 0.2, 0.3]), np.array(amounts))
    with pytest.raises(ConfigurationError, match=match):
        bootstrap_interval(y, s, amounts=np.array(amounts), resamples=5)


# --- the bootstrap against slow explicit resamples ----------------------------------


def _explicit(y: np.ndarray, s: np.ndarray, a: np.ndarray, w: np.ndarray) -> FraudMetrics:
    """The metrics of one resample rebuilt row by row and recomputed from scratch."""
    return fraud_metrics(np.repeat(y, w), np.repeat(s, w), np.repeat(a, w))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5), st.integers(0, 5)), max_size=40)
    .filter(lambda rows: sum(y for y, _, _ in rows) >= 2)
    .filter(lambda rows: sum(a for y, _, a in rows if y) > 0),
    st.integers(0, 2**32 - 1),
)
def test_each_resample_is_an_explicit_stratified_resample(rows: list, seed: int) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)
    s2 = np.array([(3 * r[1] + i) % 4 for i, r in enumerate(rows)], dtype=float)  # another model
    a = np.array([r[2] for r in rows], dtype=float)
    w = _bootstrap_multiplicities(y, [s, s2], 3, seed)
    assert (w[:, y == 1].sum(axis=1) == y.sum()).all()  # frauds keep their count
    assert (w[:, y == 0].sum(axis=1) == (y == 0).sum()).all()  # and so do legit rows
    for metric in INTERVAL_METRICS:
        values_a, values_b = _bootstrap_values(y, [s, s2], metric, 3, seed, a)
        for r in range(3):
            expected_a = getattr(_explicit(y, s, a, w[r]), metric)
            expected_b = getattr(_explicit(y, s2, a, w[r]), metric)
            assert values_a[r] == pytest.approx(expected_a, rel=1e-12, abs=1e-12, nan_ok=True)
            assert values_b[r] == pytest.approx(expected_b, rel=1e-12, abs=1e-12, nan_ok=True)
    # a single model is resampled exactly as it is within a pair
    (alone,) = _bootstrap_values(y, [s], "auprc", 3, seed)
    w_alone = _bootstrap_multiplicities(y, [s], 3, seed)
    for r in range(3):
        assert alone[r] == pytest.approx(_explicit(y, s, a, w_alone[r]).auprc, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 5), st.integers(0, 5), st.integers(0, 6)),
        max_size=40,
    )
    .filter(lambda rows: len({c for y, _, _, c in rows if y}) >= 2)
    .filter(lambda rows: sum(a for y, _, a, _ in rows if y) > 0),
    st.integers(0, 2**32 - 1),
)
def test_each_clustered_resample_is_an_explicit_resample_of_cards(rows: list, seed: int) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)
    s2 = np.array([(3 * r[1] + i) % 4 for i, r in enumerate(rows)], dtype=float)
    a = np.array([r[2] for r in rows], dtype=float)
    card = np.array([r[3] for r in rows]) * 7 - 3  # any integer ids
    w = _bootstrap_multiplicities(y, [s, s2], 4, seed, clusters=card)
    fraud_cards = set(card[y == 1])
    for r in range(4):
        # every row of a card counts as often as its card was drawn
        per_card = {c: set(w[r, card == c]) for c in set(card)}
        assert all(len(m) == 1 for m in per_card.values())
        drawn = {c: m.pop() for c, m in per_card.items()}
        # each stratum keeps its number of cards
        assert sum(drawn[c] for c in fraud_cards) == len(fraud_cards)
        assert sum(v for c, v in drawn.items() if c not in fraud_cards) == len(
            set(card) - fraud_cards
        )
    for metric in INTERVAL_METRICS:
        values_a, values_b = _bootstrap_values(y, [s, s2], metric, 4, seed, a, clusters=card)
        for r in range(4):
            expected_a = getattr(_explicit(y, s, a, w[r]), metric)
            expected_b = getattr(_explicit(y, s2, a, w[r]), metric)
            assert values_a[r] == pytest.approx(expected_a, rel=1e-12, abs=1e-12, nan_ok=True)
            assert values_b[r] == pytest.approx(expected_b, rel=1e-12, abs=1e-12, nan_ok=True)


def test_both_strata_of_cards_are_resampled_with_replacement() -> None:
    """Each card's multiplicity over many resamples is Binomial(K, 1/K) within its
    stratum (K cards): mean 1, variance 1 - 1/K, for fraud cards and the others alike."""
    y, s, card = _bursts(cards=6, burst=2, seed=0, legit=100)
    w = _bootstrap_multiplicities(y, [s], 2000, seed=11, clusters=card)
    first_row = {c: int(np.flatnonzero(card == c)[0]) for c in np.unique(card)}
    per_card = w[:, list(first_row.values())]  # resamples x cards
    fraud = np.array([y[r] == 1 for r in first_row.values()])
    for stratum, k in ((fraud, 6), (~fraud, 100)):
        m = per_card[:, stratum]
        assert (m.sum(axis=1) == k).all()
        assert abs(m.mean() - 1.0) < 0.01
        assert abs(m.var() - (1 - 1 / k)) < 0.05


def _bursts(
    cards: int, burst: int, seed: int, legit: int = 400
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A test set whose frauds come in bursts: each compromised card's ``burst`` frauds
    share one score (a card's behaviour, not an independent draw per row), legit cards
    have 20 rows each."""
    rng = np.random.default_rng(seed)
    fraud_scores = np.repeat(rng.normal(2.0, 1.5, cards), burst)
    scores = np.r_[fraud_scores, rng.normal(0.0, 1.0, legit * 20)]
    y = np.r_[np.ones(cards * burst, dtype=int), np.zeros(legit * 20, dtype=int)]
    card = np.r_[np.repeat(np.arange(cards), burst), cards + np.repeat(np.arange(legit), 20)]
    return y, np.round(scores, 3), card


def test_resampling_cards_widens_the_interval_where_frauds_come_in_bursts() -> None:
    """With bursts of 5 identical frauds, resampling rows counts 5 draws where there is
    one: its interval is too narrow. The same data with one fraud per card (and the
    same number of frauds) gives intervals of about the same width either way."""
    y, s, card = _bursts(cards=8, burst=5, seed=1)
    rows = bootstrap_interval(y, s, resamples=2000, seed=2)
    cards = bootstrap_interval(y, s, resamples=2000, seed=2, clusters=card)
    assert rows.unit == "row" and cards.unit == "card"
    assert rows.estimate == cards.estimate
    assert cards.high - cards.low > 1.6 * (rows.high - rows.low)
    y1, s1, card1 = _bursts(cards=40, burst=1, seed=1)
    rows1 = bootstrap_interval(y1, s1, resamples=2000, seed=2)
    cards1 = bootstrap_interval(y1, s1, resamples=2000, seed=2, clusters=card1)
    ratio = (cards1.high - cards1.low) / (rows1.high - rows1.low)
    assert 0.8 < ratio < 1.25


def test_clustered_intervals_refuse_bad_ids_and_need_two_fraud_cards() -> None:
    y, s, card = _bursts(cards=3, burst=2, seed=0)
    with pytest.raises(ConfigurationError, match="one id per row"):
        bootstrap_interval(y, s, clusters=card[:-1])
    with pytest.raises(ConfigurationError, match="integers"):
        paired_difference_interval(y, s, s, clusters=card.astype(float))
    one_card = np.where(y == 1, 0, card)  # every fraud on card 0
    for interval in (
        bootstrap_interval(y, s, resamples=10, clusters=one_card),
        paired_difference_interval(y, s, s[::-1], resamples=10, clusters=one_card),
    ):
        assert math.isnan(interval.low) and interval.unit == "card"
    itself = paired_difference_interval(y, s, s, resamples=50, clusters=card)
    assert (itself.low, itself.high) == (0.0, 0.0)


def _test_set(rows: int, frauds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=int)
    y[rng.choice(rows, frauds, replace=False)] = 1
    return y, np.round(rng.normal(size=rows) + 2.0 * y, 2)


def test_intervals_are_deterministic_per_seed_and_narrow_with_data() -> None:
    y, s = _test_set(2_000, 30, 0)
    first = bootstrap_interval(y, s, resamples=300, seed=7)
    assert first == bootstrap_interval(y, s, resamples=300, seed=7)
    assert first != bootstrap_interval(y, s, resamples=300, seed=8)
    assert first.estimate == fraud_metrics(y, s).auprc
    assert first.low <= first.estimate <= first.high
    assert first.contains(first.estimate) and not first.contains(first.high + 1e-9)
    assert first.as_dict() == {
        "estimate": first.estimate,
        "low": first.low,
        "high": first.high,
        "level": 0.95,
        "resamples": 300,
        "unit": "row",
    }
    big_y, big_s = _test_set(20_000, 300, 0)
    big = bootstrap_interval(big_y, big_s, resamples=300, seed=7)
    assert big.high - big.low < 0.5 * (first.high - first.low)
    narrow = bootstrap_interval(y, s, resamples=300, seed=7, level=0.5)
    assert first.low <= narrow.low <= narrow.high <= first.high


def test_paired_intervals() -> None:
    y, s = _test_set(3_000, 30, 1)
    for metric in ("auprc", "roc_auc", "recall_at_01pct_fpr", "precision_at_top_05pct"):
        itself = paired_difference_interval(y, s, s, metric=metric, resamples=200)
        assert (itself.estimate, itself.low, itself.high) == (0.0, 0.0, 0.0)
    worse = np.round(s + 0.3 * np.random.default_rng(2).normal(size=s.size), 2)
    better_than_worse = paired_difference_interval(y, s, worse, resamples=400, seed=3)
    m_s, m_worse = fraud_metrics(y, s).auprc, fraud_metrics(y, worse).auprc
    assert better_than_worse.estimate == pytest.approx(m_s - m_worse)
    assert better_than_worse.high >= 0  # "s is at least as good as worse"
    flipped = paired_difference_interval(y, worse, s, resamples=400, seed=3)
    assert (flipped.low, flipped.high) == pytest.approx(
        (-better_than_worse.high, -better_than_worse.low)
    )
    # pairing: the difference's interval is narrower than either model's own
    alone = bootstrap_interval(y, s, resamples=400, seed=3)
    assert better_than_worse.high - better_than_worse.low < alone.high - alone.low


def test_too_few_frauds_or_diverged_scores_give_a_nan_interval() -> None:
    y, s = _test_set(500, 1, 0)
    for interval in (
        bootstrap_interval(y, s, resamples=10),
        paired_difference_interval(y, s, s, resamples=10),
        bootstrap_interval(np.zeros(5), np.arange(5.0), resamples=10),
        bootstrap_interval(np.array([1, 1, 0]), np.array([0.3, np.nan, 0.1]), resamples=10),
        paired_difference_interval(
            np.array([1, 1, 0]), np.array([0.3, 0.2, 0.1]), np.array([0.3, 0.2, -np.inf])
        ),
    ):
        assert all(np.isnan([interval.estimate, interval.low, interval.high]))
        assert not interval.contains(0.0)
    assert bootstrap_interval(y, s, resamples=10).resamples == 10  # still says what was asked


def test_interval_arguments_are_checked() -> None:
    y, s = _test_set(200, 5, 0)
    with pytest.raises(ConfigurationError, match="choose one of auprc, roc_auc"):
        bootstrap_interval(y, s, metric="accuracy")
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ConfigurationError, match="level"):
            bootstrap_interval(y, s, level=level)
    for resamples in (0, -3):
        with pytest.raises(ConfigurationError, match="at least 1"):
            paired_difference_interval(y, s, s, resamples=resamples)
    for resamples in (2.5, True):
        with pytest.raises(ConfigurationError, match="integer"):
            bootstrap_interval(y, s, resamples=resamples)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs the amounts"):
        bootstrap_interval(y, s, metric="fraud_amount_caught_at_top_05pct")
    with pytest.raises(ConfigurationError, match="labels but"):
        paired_difference_interval(y, s, s[:-1])
    with pytest.raises(ConfigurationError, match="share"):
        precision_at_top(y, s, share=0.0)


def test_summarise_counts_diverged_seeds_instead_of_averaging_them_away() -> None:
    values = [0.80, 0.84, np.nan, 0.82, np.inf]
    summary = summarise(values)
    assert summary == SeedSummary(
        mean=pytest.approx(0.82),
        std=pytest.approx(0.02),
        n=3,
        min=0.80,
        max=0.84,
        diverged=2,
    )
    assert summary.format() == "0.820 ± 0.020 (n=3, 2 diverged)"
    assert summarise([0.812, 0.846, 0.778, 0.8, 0.83]).format(2) == "0.81 ± 0.03 (n=5)"
    one = summarise(np.array([0.5]))
    assert np.isnan(one.std) and one.n == 1 and one.format() == "0.500 (n=1)"
    none = summarise([np.nan, np.nan])
    assert none.n == 0 and none.diverged == 2 and np.isnan(none.mean)
    assert none.format() == "no finite value (n=0, 2 diverged)"
    assert summarise([]).format() == "no finite value (n=0)"
    assert summary.as_dict()["diverged"] == 2
    assert Interval(0.5, 0.4, 0.6, 0.95, 10).contains(0.4)


def test_the_evaluation_benchmark_runs_and_agrees_with_the_naive_bootstrap() -> None:
    """benchmarks/bench_evaluation.py --quick: the fast paired interval and the naive
    resample-and-recompute bootstrap it is timed against estimate the same difference."""
    from _benchmarks import benchmark_script

    with benchmark_script("bench_evaluation") as module:
        result = module.run(quick=True)
        (row,) = result["results"]
        assert row["rows"] == 20_000 and row["frauds"] > 2 and row["resamples"] == 200
        assert row["paired_interval_cpu_s"] >= 0 and row["naive_paired_cpu_s_extrapolated"] > 0
        y, a, b, _ = module._branch(20_000, seed=20_000)
        interval = paired_difference_interval(y, a, b, resamples=200, seed=0)
        expected = fraud_metrics(y, a).auprc - fraud_metrics(y, b).auprc
        assert interval.estimate == pytest.approx(expected)
        assert interval.low <= expected <= interval.high


# --- hostile inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ([None] * 10, r"cluster ids must be all integers or all strings"),
        ([1, "1"] * 5, r"cluster ids must be all integers or all strings"),
        ([1.5, 2.5] * 5, r"cluster ids must be all integers or all strings"),
    ],
)
def test_object_cluster_ids_are_checked_like_the_others(ids: list, error: str) -> None:
    """An object array of ids was let through to np.unique: None or a mix of 1 and "1"
    raised a bare TypeError ("'<' not supported"), and object floats were taken as ids
    though float ids are refused."""
    y = np.array([0, 1] * 5)
    s = np.linspace(0, 1, 10)
    with pytest.raises(ConfigurationError, match=error):
        bootstrap_interval(y, s, resamples=10, clusters=np.array(ids, dtype=object))
    strings = np.array([f"card-{i % 4}" for i in range(10)], dtype=object)
    objects = bootstrap_interval(y, s, resamples=10, clusters=strings)
    assert objects == bootstrap_interval(y, s, resamples=10, clusters=strings.astype(str))


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_an_interval_seed_must_be_a_non_negative_integer(seed: object) -> None:
    """seed=-1 raised numpy's bare ValueError ("expected non-negative integer")."""
    y = np.array([0, 1] * 5)
    s = np.linspace(0, 1, 10)
    with pytest.raises(ConfigurationError, match="seed must be a non-negative integer"):
        bootstrap_interval(y, s, resamples=10, seed=seed)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="seed must be a non-negative integer"):
        paired_difference_interval(y, s, s, resamples=10, seed=seed)  # type: ignore[arg-type]


def test_summarise_refuses_values_that_are_no_numbers() -> None:
    """summarise(["a"]) raised numpy's ValueError."""
    with pytest.raises(ConfigurationError, match=r"summarise needs numbers"):
        summarise(["0.5", "a"])  # type: ignore[list-item]
