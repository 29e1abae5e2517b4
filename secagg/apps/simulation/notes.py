"""The notes a run's reader must see beside its figures (console and report.md).

Each note says, in the user's keys, something about the data or the round plan that
would otherwise mislead: a column left at a scale far above the others', a "customer"
column that is one row per customer, the column a feature skew used, the columns the
secure statistics clipped, a masking threshold that is every branch of the round.
They are computed from what the run already holds and change no figure.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.config import SimulationConfig, key
from secagg.dp.display import shown
from secagg.errors import ConfigurationError

#: with ``standardize = "none"``, a column whose typical magnitude (99th percentile of
#: |value| over the training rows) exceeds both this and this many times the median
#: column's is named in a note: the model trains on it unscaled
UNSCALED_MAGNITUDE: Final = 10.0


def unscaled_notes(
    config: SimulationConfig, branches: list[BranchData], names: tuple[str, ...]
) -> list[str]:
    """With ``standardize = "none"``: the columns at a scale far above the others' (Time
    in seconds, Amount in euros beside standardised components), named with their
    magnitudes as powers of ten (coarse on purpose: the note is no noised release), and
    what to do. Such a column dominates the gradient and its clip: a tiny Kaggle-layout
    run read with ``--data csv --label Class`` scored AUPRC 0.106 at a 10 % fraud rate
    (chance), 0.948 with the same rows scaled (simulate audit, 2026-12-06)."""
    if config.feature_statistics != "none" or not branches:
        return []
    if sum(b.x_train.size for b in branches) == 0:
        return []
    # a column at a time: pooling every training row (and its absolute values, and the
    # quantile's sorted copy) held 3.2 tables at once beside the branches' own, the
    # run's peak with standardize = "none" (memory audit, 2026-12-04); the same values
    scale = np.array(
        [
            np.quantile(np.abs(np.concatenate([b.x_train[:, j] for b in branches])), 0.99)
            for j in range(branches[0].x_train.shape[1])
        ]
    )
    limit = UNSCALED_MAGNITUDE * max(1.0, float(np.median(scale)))
    wide = [j for j in range(scale.size) if scale[j] > limit]
    if not wide:
        return []

    def order(v: float) -> str:
        return f"1e{math.floor(math.log10(v)):+d}" if v > 0 else "0"

    columns = ", ".join(f"{names[j]!r} (|values| of order {order(scale[j])})" for j in wide)
    it = "it" if len(wide) == 1 else "them"
    return [
        f"UNSCALED: {key('standardize', 'none')} trains on the raw values, and "
        f"{columns} {'lies' if len(wide) == 1 else 'lie'} far above the other columns "
        f"(median of order {order(float(np.median(scale)))}): "
        f"{'it dominates' if len(wide) == 1 else 'they dominate'} the gradient and the "
        f"model may learn little from the rest. Scale {it} (a time in days, log1p of an "
        f"amount) or standardise ({key('standardize', 'secure')} or 'public')"
    ]


def customer_column_notes(config: SimulationConfig, branches: list[BranchData]) -> list[str]:
    """A note when the ``customer_column`` of a file holds a different value on every
    row: each "customer" is then one row, so the guarantee labelled customer-level
    protects a single transaction in effect (a row id, or a transaction id, named by
    mistake). Said with the column and the counts, in the console and report.md, so
    the label is not read as protecting a customer's whole history. The counts are the
    branches' rows (training and test) and the distinct values among them; every row of
    such a column survives the ``max_rows_per_customer`` cap, so they are the file's."""
    if config.customer_column is None:
        return []
    ids = [c for b in branches for c in (b.customers_train, b.customers_test) if c is not None]
    if not ids:
        return []
    values = np.concatenate(ids)
    rows, distinct = int(values.size), int(np.unique(values).size)
    if rows < 2 or distinct < rows:
        return []
    return [
        f"ONE ROW PER CUSTOMER: the customer column {config.customer_column!r} "
        f"({key('customer_column')}) holds {distinct} distinct values in {rows} rows, so "
        "every row is its own customer: the customer-level ε protects one transaction in "
        "effect, not a customer's history. Name the column that identifies a customer "
        "(a card or account id), or drop it to report transaction-level privacy"
    ]


def partition_notes(config: SimulationConfig, names: tuple[str, ...]) -> list[str]:
    """With ``partition = "feature"``: the column the branches were skewed on, the one
    ``partition_column`` names or else the file's first feature column (a customer's:
    the mean of its rows). Why said: a reader comparing branches (or runs of two files
    laid out differently) must know which mix differs."""
    if config.source == "synthetic" or config.partition != "feature" or not names:
        return []
    per = " (per customer: the mean of its rows)" if config.customer_column is not None else ""
    shared = (
        f": its quantile bins were shared out in Dirichlet({key('alpha', config.alpha)}) "
        "proportions"
    )
    if config.partition_column is not None:
        return [
            f"{key('partition', 'feature')} skewed the branches on the column "
            f"{config.partition_column!r} ({key('partition_column')}){per}{shared}"
        ]
    return [
        f"{key('partition', 'feature')} skewed the branches on the file's first feature "
        f"column, {names[0]!r}{per}{shared}. To skew on another column, name it "
        f"({key('partition_column')})"
    ]


def statistics_notes(config: SimulationConfig, statistics: dict[str, Any] | None) -> list[str]:
    """What the reader of the results must know about the secure statistics: the columns
    whose values the bound clipped above :data:`~secagg.apps.simulation.feature_stats.
    NOTED_CLIPPED_SHARE` (pooled over the branches; a branch refuses above half of its own,
    see ``feature_stats``): their mean and std are biased, the std too small."""
    from secagg.apps.simulation.feature_stats import NOTED_CLIPPED_SHARE

    clipped = (statistics or {}).get("clipped") or {}
    noted = {n: c for n, c in clipped.items() if c["share"] > NOTED_CLIPPED_SHARE}
    if not noted:
        return []
    columns = ", ".join(
        f"{name!r} ({100 * c['share']:.0f} % of its training values; up to "
        f"{100 * c['largest_branch_share']:.0f} % on a branch)"
        for name, c in noted.items()
    )
    b = f"±{config.stats_bound:g}"
    return [
        f"the secure feature statistics clipped {columns} at {b} ({key('stats_bound')}): "
        f"{'its' if len(noted) == 1 else 'their'} mean and std are biased (the std too "
        f"small); scale {'the column' if len(noted) == 1 else 'them'} so that most values "
        f"lie within {b}, or raise {key('stats_bound')}"
    ]


def whole_cohort_notes(config: SimulationConfig, rounds: list[dict[str, Any]]) -> list[str]:
    """With a masking backend and so few branches that its Shamir threshold is every
    branch of the round: one dropout aborts the round, and the reader is told why.

    Why: ``--unit client --branches 3`` ran with rounds aborted "below the threshold of
    3" and nothing said that with 3 branches this is every round with a dropout: the
    threshold that keeps ``corrupt_fraction`` colluders from opening a branch's masks
    is then the whole cohort. The reader saw only the count of aborted rounds."""
    from secagg.aggregation.masking import GRAPHS
    from secagg.protocol.config import RoundConfig

    if config.backend not in GRAPHS or config.sample_rate < 1 or config.dropout == 0:
        return []
    n = config.branches
    try:
        threshold = RoundConfig.create(
            n,
            1,
            graph=GRAPHS[config.backend],  # type: ignore[arg-type]
            dropout_fraction=config.tolerated_dropout,
            corrupt_fraction=config.corrupt_fraction,
        ).threshold
    except ConfigurationError:  # refused at load already; nothing to explain here
        return []
    if threshold < n:
        return []
    aborted = sum(1 for r in rounds if r.get("status") != "complete")
    chance = 1 - (1 - config.dropout) ** n
    # an upper bound, so rounded up: to the nearest, 1 - 0.95 ** 3 = 14.26 % read "up to 14 %"
    return [
        f"with {key('branches', n)} the {config.backend} threshold (sized for "
        f"{key('corrupt_fraction', config.corrupt_fraction)}) is all {n} branches, so "
        f"any dropout aborts its round: at "
        f"{key('dropout', config.dropout)} up to {shown(100 * chance, 1)} % of rounds abort "
        f"(here {aborted} of {len(rounds)}); more branches let rounds survive dropouts"
    ]
