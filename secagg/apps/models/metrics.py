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

What the fraud team adds: recall at 0.1 % FPR (the review budget of a large
issuer), precision among the top 0.5 % of scores (how many of the alerts an
analyst opens are fraud) and the share of the fraud *amount* those alerts catch
(a model that catches the small frauds and misses the large ones looks good on
counts only). Ties straddling the alert cut-off count fractionally, as the
expected value over uniformly random tie-breaking, so these too are independent
of row order.

What the reviewer adds: a point estimate on ~30 test frauds is noise. Every
metric gets a stratified-bootstrap percentile interval (:func:`bootstrap_interval`),
two models get a paired one on the same resampled rows
(:func:`paired_difference_interval`, the test for "federated is at least as good
as local-only"), and multi-seed results are summarised with their spread and
their diverged seeds counted (:func:`summarise`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
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
    # The fields below came later: they have defaults so positional constructions of
    # the six above keep working.
    #: recall at a 0.1 % false-positive rate (same exact tie rule as at 1 %)
    recall_at_01pct_fpr: float = math.nan
    #: precision among the top 0.5 % of rows by score (k = ceil(0.005 n), at least 1)
    precision_at_top_05pct: float = math.nan
    #: share of the fraud amount inside those same alerts; NaN without amounts
    fraud_amount_caught_at_top_05pct: float = math.nan

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


#: the alert budget of the top-k metrics: the top 0.5 % of rows by score
TOP_SHARE = 0.005


def _alerts(n: int, share: float) -> int:
    """k = ceil(share * n) alerts, at least 1 (a review queue is never empty)."""
    # round first: 0.07 * 100 is 7.000000000000001 in binary, and ceil must say 7
    return max(1, math.ceil(round(share * n, 9)))


def _checked_amounts(amounts: np.ndarray, rows: int) -> np.ndarray:
    a = np.asarray(amounts, dtype=np.float64).reshape(-1)
    if a.size != rows:
        raise ConfigurationError(f"{a.size} amounts but {rows} rows: give one amount per row")
    if not np.all(np.isfinite(a)):
        raise ConfigurationError("amounts must be finite")
    if np.any(a < 0):
        raise ConfigurationError("amounts must be non-negative")
    return a


def _checked_share(share: float) -> float:
    if not 0 < share <= 1:
        raise ConfigurationError("share must lie in (0, 1]")
    return float(share)


def precision_at_top(labels: np.ndarray, scores: np.ndarray, share: float = TOP_SHARE) -> float:
    """Precision among the top ``share`` of rows by score: the fraction of the alerts an
    analyst opens that are fraud. The tie block straddling the cut-off counts
    fractionally (the expected value over random tie-breaking). Defined (0.0) when there
    is no fraud at all: the alerts are then all false; NaN only for an empty test set."""
    share = _checked_share(share)
    y, s = _checked(labels, scores)
    return float(_Ranking(y, s).counts().value("precision_at_top", share)[0])


def amount_caught_at_top(
    labels: np.ndarray, scores: np.ndarray, amounts: np.ndarray, share: float = TOP_SHARE
) -> float:
    """Share of the total fraud amount inside the top ``share`` of rows by score (same tie
    rule as :func:`precision_at_top`); NaN when the fraud amount is 0."""
    share = _checked_share(share)
    y, s = _checked(labels, scores)
    a = _checked_amounts(amounts, y.size)
    return float(_Ranking(y, s).counts(a[y]).value("amount_at_top", share)[0])


def fraud_metrics(
    labels: np.ndarray, scores: np.ndarray, amounts: np.ndarray | None = None
) -> FraudMetrics:
    """Every metric of one model on one test set; ``diverged`` (and NaN metrics) when
    its scores are not all finite. Labels, shapes and ``amounts`` (one finite,
    non-negative amount per row, or None) are still checked. Without amounts the
    fraud-amount metric is NaN: a count is not an amount."""
    finite = np.isfinite(np.asarray(scores, dtype=np.float64))
    if not finite.all():
        y, _ = _checked(labels, np.where(finite, scores, 0.0))
        if amounts is not None:
            _checked_amounts(amounts, y.size)
        return FraudMetrics(
            auprc=math.nan,
            roc_auc=math.nan,
            recall_at_1pct_fpr=math.nan,
            positives=int(y.sum()),
            negatives=int((~y).sum()),
            diverged=True,
        )
    y, s = _checked(labels, scores)
    a = None if amounts is None else _checked_amounts(amounts, y.size)
    counts = _Ranking(y, s).counts(None if a is None else a[y])
    return FraudMetrics(
        auprc=average_precision(labels, scores),
        roc_auc=roc_auc(labels, scores),
        recall_at_1pct_fpr=recall_at_fpr(labels, scores, 0.01),
        positives=int(y.sum()),
        negatives=int((~y).sum()),
        recall_at_01pct_fpr=recall_at_fpr(labels, scores, 0.001),
        precision_at_top_05pct=float(counts.value("precision_at_top", TOP_SHARE)[0]),
        fraud_amount_caught_at_top_05pct=(
            math.nan if a is None else float(counts.value("amount_at_top", TOP_SHARE)[0])
        ),
    )


# --- the ranking condensed once, and the metrics from (weighted) counts ------------
#
# Every metric here depends on the rows only through, in score order, how many frauds
# and how many legit rows (and how much fraud amount) sit in each tie block. Runs of
# blocks without fraud can even be merged: they add no true positive, so no metric
# can tell one such run from one block. A ranking with m fraud-holding blocks thus
# condenses to m fraud blocks and 2m + 1 "units" of legit rows (gap 0, tied-with-block
# 0, gap 1, ..., gap m). A bootstrap resample only changes how many times each row
# counts, so it is a reweighting of these units in the fixed order: no re-sorting.


@dataclass(frozen=True)
class _Counts:
    """Per resample (rows) and fraud block (columns): frauds ``p``, fraud amount ``a``,
    legit rows tied with the block ``t``; ``g`` the legit rows in the m + 1 gaps."""

    p: np.ndarray
    a: np.ndarray | None
    t: np.ndarray
    g: np.ndarray

    def value(self, metric: str, share: float = TOP_SHARE) -> np.ndarray:
        """One metric for every resample (a 1-D array)."""
        p, t, g = self.p, self.t, self.g
        pos = p.sum(axis=1)
        neg = t.sum(axis=1) + g.sum(axis=1)
        tp = np.cumsum(p, axis=1)
        fp = np.cumsum(g[:, :-1] + t, axis=1)
        no_pos = pos == 0
        safe_pos = np.where(no_pos, 1.0, pos)
        safe_neg = np.where(neg == 0, 1.0, neg)
        if metric == "auprc":
            shown = tp + fp
            precision = np.divide(tp, shown, out=np.zeros_like(tp), where=shown > 0)
            out = (p * precision).sum(axis=1) / safe_pos
            return np.where(no_pos, math.nan, out)
        if metric == "roc_auc":
            # Mann-Whitney: each fraud beats the legit rows below its block, half the tied
            wins2 = (p * (2 * (neg[:, None] - fp) + t)).sum(axis=1)
            out = wins2 / (2 * safe_pos * safe_neg)
            return np.where(no_pos | (neg == 0), math.nan, out)
        if metric in ("recall_at_1pct_fpr", "recall_at_01pct_fpr"):
            max_fpr = 0.01 if metric == "recall_at_1pct_fpr" else 0.001
            allowed = fp / safe_neg[:, None] <= max_fpr + 1e-12  # the rule of recall_at_fpr
            best = np.max(np.where(allowed, tp, 0.0), axis=1, initial=0.0)
            return np.where(no_pos | (neg == 0), math.nan, best / safe_pos)
        if metric in ("precision_at_top", "amount_at_top"):
            n = pos + neg  # per resample: resampling cards moves the row count
            k = np.array([_alerts(int(v), share) for v in n], dtype=np.float64)
            size = p + t
            above = np.cumsum(g[:, :-1], axis=1) + np.cumsum(size, axis=1) - size
            taken = np.clip(k[:, None] - above, 0.0, size)
            fraction = np.divide(taken, size, out=np.zeros_like(size), where=size > 0)
            if metric == "precision_at_top":
                return np.where(n == 0, math.nan, (fraction * p).sum(axis=1) / k)
            assert self.a is not None
            total = self.a.sum(axis=1)
            caught = (fraction * self.a).sum(axis=1)
            return np.where(total > 0, caught / np.where(total > 0, total, 1.0), math.nan)
        raise AssertionError(metric)


def _group_sum(w: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """Column sums of ``w`` (resamples x items) per group of items, vectorised over rows."""
    order = np.argsort(group, kind="stable")
    ends = np.searchsorted(group[order], np.arange(groups), side="right")
    cum = np.zeros((w.shape[0], group.size + 1), dtype=np.float64)
    np.cumsum(w[:, order], axis=1, out=cum[:, 1:])
    return np.diff(np.c_[np.zeros(w.shape[0]), cum[:, ends]], axis=1)


class _Ranking:
    """One model's ranking, sorted once and condensed (see the comment above)."""

    def __init__(self, y: np.ndarray, s: np.ndarray) -> None:
        order = np.argsort(-s, kind="stable")
        block_sorted = np.r_[0, np.cumsum(np.diff(s[order]) != 0)].astype(np.intp)
        block = np.empty(y.size, dtype=np.intp)
        block[order] = block_sorted
        blocks = int(block_sorted[-1]) + 1 if y.size else 0
        has_fraud = np.bincount(block[y], minlength=blocks) > 0
        before = np.cumsum(has_fraud)  # fraud blocks up to and including each block
        self.m = int(has_fraud.sum())
        #: the fraud block of each fraud row (in the order of the fraud rows)
        self.fraud_block = before[block[y]] - 1
        #: the legit unit of each legit row: 2j+1 tied with fraud block j, 2j gap j
        neg_block = block[~y]
        self.legit_unit = np.where(
            has_fraud[neg_block], 2 * (before[neg_block] - 1) + 1, 2 * before[neg_block]
        )

    def counts(self, fraud_amounts: np.ndarray | None = None) -> _Counts:
        """The counts of the data itself (every row once), as one "resample";
        ``fraud_amounts`` are the amounts of the fraud rows, in their order."""
        p = np.bincount(self.fraud_block, minlength=self.m).astype(np.float64)
        a = None
        if fraud_amounts is not None:
            a = np.bincount(self.fraud_block, weights=fraud_amounts, minlength=self.m)[None, :]
        units = np.bincount(self.legit_unit, minlength=2 * self.m + 1).astype(np.float64)
        return _Counts(p=p[None, :], a=a, t=units[None, 1::2], g=units[None, 0::2])

    def resampled(
        self,
        fraud_weights: np.ndarray,
        cell_counts: np.ndarray,
        cell_unit: np.ndarray,
        fraud_amounts: np.ndarray | None,
    ) -> _Counts:
        """The counts of a chunk of resamples: ``fraud_weights`` (resamples x fraud rows)
        the multiplicity of each fraud row, ``cell_counts`` (resamples x cells) how many
        legit rows were drawn from each cell, ``cell_unit`` this ranking's unit of each
        cell."""
        p = _group_sum(fraud_weights, self.fraud_block, self.m)
        a = None
        if fraud_amounts is not None:
            a = _group_sum(fraud_weights * fraud_amounts, self.fraud_block, self.m)
        units = _group_sum(cell_counts, cell_unit, 2 * self.m + 1)
        return _Counts(p=p, a=a, t=units[:, 1::2], g=units[:, 0::2])


# --- confidence intervals: the stratified bootstrap ---------------------------------

#: the metrics an interval can be asked for: FraudMetrics field -> name in _Counts.value
INTERVAL_METRICS: dict[str, str] = {
    "auprc": "auprc",
    "roc_auc": "roc_auc",
    "recall_at_1pct_fpr": "recall_at_1pct_fpr",
    "recall_at_01pct_fpr": "recall_at_01pct_fpr",
    "precision_at_top_05pct": "precision_at_top",
    "fraud_amount_caught_at_top_05pct": "amount_at_top",
}

#: separates the bootstrap's random stream from every other use of the same seed
_BOOTSTRAP_STREAM = 0xB007


@dataclass(frozen=True)
class Interval:
    """A metric with its percentile bootstrap interval. All NaN when it cannot be
    computed (diverged scores, fewer than 2 test frauds): the caller flags the branch."""

    estimate: float
    low: float
    high: float
    #: the coverage asked for, e.g. 0.95
    level: float
    resamples: int
    #: what was resampled: "row" (transactions, fraud and legit apart) or "card" (every
    #: row of a drawn card, the cards with a test fraud and the others apart)
    unit: str = "row"

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in [low, high]; False for a NaN interval."""
        return bool(self.low <= value <= self.high)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _checked_interval_args(metric: str, resamples: int, level: float, seed: int) -> str:
    if metric not in INTERVAL_METRICS:
        raise ConfigurationError(
            f"unknown metric {metric!r}: choose one of {', '.join(INTERVAL_METRICS)}"
        )
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer):
        raise ConfigurationError("resamples must be an integer")
    if resamples < 1:
        raise ConfigurationError("resamples must be at least 1")
    if not 0 < level < 1:
        raise ConfigurationError("level must lie strictly between 0 and 1")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigurationError(f"seed must be a non-negative integer, not {seed!r}")
    return INTERVAL_METRICS[metric]


class _Design:
    """The rows of one test set as the bootstrap sees them: fraud rows one by one (they
    are few, and carry amounts), legit rows pooled into the cells that every ranking
    agrees on (rows in the same unit of every ranking are interchangeable to every
    metric, so drawing how many come from each cell is drawing the resample).

    With ``clusters`` (each row's card, numbered 0..cards-1 by :func:`_clusters`) the
    units drawn are cards, not rows: the cards with a fraud in the test set and the
    other cards are two strata, each resampled with replacement keeping its number of
    cards, and a drawn card brings every one of its rows. A resample's row
    multiplicities are then its cards' multiplicities, so the legit count of each cell
    is a sum over (card, cell) pairs."""

    def __init__(
        self, y: np.ndarray, rankings: Sequence[_Ranking], clusters: np.ndarray | None = None
    ) -> None:
        self.y = y
        self.rankings = rankings
        self.positives = int(y.sum())
        self.negatives = int(y.size - self.positives)
        key = np.zeros(self.negatives, dtype=np.int64)
        for ranking in rankings:
            key = key * (2 * ranking.m + 1) + ranking.legit_unit
        _, first, cell = np.unique(key, return_index=True, return_inverse=True)
        # cells numbered by their first row, so the draws do not depend on the order in
        # which the models were given (a - b and b - a are the same resamples)
        by_first = np.argsort(first)
        first = first[by_first]
        self.legit_cell = np.argsort(by_first)[cell.reshape(-1)]
        self.cell_sizes = np.bincount(self.legit_cell, minlength=first.size)
        self.cell_units = [ranking.legit_unit[first] for ranking in rankings]
        self.clustered = clusters is not None
        if clusters is not None:
            card = clusters  # numbered 0..cards-1 by _clusters
            cards = int(card.max()) + 1 if card.size else 0
            holds_fraud = np.bincount(card[y], minlength=cards) > 0
            #: the two strata, as card numbers: cards with a test fraud, then the others
            self.fraud_cards = np.flatnonzero(holds_fraud)
            self.other_cards = np.flatnonzero(~holds_fraud)
            self.cards = cards
            #: the card of each fraud row, and of each legit row
            self.fraud_row_card = card[y]
            cells = self.cell_sizes.size
            pair, pair_rows = np.unique(card[~y] * cells + self.legit_cell, return_counts=True)
            #: the legit rows as (card, cell, how many rows) triples
            self.pair_card, self.pair_cell = pair // cells, pair % cells
            self.pair_rows = pair_rows.astype(np.float64)

    @property
    def fraud_units(self) -> int:
        """How many independent fraud units the test set holds: cards or rows."""
        return int(self.fraud_cards.size) if self.clustered else self.positives

    def card_draws(self, resamples: int, seed: int) -> Iterator[np.ndarray]:
        """Chunks of card multiplicities (resamples x cards): a multinomial over the cards
        with a test fraud and one over the others, so each stratum keeps its card count."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, _BOOTSTRAP_STREAM]))
        chunk = max(1, min(resamples, 2**20 // max(self.cards, self.pair_card.size, 1)))
        strata = [s for s in (self.fraud_cards, self.other_cards) if s.size]
        for start in range(0, resamples, chunk):
            c = min(chunk, resamples - start)
            mult = np.zeros((c, self.cards), dtype=np.float64)
            for stratum in strata:
                p = np.full(stratum.size, 1.0 / stratum.size)
                mult[:, stratum] = rng.multinomial(stratum.size, p, size=c)
            yield mult

    def draws(self, resamples: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (fraud-row multiplicities, legit counts per cell): a multinomial over
        the fraud rows and one over the legit rows, so each stratum keeps its count (or,
        clustered, the same from the cards drawn by :meth:`card_draws`)."""
        if self.clustered:
            cells = self.cell_sizes.size
            for mult in self.card_draws(resamples, seed):
                legit = _group_sum(mult[:, self.pair_card] * self.pair_rows, self.pair_cell, cells)
                yield mult[:, self.fraud_row_card], legit
            return
        rng = np.random.default_rng(np.random.SeedSequence([seed, _BOOTSTRAP_STREAM]))
        width = max(self.positives, self.cell_sizes.size, 1)
        chunk = max(1, min(resamples, 2**20 // width))
        fraud_p = np.full(self.positives, 1.0 / self.positives)
        cell_p = self.cell_sizes / max(self.negatives, 1)
        for start in range(0, resamples, chunk):
            c = min(chunk, resamples - start)
            fraud = rng.multinomial(self.positives, fraud_p, size=c).astype(np.float64)
            if self.negatives:
                legit = rng.multinomial(self.negatives, cell_p, size=c).astype(np.float64)
            else:
                legit = np.zeros((c, 0))
            yield fraud, legit

    def values(
        self, metric: str, resamples: int, seed: int, amounts: np.ndarray | None
    ) -> list[np.ndarray]:
        """The metric on every resample, one array per ranking (same resamples for all)."""
        fraud_amounts = None if amounts is None else amounts[self.y]
        out: list[list[np.ndarray]] = [[] for _ in self.rankings]
        for fraud, legit in self.draws(resamples, seed):
            for i, ranking in enumerate(self.rankings):
                counts = ranking.resampled(fraud, legit, self.cell_units[i], fraud_amounts)
                out[i].append(counts.value(metric, TOP_SHARE))
        return [np.concatenate(parts) for parts in out]


def _bootstrap_multiplicities(
    labels: np.ndarray,
    scores: Sequence[np.ndarray],
    resamples: int,
    seed: int,
    clusters: np.ndarray | None = None,
) -> np.ndarray:
    """The bootstrap's resamples as row multiplicities (resamples x rows), so a test can
    rebuild each resampled test set with ``np.repeat`` and recompute the metric slowly.
    The legit count of each cell is split over the cell's rows uniformly at random
    (another multinomial: together the exact stratified bootstrap); no metric can see
    how it is split, which is why the bootstrap itself never draws it. Clustered, a
    row's multiplicity is its card's: nothing is split."""
    y, _ = _checked(labels, scores[0])
    card = _clusters(clusters, y)
    design = _Design(y, [_Ranking(y, _checked(labels, s)[1]) for s in scores], card)
    if card is not None:
        draws = design.card_draws(resamples, seed)
        return np.concatenate([m[:, card] for m in draws]).astype(np.int64)
    split = np.random.default_rng(np.random.SeedSequence([seed, _BOOTSTRAP_STREAM, 1]))
    fraud_rows, legit_rows = np.flatnonzero(y), np.flatnonzero(~y)
    members = [legit_rows[design.legit_cell == cell] for cell in range(design.cell_sizes.size)]
    out = []
    for fraud, legit in design.draws(resamples, seed):
        w = np.zeros((fraud.shape[0], y.size), dtype=np.int64)
        w[:, fraud_rows] = fraud
        for r in range(legit.shape[0]):
            for cell, rows in enumerate(members):
                w[r, rows] = split.multinomial(
                    int(legit[r, cell]), np.full(rows.size, 1 / rows.size)
                )
        out.append(w)
    return np.concatenate(out)


def _bootstrap_values(
    labels: np.ndarray,
    scores: Sequence[np.ndarray],
    metric: str,
    resamples: int,
    seed: int,
    amounts: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The metric on each resample, per score vector: what the intervals are percentiles
    of, exposed so a test can hold each value against a slow explicit resample."""
    y, _ = _checked(labels, scores[0])
    a = None if amounts is None else _checked_amounts(amounts, y.size)
    rankings = [_Ranking(y, _checked(labels, s)[1]) for s in scores]
    design = _Design(y, rankings, _clusters(clusters, y))
    return design.values(INTERVAL_METRICS[metric], resamples, seed, a)


def _clusters(clusters: np.ndarray | None, y: np.ndarray) -> np.ndarray | None:
    """The card of each row as a number 0..cards-1, checked against the labels (None: rows
    are the units). Ids may be integers or strings (a table's customer column); floats
    are refused: an id that rounding could merge or split is not an id."""
    if clusters is None:
        return None
    c = np.asarray(clusters)
    if c.size != y.size:
        raise ConfigurationError(
            f"clusters must give one id per row ({y.size}), got shape {c.shape}"
        )
    if c.dtype.kind not in "iubUSO":
        raise ConfigurationError(f"cluster ids must be integers or strings, got {c.dtype}")
    if c.dtype.kind == "O":  # np.unique would compare None, 1 and "1", or take 1.5
        kinds = {
            "int" if isinstance(v, int | np.integer) else "str" if isinstance(v, str) else "?"
            for v in c.reshape(-1)
        }
        if len(kinds) > 1 or "?" in kinds:
            found = sorted({type(v).__name__ for v in c.reshape(-1)})
            raise ConfigurationError(
                f"cluster ids must be all integers or all strings, got {', '.join(found)}"
            )
    _, card = np.unique(c.reshape(-1), return_inverse=True)
    return card.reshape(-1).astype(np.intp)


def _nan_interval(level: float, resamples: int, unit: str = "row") -> Interval:
    return Interval(math.nan, math.nan, math.nan, level, resamples, unit)


#: fewest independent fraud units (rows, or cards when clustered) an interval needs
MIN_FRAUD_UNITS = 2


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    # NaN in any resample (an amount metric whose resampled frauds all have amount 0)
    # makes the bounds NaN rather than being dropped: the interval would be optimistic
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _prepared(
    labels: np.ndarray, scores: Sequence[np.ndarray], amounts: np.ndarray | None, metric: str
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Labels, checked amounts, and whether every score vector is finite."""
    finite = all(np.isfinite(np.asarray(s, dtype=np.float64)).all() for s in scores)
    y = None
    for s in scores:
        y, _ = _checked(labels, np.where(np.isfinite(s), s, 0.0))
    assert y is not None
    a = None if amounts is None else _checked_amounts(amounts, y.size)
    if INTERVAL_METRICS[metric] == "amount_at_top" and a is None:
        raise ConfigurationError(f"metric {metric!r} needs the amounts")
    return y, a, finite


def bootstrap_interval(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    metric: str = "auprc",
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    amounts: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> Interval:
    """A stratified-bootstrap percentile interval for one :class:`FraudMetrics` metric.

    Fraud and legit rows are resampled separately with replacement, each keeping its
    count: with ~30 test frauds a plain bootstrap would vary the fraud count itself,
    and that is not the uncertainty about the model. ``estimate`` is the metric on the
    original data (the value :func:`fraud_metrics` reports). The data is sorted once;
    each resample is a reweighting of the tie blocks in that fixed order, computed by
    weighted cumulative sums for chunks of resamples at a time.

    An interval is evaluation, not a secret: numpy's seeded PCG64 generator draws the
    resamples (the engine's keys, masks and noise never come from it), so the same
    ``seed`` gives the same interval. Diverged scores or fewer than 2 test frauds give
    an interval of NaNs, not an error: the caller flags that branch.

    ``clusters`` (one card or customer id per row) resamples cards instead of rows:
    a compromised card's burst of frauds, and a card's legitimate habits, are not
    independent draws, and treating them as such makes the interval too narrow. The
    cards with a test fraud and the other cards are resampled apart, each keeping its
    number of cards; an interval needs 2 cards with a fraud. (A test set whose only
    legitimate rows sit on fraud cards can draw a resample without any: ROC-AUC and
    the recalls are then NaN for it, and so is their interval, rather than a guess.)
    """
    engine = _checked_interval_args(metric, resamples, level, seed)
    y, a, finite = _prepared(labels, [scores], amounts, metric)
    card = _clusters(clusters, y)
    unit = "row" if card is None else "card"
    if not finite or y.sum() < 2:
        return _nan_interval(level, resamples, unit)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    design = _Design(y, [_Ranking(y, s)], card)
    if design.fraud_units < MIN_FRAUD_UNITS:
        return _nan_interval(level, resamples, unit)
    estimate = getattr(fraud_metrics(y, s, a), metric)
    (values,) = design.values(engine, resamples, seed, a)
    low, high = _percentiles(values, level)
    return Interval(float(estimate), low, high, level, resamples, unit)


def paired_difference_interval(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    metric: str = "auprc",
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    amounts: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> Interval:
    """The interval of metric(a) - metric(b), both models scored on the *same* resampled
    rows (pairing cancels the test-set luck they share, so the interval is far tighter
    than two separate ones). "a is at least as good as b within its 95 % interval"
    reads ``high >= 0``. Same stratification, ``clusters``, randomness and NaN rules as
    :func:`bootstrap_interval`; a model against itself gives exactly [0, 0]."""
    engine = _checked_interval_args(metric, resamples, level, seed)
    y, a, finite = _prepared(labels, [scores_a, scores_b], amounts, metric)
    card = _clusters(clusters, y)
    unit = "row" if card is None else "card"
    if not finite or y.sum() < 2:
        return _nan_interval(level, resamples, unit)
    sa = np.asarray(scores_a, dtype=np.float64).reshape(-1)
    sb = np.asarray(scores_b, dtype=np.float64).reshape(-1)
    design = _Design(y, [_Ranking(y, sa), _Ranking(y, sb)], card)
    if design.fraud_units < MIN_FRAUD_UNITS:
        return _nan_interval(level, resamples, unit)
    estimate = getattr(fraud_metrics(y, sa, a), metric) - getattr(fraud_metrics(y, sb, a), metric)
    values_a, values_b = design.values(engine, resamples, seed, a)
    low, high = _percentiles(values_a - values_b, level)
    return Interval(float(estimate), low, high, level, resamples, unit)


# --- several seeds ------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSummary:
    """One metric over several seeds: the spread over the finite values, and how many
    seeds diverged (NaN or infinite): those are counted, never averaged away."""

    mean: float
    #: sample standard deviation (ddof=1); NaN with fewer than 2 finite values
    std: float
    #: how many finite values the statistics are over
    n: int
    min: float
    max: float
    diverged: int = 0

    def format(self, digits: int = 3) -> str:
        """E.g. "0.812 ± 0.034 (n=5)", or "0.812 ± 0.034 (n=4, 1 diverged)"."""
        note = f", {self.diverged} diverged" if self.diverged else ""
        if self.n == 0:
            return f"no finite value (n=0{note})"
        spread = "" if math.isnan(self.std) else f" ± {self.std:.{digits}f}"
        return f"{self.mean:.{digits}f}{spread} (n={self.n}{note})"

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarise(values: Sequence[float] | np.ndarray) -> SeedSummary:
    """Mean, sample standard deviation, n, min and max of the finite values; the
    non-finite ones are counted as ``diverged``."""
    try:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigurationError(f"summarise needs numbers, got {values!r}") from None
    finite = v[np.isfinite(v)]
    diverged = int(v.size - finite.size)
    if finite.size == 0:
        return SeedSummary(math.nan, math.nan, 0, math.nan, math.nan, diverged)
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
    return SeedSummary(
        mean=float(finite.mean()),
        std=std,
        n=int(finite.size),
        min=float(finite.min()),
        max=float(finite.max()),
        diverged=diverged,
    )
