"""``secagg simulate``: a bank-branch federation, its baselines, and the run folder.

Theory of operation
-------------------
1. **Data**: per-branch training and test sets, synthetic (seeded: cards with
   histories, an out-of-time test period) or a CSV partitioned into branches (every
   branch with a minimum of rows and of training and test frauds, or a refusal).
2. **Prior**: the model training starts from: fitted without DP on the generator's
   public reference worlds (other seeds), which costs no branch's privacy beyond the
   feature statistics it is standardised with, or an earlier run's released
   ``model.npy``, which costs what its own training spent on these protected units
   (``prior_epsilon``, ``prior_delta``): every epsilon of a setting that starts from it
   (prior only, local-only, federated) is that cost and this run's composed (basic
   composition, :func:`with_prior_cost`). With a prior the branches train only its output
   layer (33 parameters of the synthetic world's 2 081): DP noise grows with the
   trained dimension. Record-level DP with the noise added once trains them all.
3. **Baselines**: *prior only* (what the federation adds is measured against it),
   *local-only* (each branch trains alone from the same prior, for as many epochs and
   under the same privacy mechanism as in the federation) and *centralized
   non-private* (all training rows pooled, the upper bound no bank may build), which is
   tuned on its own: start, learning rate and epochs chosen on held-out training rows.
4. **Federation**: the real runtime, not a shortcut. A
   :class:`~secagg.runtime.server.FederationServer` and one
   :class:`~secagg.runtime.client.FederationClient` thread per branch talk over
   the in-process transport; each round the branches train on their own rows
   (DP-SGD for record-level DP), and their updates meet only in the chosen
   aggregation backend (masking, CKKS or the plain baseline). Scheduled
   dropouts make branches vanish mid-protocol. The server keeps its SQLite
   database in the run folder.
5. **Evaluation** after every round, on every branch's held-out test set (the
   simulator's privilege: a real server has no test data): AUPRC and the fraud team's
   operating points (recall at 0.1 % FPR, precision and fraud amount caught in the top
   0.5 % of alerts), the mean of the last rounds beside the final one, and per branch a
   paired bootstrap interval of federated against local-only. Then a run folder with
   metrics, plots, the released model and a markdown report.

Determinism: data, model initialisation, the DP-SGD samplers and noise, the
fixed-point rounding and the dropout schedule all derive from the seed, and
torch runs one thread per operation, so the same seed gives the same metrics.
(Masks and keys are still fresh randomness: they cancel exactly.) Noise derived
from a known seed protects nothing: a simulation measures utility, it is not a
private release.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import hashlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, NoReturn

import numpy as np

from secagg.apps.models.metrics import fraud_metrics
from secagg.apps.models.synthetic import BranchData, generate_branches
from secagg.apps.models.tabular import MemoryPeak
from secagg.apps.simulation.config import REAL_CAPS, SimulationConfig, check_branch_data, key
from secagg.apps.simulation.network import (
    MASKING_PHASES,
    SINGLE_PHASE,
    DropoutSchedule,
    SimulatedNetwork,
)
from secagg.dp.display import shown
from secagg.errors import BudgetUnreachable, ConfigurationError

log = logging.getLogger("secagg.simulation")

KEY_HOLDER = "key-holder"

#: progress callback: (stage, done, total, message)
Progress = Callable[[str, int, int, str], None]


def _quiet(stage: str, done: int, total: int, message: str) -> None:
    del stage, done, total, message


# --- data -----------------------------------------------------------------------


def load_branches(config: SimulationConfig) -> list[BranchData]:
    """The branches' training and test data the configuration describes, standardised."""
    return load_data(config)[0]


def load_data(config: SimulationConfig) -> tuple[list[BranchData], Any]:
    """The branches' standardised data and the :class:`FeatureStatistics` used (None
    with ``standardize = "none"``). No raw rows are pooled: the statistics are a noised
    secure sum of per-branch sums, or public data (see ``feature_stats``)."""
    branches, stats, _ = _load_data(config)
    return branches, stats


def _load_data(config: SimulationConfig) -> tuple[list[BranchData], Any, tuple[str, ...]]:
    """:func:`load_data`, and the feature names."""
    raw, names = _raw_branches(config)
    check_branch_data(config, _branch_counts(raw))  # refused here, before any training
    stats = _feature_statistics(config, raw, names)
    if stats is None:
        return raw, None, names
    step = stats.accountant_step
    charged = step is not None and config.unit == "record" and config.private
    standardised = []
    raw.reverse()
    while raw:
        # each raw branch is let go once its standardised twin exists: both lists whole
        # held two tables at once (memory audit, 2026-12-04)
        b = raw.pop()
        standardised.append(
            dataclasses.replace(
                b,
                x_train=stats.apply(b.x_train),
                x_test=stats.apply(b.x_test),
                prior_releases=(step,) if charged else (),
            )
        )
        del b
    return standardised, stats, names


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


def partition_column_index(config: SimulationConfig, names: tuple[str, ...]) -> int:
    """The index among the file's feature columns ``names`` of the column the feature
    skew uses: ``partition_column``, or the first. A name that is no feature column is
    a :class:`ConfigurationError` naming the key (the label and the customer column are
    not features: they are said to be what they are)."""
    name = config.partition_column
    if name is None:
        return 0
    if name in names:
        return names.index(name)
    label = config.label if config.source == "csv" else "Class"  # the credit-card layout's
    if name == label:
        what = "is the label column"
    elif name == config.customer_column:
        what = f"is the customer column ({key('customer_column')})"
    else:
        what = f"is no column of {config.path}"
    listed = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
    raise ConfigurationError(
        f"{key('partition_column')} {name!r} {what}: the feature skew needs a feature "
        f"column, one of {listed}"
    )


def _branch_counts(branches: list[BranchData]) -> list[tuple[str, int, int, int]]:
    """``(name, training rows, training frauds, test frauds)`` per branch, for
    :func:`~secagg.apps.simulation.config.check_branch_data`."""
    return [(b.name, b.num_train, int(b.y_train.sum()), int(b.y_test.sum())) for b in branches]


def _feature_statistics(
    config: SimulationConfig, raw: list[BranchData], names: tuple[str, ...]
) -> Any:
    from secagg.apps.simulation.feature_stats import (
        load_public_statistics,
        public_feature_statistics,
        secure_feature_statistics,
    )

    source = config.feature_statistics
    if source == "none":
        return None
    if source == "public":
        if config.stats_path is not None:
            _require_file(config, "stats_path")
            return load_public_statistics(config.stats_path, names)
        # the generator's reference sample: drawn for this, under another seed, it is
        # no branch's data (a public prior of the same population)
        reference = _public_reference(config)
        return public_feature_statistics(
            np.concatenate([b.x_train for b in reference]),
            origin="reference sample of the synthetic generator (another seed)",
        )
    from secagg.apps.simulation.feature_stats import ColumnsBeyondBound

    customers = [b.customers_train for b in raw]
    with_customers = all(c is not None for c in customers)
    noised = config.private and config.unit == "record"
    try:
        return secure_feature_statistics(
            [b.x_train for b in raw],
            bound=config.stats_bound,
            # without DP in the run the sums are still secure-aggregated, just not noised
            noise_multiplier=config.stats_noise_multiplier if noised else 0.0,
            rows_per_unit=config.max_rows_per_customer if with_customers else 1,
            corrupt_fraction=config.corrupt_fraction,
            backend=config.backend,
            replay_seed=_replay_bytes(config, "feature-statistics"),
            customers=customers if with_customers else None,
            feature_names=names,
        )
    except ColumnsBeyondBound as exc:
        raise ConfigurationError(_beyond_the_bound(config, exc, names)) from None


def _beyond_the_bound(config: SimulationConfig, exc: Any, names: tuple[str, ...]) -> str:
    """Columns the statistics' bound would clip mostly, in one line naming them, the
    shares and what to do, in the user's keys (see ``feature_stats``: every branch checks
    its own rows before it contributes; the driver plays them all, before any round)."""
    from secagg.apps.models.tabular import CREDITCARD_COLUMNS

    b = f"±{config.stats_bound:g}"
    layout = ""
    if config.source == "csv" and set(CREDITCARD_COLUMNS) <= {*names, config.label}:
        layout = (
            f"; this file has the credit-card layout: {key('source', 'creditcard')} reads it "
            "with Time and Amount scaled"
        )
    return (
        f"the secure feature statistics clip every value to {b} ({key('stats_bound')}), "
        f"and a branch contributes no column it would clip more than "
        f"{100 * exc.limit:.0f} % of: {exc.described()}: the statistics would describe the "
        "bound, not the column, and the model would train on garbage. Scale "
        f"{'it' if len(exc.columns) == 1 else 'them'} so that most values lie within {b} "
        f"(a time in days, log1p of an amount), or in a --config file raise "
        f"{key('stats_bound')} (the statistics' noise grows with it) or give public "
        f"statistics ({key('standardize', 'public')} with {key('stats_path')}){layout}"
    )


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


#: the copies of a loaded file's float32 table a whole ``secagg simulate`` run holds at
#: its peak, which the loader refuses a file too large for memory against (its own, 2,
#: covered the table alone). Measured (memory audit, 2026-12-04: the peak RSS of a run on
#: 1 000 000 rows x 20 features, 77 MiB of table, 3 branches, one round, less that of
#: the same run on 3 000 rows): 3.0-3.3 tables (the centralized baseline's pooled rows
#: beside the branches' and its training split; the data stage, once 4.0, is 3.2 since
#: the standardisation goes a branch and a slice at a time), rounded up for the
#: allocator's slack, which varies between runs
SIMULATION_PEAK: Final = MemoryPeak(4, "in a simulation")


def _require_file(config: SimulationConfig, name: str) -> None:
    """The file the path field ``name`` names is there and is a file, or a
    :class:`ConfigurationError` naming the field as the user set it (``--path``,
    ``data.stats_path``). Why: the readers said "no CSV file at X" or "X: cannot read
    the feature statistics: [Errno 21] Is a directory", naming no flag or key (CLI
    audit of 2026-12-05); what the file holds is still the reader's to judge."""
    path = Path(getattr(config, name))
    if not path.exists():
        raise ConfigurationError(f"{key(name)} {path}: no such file")
    if path.is_dir():
        raise ConfigurationError(f"{key(name)} {path} is a directory, not a file")


def _raw_branches(config: SimulationConfig) -> tuple[list[BranchData], tuple[str, ...]]:
    """The branches' rows before standardisation, and the feature names."""
    if config.source == "synthetic":
        from secagg.apps.models.synthetic import FEATURE_NAMES

        raw = generate_branches(
            config.branches,
            seed=config.seed,
            total_train_rows=config.train_rows,
            test_rows_per_branch=config.test_rows_per_branch,
            **_world(config),
        )
        return [_capped(config, b) for b in raw], tuple(FEATURE_NAMES)
    from secagg.apps.models.tabular import (
        branch_minimums,
        customer_groups,
        load_creditcard_csv,
        load_labelled_csv,
        partition,
        train_test_split,
    )

    assert config.path is not None
    _require_file(config, "path")
    if config.source == "creditcard":
        table = load_creditcard_csv(config.path, config.customer_column, peak=SIMULATION_PEAK)
    else:
        assert config.label is not None
        table = load_labelled_csv(
            config.path, config.label, config.customer_column, peak=SIMULATION_PEAK
        )
    # the column a feature skew uses (refused now, before any split, if it is none)
    column = partition_column_index(config, table.feature_names)
    # the unit partitioned and split is the customer when the file names one (all of a
    # customer's rows in one branch and on one side of the split), else the row
    if table.customers is not None:
        ids, owner = customer_groups(table.customers)
        unit_labels = np.zeros(ids.size, dtype=np.int8)
        np.maximum.at(unit_labels, owner, table.y)
        unit_feature = np.bincount(owner, weights=table.x[:, column]) / np.bincount(owner)
        rows_of = np.argsort(owner, kind="stable")
        starts = np.searchsorted(owner[rows_of], np.arange(ids.size + 1))

        def rows(units: np.ndarray) -> np.ndarray:
            return np.sort(np.concatenate([rows_of[starts[u] : starts[u + 1]] for u in units]))
    else:
        unit_labels, unit_feature = table.y, table.x[:, column]

        def rows(units: np.ndarray) -> np.ndarray:
            return units

    _check_fraud_share(config, table.y)
    if not table.y.any():  # before the split, which would only say it cannot share none
        check_branch_data(config, [("all", int(table.y.size), 0, 0)])
    # never a degenerate branch: each gets a quarter of an equal share of the units at
    # least, and 2 training and 2 test frauds (or the split is refused, saying why)
    unit = "customer" if table.customers is not None else "row"
    least = branch_minimums(unit_labels.size, int(unit_labels.sum()), config.branches, unit=unit)
    parts = partition(
        unit_labels,
        config.branches,
        kind=config.partition,
        alpha=config.alpha,
        seed=config.seed,
        feature=unit_feature if config.partition == "feature" else None,
        min_rows=least.min_rows,
        min_positives=least.min_positives,
        unit=unit,
    )
    branches = []
    for b, units in enumerate(parts):
        name = f"branch-{b + 1:02d}"
        split = train_test_split(
            units,
            0.3,
            config.seed + b,
            labels=unit_labels[units],
            min_train_positives=least.min_train_positives,
            min_test_positives=least.min_test_positives,
            unit=unit,
        )
        train, test = (rows(u) for u in split)
        if table.customers is not None:
            from secagg.dp.user_level import keep_customer_rows

            # at most max_rows_per_customer rows each, chosen as the branch's DP-SGD
            # grouping would (same seed), so the statistics and DP-SGD see these rows
            train = train[
                keep_customer_rows(
                    table.customers[train],
                    max_rows=config.max_rows_per_customer,
                    seed=_replay_bytes(config, "customer-rows", name),
                )
            ]
        branches.append(
            BranchData(
                name=name,
                x_train=table.x[train],
                y_train=table.y[train],
                x_test=table.x[test],
                y_test=table.y[test],
                fraud_rate=float(table.y[np.r_[train, test]].mean()),
                customers_train=None if table.customers is None else table.customers[train],
                customers_test=None if table.customers is None else table.customers[test],
            )
        )
    return branches, table.feature_names


def _check_fraud_share(config: SimulationConfig, labels: np.ndarray) -> None:
    """Refuse a file whose label is 1 on more than ``max_fraud_share`` of its rows
    (:data:`~secagg.apps.simulation.config.MAX_FRAUD_SHARE` by default), naming the
    column, the counts and the key. Why: a label inverted (1 = legitimate) trained and
    printed the majority's base rate as a fraud model's AUPRC; the share is the rows',
    before any split, so the refusal comes before any training."""
    from secagg.apps.simulation.config import MAX_FRAUD_SHARE

    limit = MAX_FRAUD_SHARE if config.max_fraud_share is None else config.max_fraud_share
    frauds, rows = int(np.count_nonzero(labels)), int(labels.size)
    if not rows or frauds <= limit * rows:
        return
    label = config.label if config.source == "csv" else "Class"
    # floored to a tenth of a percent: never shown below a limit it exceeds by less
    share = math.floor(1000 * frauds / rows) / 10
    raise ConfigurationError(
        f"{config.path}: {frauds} of {rows} rows ({share:.1f} %) have {label!r} = 1 (fraud), "
        f"above {key('max_fraud_share')} = {limit:g}: fraud is the rare class, so the label "
        "is most likely inverted (1 must mean fraud, 0 legitimate); if fraud really is "
        f"this common in the file (an undersampled one), raise {key('max_fraud_share')}"
    )


def _capped(config: SimulationConfig, branch: BranchData) -> BranchData:
    """The branch's training rows with at most ``max_rows_per_customer`` per customer,
    chosen as its DP-SGD grouping would (same seed), so that the feature statistics and
    DP-SGD see these rows and a customer's weight in both is bounded."""
    if branch.customers_train is None:
        return branch
    from secagg.dp.user_level import keep_customer_rows

    keep = keep_customer_rows(
        branch.customers_train,
        max_rows=config.max_rows_per_customer,
        seed=_replay_bytes(config, "customer-rows", branch.name),
    )
    if keep.all():
        return branch
    return dataclasses.replace(
        branch,
        x_train=branch.x_train[keep],
        y_train=branch.y_train[keep],
        customers_train=branch.customers_train[keep],
    )


def _derived_seed(config: SimulationConfig, *parts: object) -> int:
    label = "/".join(str(p) for p in ("secagg/v1/simulation", config.seed, *parts))
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:7], "big")


def _replay_bytes(config: SimulationConfig, *parts: object) -> bytes:
    return _derived_seed(config, *parts).to_bytes(8, "big")


# --- one branch's training --------------------------------------------------------


def _runs_dpsgd(config: SimulationConfig) -> bool:
    """Record-level (customer-level) DP by DP-SGD inside each branch."""
    return not config.record_distributed and config.unit == "record" and config.private


def _dpsgd_data(config: SimulationConfig, data: BranchData) -> tuple[Any, Any, int]:
    """A branch's DP-SGD ``(dataset, loss, batch size)``: one Poisson-sampled item is a
    customer's rows when the data names customers, else one row."""
    from secagg.apps.models.nets import fraud_loss
    from secagg.apps.models.training import as_dataset

    dataset: Any
    loss: Any
    if data.customers_train is not None:
        from secagg.dp.user_level import CustomerLoss

        dataset = customer_dataset(config, data)
        loss = CustomerLoss(positive_weight=config.positive_weight)
    else:
        dataset = as_dataset(data.x_train, data.y_train)
        loss = fraud_loss(config.positive_weight)
    return dataset, loss, min(config.batch_size, len(dataset))


def _calibration_refused(
    config: SimulationConfig, data: BranchData, exc: ConfigurationError
) -> ConfigurationError:
    """``exc`` of a branch's DP-SGD calibration in the command's words: the accountant's
    ("epsilon=10000.0") named no flag. Any other ConfigurationError is ``exc`` itself."""
    text = str(exc)
    if config.epsilon is None or "cannot calibrate noise" not in text:
        return exc
    # a target the releases before training already spend, or that no noise reaches,
    # is too small (the advice was "choose a smaller target" for both)
    way = "larger" if ("nothing is left" in text or "unreachable" in text) else "smaller"
    return ConfigurationError(
        f"{key('epsilon', config.epsilon)}: {data.name}'s DP-SGD {text.rstrip('.')}; "
        f"choose a {way} target or give {key('noise_multiplier')} instead"
    )


def check_dpsgd_calibration(config: SimulationConfig, branches: list[BranchData]) -> None:
    """Calibrate every branch's DP-SGD noise for ``config.epsilon`` now, before the prior
    is fitted and any baseline trains, and refuse a target no noise meets as the
    trainers would (one line naming the flag or key).

    Why: the trainers calibrate when they are built, after the data, the prior fit and
    (for the federation's) the baselines: ``--epsilon 1e-6`` with the feature
    statistics charged was refused only after the prior's fit. The calibration is
    memoised, so the trainers built later get the same noise without a second search:
    the run's figures are unchanged.

    With a noise multiplier or a target, ``delta`` is checked against each branch's
    protected units here too, by the trainers' rule (below ``1 / n``: a larger one
    allows publishing a whole unit): ``--delta 0.999`` was refused by a trainer, after
    the prior's fit, in the DP engine's words naming no flag."""
    if not _runs_dpsgd(config):
        return
    from secagg.dp.dpsgd import calibrated_noise_multiplier

    for branch in branches:
        dataset, _, batch = _dpsgd_data(config, branch)
        n = len(dataset)
        if not config.delta < 1 / n:
            raise ConfigurationError(
                f"{key('delta', config.delta)} is not below 1 / n = {1 / n:.3g} for "
                f"{branch.name}'s n = {n} {config.protected}s: a larger delta allows "
                f"publishing a whole {config.protected}; choose a smaller one"
            )
        if config.epsilon is None:
            _check_noise_accountable(config, branch, n, batch)
            continue
        try:
            calibrated_noise_multiplier(
                dataset,
                target_epsilon=config.epsilon,
                epochs=config.epochs,
                batch_size=batch,
                delta=config.delta,
                prior_releases=branch.prior_releases,
            )
        except ConfigurationError as exc:
            raise _calibration_refused(config, branch, exc) from None


def _record_distributed_units(config: SimulationConfig, branches: list[BranchData]) -> int:
    """The protected units of all branches together: the dataset one customer (or
    transaction) of record-level distributed DP is protected in (the federation's
    public denominator, :func:`federation_config`'s ``units_total``)."""
    return sum(int(protected_units(config, b)[0].shape[0]) for b in branches)


def check_record_distributed_delta(config: SimulationConfig, branches: list[BranchData]) -> None:
    """Refuse a record-level distributed ``delta`` not below ``1 / N``, ``N`` the
    protected units of all branches (one line naming the flag or key, before any
    training): the rule DP-SGD's trainers apply per branch, for the dataset this
    mechanism protects a unit in, the union of the branches' (its noise is sized for
    one unit among all ``N``). ``1 / N`` is below every branch's ``1 / n``, so the
    local-only baseline, which protects a unit among its branch's ``n``, is held to it too.

    Why: ``--unit record --mechanism distributed --delta 0.5`` ran and printed
    "epsilon = 2.864 (customer-level, delta = 0.5)": a delta that allows publishing
    a whole customer's rows, no guarantee (simulate audit, 2026-12-05); DP-SGD refused
    it (:func:`check_dpsgd_calibration`), this mechanism asked only ``delta < 1``."""
    if not config.record_distributed:
        return
    n = _record_distributed_units(config, branches)
    if not config.delta < 1 / n:
        raise ConfigurationError(
            f"{key('delta', config.delta)} is not below 1 / n = {1 / n:.3g} for the "
            f"n = {n} {config.protected}s of all {len(branches)} branches (record-level "
            f"distributed DP protects one among them all): a larger delta allows "
            f"publishing a whole {config.protected}; choose a smaller one"
        )


def check_composed_delta(config: SimulationConfig, branches: list[BranchData]) -> None:
    """Refuse a prior's delta whose composition with this run's is no privacy guarantee
    for a record-level run: the composed delta (``prior_delta + delta``, basic
    composition) must be below ``1 / n`` of each branch's ``n`` protected units, the
    rule the DP-SGD trainers apply to ``delta`` alone (a larger one allows publishing a
    whole unit); for record-level distributed DP, below ``1 / N`` of all branches'
    ``N`` units, the dataset it protects a unit in (as
    :func:`check_record_distributed_delta`). One line naming the flag or key, before
    any training.

    Why: ``--prior-delta 0.9`` was accepted (only ``prior_delta + delta < 1`` was
    asked) and every epsilon was printed at delta = 0.90001: honest, and meaningless.
    The client level's rule (below ``1 / branches``) needs no data and is checked at
    load (:meth:`SimulationConfig._check_round_plan`)."""
    cost = config.prior_cost
    if cost is None or config.unit != "record" or cost[1] == 0:
        return
    composed = cost[1] + config.delta
    # record-level distributed DP protects a unit among all branches' (see
    # check_record_distributed_delta); DP-SGD one among its own branch's
    datasets = (
        [(f"all {len(branches)} branches'", _record_distributed_units(config, branches))]
        if config.record_distributed
        else [
            (
                f"{branch.name}'s",
                len(_dpsgd_data(config, branch)[0])
                if _runs_dpsgd(config)
                else int(protected_units(config, branch)[0].shape[0]),
            )
            for branch in branches
        ]
    )
    for whose, n in datasets:
        if not composed < 1 / n:
            named = (
                key("prior_delta", config.prior_delta)
                if config.prior_delta is not None
                else f"{key('prior_delta')} (by default {key('delta')})"
            )
            raise ConfigurationError(
                f"{named}: the composed delta ({key('prior_delta')} + {key('delta')}) = "
                f"{composed:g} is not "
                f"below 1 / n = {1 / n:.3g} for {whose} n = {n} "
                f"{config.protected}s: a larger delta allows publishing a whole "
                f"{config.protected}, no guarantee; choose a smaller one"
            )


def _check_noise_accountable(
    config: SimulationConfig, branch: BranchData, n: int, batch: int
) -> None:
    """Refuse ``noise_multiplier`` now if the trainers' accountant (PRV, what simulate's
    DP-SGD uses) could not state the epsilon of this branch's training, naming the flag
    and the smallest noise it can state.

    Why: a trainer checks it only when it trains (``DPSGDTrainer._check_accountable``):
    ``--noise-multiplier 0.01`` was refused during local-only training, after the prior's
    fit (40 s at the defaults), in the DP engine's words, which suggested
    ``accountant='rdp'`` (no setting of simulate). The check sizes PRV's privacy loss
    domain for the whole run's steps (the local-only fit's, and the federated trainer's
    after its last round: the same ``(z, q, steps)``), milliseconds, as the trainer's own
    check does first; the evaluation itself is left to the trainers."""
    from opacus.accountants.analysis.prv import (
        PoissonSubsampledGaussianPRV,
        compute_safe_domain_size,
    )

    from secagg.dp.accountants import _PRV_LOSS_LIMIT
    from secagg.dp.dpsgd import _batches, _prior_entries

    assert config.noise_multiplier is not None
    q = 1 / _batches(n, batch)
    steps = config.epochs * int(1 / q)
    prior = _prior_entries(branch.prior_releases)

    def domain(z: float) -> float:
        runs = [*prior, (z, q, steps)]
        return float(
            compute_safe_domain_size(
                prvs=[PoissonSubsampledGaussianPRV(rq, rz) for rz, rq, _ in runs],
                max_self_compositions=[k for _, _, k in runs],
                eps_error=0.01,  # opacus_epsilon's (get_epsilon's defaults)
                delta_error=config.delta / 1000,
            )
        )

    if domain(config.noise_multiplier) < _PRV_LOSS_LIMIT:
        return
    low, high = config.noise_multiplier, max(1.0, 2 * config.noise_multiplier)
    cap = REAL_CAPS["noise_multiplier"]
    while not domain(high) < _PRV_LOSS_LIMIT:  # more noise: a smaller domain
        if high >= cap:
            raise ConfigurationError(
                f"{key('noise_multiplier', config.noise_multiplier)}: no noise up to "
                f"{cap:g} lets the accountant state the epsilon of {branch.name}'s "
                f"{steps} DP-SGD steps (q = {q:.3g}): train fewer epochs"
            )
        low, high = high, min(2 * high, cap)
    for _ in range(40):  # the smallest accountable z, rounded up (never flattering)
        mid = (low + high) / 2
        low, high = (low, mid) if domain(mid) < _PRV_LOSS_LIMIT else (mid, high)
        if high - low <= 1e-3 * high:
            break
    scale = 10.0 ** (math.floor(math.log10(high)) - 1)
    least = float(f"{math.ceil(high / scale) * scale:.2g}")  # two digits, rounded up
    raise ConfigurationError(
        f"{key('noise_multiplier', config.noise_multiplier)} is too little noise for the "
        f"accountant to state the epsilon of {branch.name}'s {steps} DP-SGD steps "
        f"(q = {q:.3g}): give at least {least:g} (at most {cap:g})"
    )


class BranchTrainer:
    """A branch's model and local training (DP-SGD for record-level DP, else plain SGD)."""

    def __init__(
        self,
        config: SimulationConfig,
        data: BranchData,
        role: str,
        prior: np.ndarray | None = None,
    ) -> None:
        import torch  # noqa: F401  (the models need it; fail early with a clear import)

        from secagg.apps.models.nets import fraud_loss

        self.config = config
        self.data = data
        self.role = role
        self.model = starting_model(config, data.x_train.shape[1], prior)
        self._loss = fraud_loss(config.positive_weight)
        self._trained_epochs = 0
        self.dpsgd = None
        self.dpsgd_batch_size: int | None = None
        self.customers: Any = None  # the CustomerDataset of user-level DP-SGD
        #: record-level distributed DP: the protected units' (inputs, targets) tensors
        self.units: tuple[Any, Any] | None = None
        self._local_epsilon: float | None = None
        if config.record_distributed:
            self.units = protected_units(config, data)
            #: the public denominator: its own units alone (local-only); a federation
            #: sets every branch's units, so the scaled sums add up to the mean gradient
            self.units_total = int(self.units[0].shape[0])
        elif _runs_dpsgd(config):
            from secagg.dp.dpsgd import DPSGDTrainer

            dataset, loss, batch = _dpsgd_data(config, data)
            if data.customers_train is not None:
                self.customers = dataset
            else:
                loss = self._loss
            self.dpsgd_batch_size = batch  # the expected batch of Poisson sampling (report)
            privacy: dict[str, Any] = (
                {"target_epsilon": config.epsilon, "epochs": config.epochs}
                if config.epsilon is not None
                else {"noise_multiplier": config.noise_multiplier}
            )
            try:
                self.dpsgd = DPSGDTrainer(
                    self.model,
                    dataset,
                    batch_size=batch,
                    learning_rate=config.learning_rate,
                    max_grad_norm=config.dp_clip,
                    delta=config.delta,
                    loss_fn=loss,
                    replay_seed=_replay_bytes(config, role, data.name),
                    prior_releases=data.prior_releases,
                    **privacy,
                )
            except ConfigurationError as exc:
                raise _calibration_refused(config, data, exc) from None

    def flat(self) -> np.ndarray:
        """The trained parameters (all, or the head): what the federation exchanges."""
        return trainable_vector(self.model)

    def load(self, vector: np.ndarray) -> None:
        load_trainable(self.model, vector)

    def gradient_step(self) -> np.ndarray:
        """Record-level distributed DP: minus this branch's clipped per-customer gradient
        sum over the public denominator (the federation adds the noise shares)."""
        from secagg.apps.models.nets import fraud_loss
        from secagg.dp.gradient_sum import clipped_gradient_sum
        from secagg.dp.user_level import CustomerLoss

        assert self.units is not None
        loss: Any = (
            CustomerLoss(positive_weight=self.config.positive_weight)
            if self.data.customers_train is not None
            else fraud_loss(self.config.positive_weight)
        )
        total = clipped_gradient_sum(
            self.model, self.units[0], self.units[1], loss, clip=self.config.dp_clip
        )
        return -total / self.units_total

    def train_alone(self) -> None:
        """Local-only under record-level distributed DP: the same gradient descent
        (``rounds`` steps, the server's learning rate and momentum) with nobody to share
        the noise, so the branch adds all of it: the Gaussian noise multiplier that meets
        epsilon over ``rounds`` full-batch steps (no sampling), from the OS CSPRNG or the
        run's replay seed."""
        from secagg.crypto.stream import KeyedStream, derive
        from secagg.dp.accounting import epsilon as gaussian_epsilon
        from secagg.dp.accounting import noise_multiplier_for
        from secagg.dp.noise import gaussian

        config = self.config
        z = config.noise_multiplier
        if z is None:
            assert config.epsilon is not None
            z = noise_multiplier_for(config.epsilon, config.delta, 1.0, config.rounds)
        stream = KeyedStream(derive("local-noise", _replay_bytes(config, self.data.name)))
        sensitivity = config.dp_clip / self.units_total
        velocity = np.zeros(self.flat().size)
        for _ in range(config.rounds):
            start = self.flat().astype(np.float64)
            try:
                step = self.gradient_step()
            except FloatingPointError:
                break  # diverged: stays as it is (scored as diverged if not finite)
            step += gaussian(z * sensitivity, step.size, stream)
            velocity = config.server_momentum * velocity + step
            self.load((start + config.server_learning_rate * velocity).astype(np.float32))
        self._local_epsilon = gaussian_epsilon(z, 1.0, config.rounds, config.delta)

    def train(self, epochs: int) -> None:
        if self.units is not None:
            self.train_alone()
        elif self.dpsgd is not None:
            self.dpsgd.train(epochs)
        else:
            from secagg.apps.models.training import train_plain

            train_plain(
                self.model,
                self.data.x_train,
                self.data.y_train,
                epochs=epochs,
                batch_size=min(self.config.batch_size, self.data.num_train),
                learning_rate=self.config.learning_rate,
                loss_fn=self._loss,
                seed=_derived_seed(self.config, self.role, self.data.name, self._trained_epochs),
            )
        self._trained_epochs += epochs

    def epsilon(self) -> float | None:
        """Record-level epsilon this branch accounted itself (None without record-level
        DP, or when the server accounts it: record-level distributed DP in a federation)."""
        if self.units is not None:
            return self._local_epsilon
        return None if self.dpsgd is None else float(self.dpsgd.epsilon())

    def privacy_report(self) -> dict[str, Any]:
        """The DP-SGD report for the ledger, naming what one protected unit is here: a
        transaction row when the data has no customer column (the trainer only knows
        "record")."""
        assert self.dpsgd is not None
        report = self.dpsgd.privacy_report()
        if report.get("unit") == "record":
            report["unit"] = self.config.protected
        return report

    def update_hook(self) -> Callable[[np.ndarray], np.ndarray]:
        """The federation client's training hook: global model in, clipped update out."""
        from secagg.dp.clipping import clip_l2

        def hook(global_model: np.ndarray) -> np.ndarray:
            start = global_model.astype(np.float32)
            self.load(start)
            if self.units is not None:  # one step of DP gradient descent, noised in the sum
                try:
                    return self.gradient_step()
                except FloatingPointError:
                    log.warning("%s: the gradient is not finite; a zero update", self.data.name)
                    return np.zeros(start.size)
            self.train(self.config.local_epochs)
            update = self.flat().astype(np.float64) - start.astype(np.float64)
            if not np.all(np.isfinite(update)):  # diverged (a noisy global model can do it)
                log.warning(
                    "%s: local training diverged; it contributes a zero update", self.data.name
                )
                self.load(start)
                return np.zeros_like(update)
            if self.config.unit == "client" and self.config.private:
                return update  # the client runtime clips to dp.clip (client-level DP)
            return clip_l2(update, self.config.update_clip).vector  # the ring's bound

        return hook


def protected_units(config: SimulationConfig, data: BranchData) -> tuple[Any, Any]:
    """A branch's protected units as (inputs, targets) tensors: each customer's rows
    (up to ``max_rows_per_customer``, the same choice as user-level DP-SGD), or each
    row when the data has no customer column."""
    import torch

    if data.customers_train is None:
        return (
            torch.as_tensor(data.x_train, dtype=torch.float32),
            torch.as_tensor(data.y_train, dtype=torch.float32).reshape(-1, 1),
        )
    return customer_dataset(config, data).tensors


def customer_dataset(config: SimulationConfig, data: BranchData) -> Any:
    """The branch's rows grouped per customer (at most ``max_rows_per_customer`` each,
    chosen from the run's seed): one item of user-level DP, whichever mechanism."""
    from secagg.dp.user_level import group_by_customer

    return group_by_customer(
        data.x_train,
        data.y_train,
        data.customers_train,
        max_rows=config.max_rows_per_customer,
        seed=_replay_bytes(config, "customer-rows", data.name),
    )


def starting_model(config: SimulationConfig, features: int, prior: np.ndarray | None) -> Any:
    """The model every party starts from: the seeded initialisation, then the prior's
    parameters if there is one, with only ``config.trains`` left trainable."""
    from secagg.apps.models.nets import build_model, set_trainable
    from secagg.dp.dpsgd import load_flat_parameters

    model = build_model(config.model, features, seed=config.seed)
    if prior is not None:
        load_flat_parameters(model, np.asarray(prior, dtype=np.float32))
    return set_trainable(model, config.trains)


def trainable_vector(model: Any) -> np.ndarray:
    """The trainable entries of the model's flat parameter vector (float32)."""
    from secagg.apps.models.nets import trainable_mask
    from secagg.dp.dpsgd import flat_parameters

    return flat_parameters(model)[trainable_mask(model).numpy()]


def load_trainable(model: Any, vector: np.ndarray) -> None:
    """Write ``vector`` into the model's trainable entries; the frozen ones stay."""
    from secagg.apps.models.nets import trainable_mask
    from secagg.dp.dpsgd import flat_parameters, load_flat_parameters

    full = flat_parameters(model)
    full[trainable_mask(model).numpy()] = np.asarray(vector, dtype=np.float32)
    load_flat_parameters(model, full)


def evaluate(model: Any, branches: list[BranchData]) -> dict[str, Any]:
    """Metrics on every branch's test set and on all of them pooled."""
    from secagg.apps.models.training import scores

    return scored({b.name: scores(model, b.x_test) for b in branches}, branches)


def scored(test_scores: dict[str, np.ndarray], branches: list[BranchData]) -> dict[str, Any]:
    """Metrics of given test scores per branch and pooled (every row scored by the model
    of its setting; local-only: by its own branch's model). ``_scores`` keeps the raw
    scores for the branch comparisons; it is not written out."""
    per_branch = {}
    for branch in branches:
        per_branch[branch.name] = fraud_metrics(
            branch.y_test, test_scores[branch.name], branch.amount_test
        ).as_dict()
    amounts = [b.amount_test for b in branches]
    pooled = fraud_metrics(
        np.concatenate([b.y_test for b in branches]),
        np.concatenate([test_scores[b.name] for b in branches]),
        None if any(a is None for a in amounts) else np.concatenate(amounts),  # type: ignore[arg-type]
    ).as_dict()
    auprcs = [m["auprc"] for m in per_branch.values() if not math.isnan(m["auprc"])]
    # a branch without a test fraud has no AUPRC and is left out of the mean; a branch
    # whose model diverged leaves it undefined: the mean of the others read as all of
    # theirs (local-only "diverged" in every pooled column beside a branch mean of 0.006)
    if any(m.get("diverged") for m in per_branch.values()):
        auprcs = []
    return {
        "pooled": pooled,
        "diverged": pooled["diverged"],
        "branches": per_branch,
        "mean_branch_auprc": float(np.mean(auprcs)) if auprcs else math.nan,
        "_scores": test_scores,
    }


#: a branch test set with fewer independent fraud draws (frauds, or the cards holding
#: them when the intervals resample cards) is flagged: its AUPRC interval is too wide to
#: say much (the review measured a bootstrap standard error of 0.04-0.09 at 22-69)
ENOUGH_TEST_FRAUDS = 20


def branch_verdicts(
    config: SimulationConfig,
    branches: list[BranchData],
    federated: dict[str, Any],
    local: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Per branch: is the federated model at least as good as the branch's local-only
    model? Decided by a 95 % paired, stratified bootstrap interval of the AUPRC
    difference (federated - local) on the branch's test set: "at least local" when the
    interval reaches 0 or above. The bootstrap resamples the branch's *cards* when the
    data names them (synthetic data, a table with a customer column): a compromised
    card's burst of frauds is one draw, not several, and resampling its rows one by one
    gave intervals too narrow (docs/results.md). A single-run comparison of two AUPRCs
    is mostly noise at 20-70 test frauds; a branch with fewer than
    :data:`ENOUGH_TEST_FRAUDS` is flagged, not dropped."""
    from secagg.apps.models.metrics import paired_difference_interval

    out = {}
    for branch in branches:
        frauds = int(branch.y_test.sum())
        fraud_cards = (
            None
            if branch.customers_test is None
            else int(np.unique(branch.customers_test[branch.y_test == 1]).size)
        )
        fed_s, local_s = federated["_scores"][branch.name], local["_scores"][branch.name]
        finite = bool(np.isfinite(fed_s).all() and np.isfinite(local_s).all())
        interval = (
            paired_difference_interval(
                branch.y_test,
                fed_s,
                local_s,
                metric="auprc",
                resamples=1000,
                level=0.95,
                seed=_derived_seed(config, "verdict", branch.name),
                clusters=branch.customers_test,
            )
            if frauds >= 2 and finite
            else None
        )
        if interval is not None and math.isnan(interval.high):
            interval = None  # every test fraud on one card: nothing to resample
        judged = interval is not None
        out[branch.name] = {
            "test_frauds": frauds,
            "test_fraud_cards": fraud_cards,
            "enough_frauds": (frauds if fraud_cards is None else fraud_cards) >= ENOUGH_TEST_FRAUDS,
            "judged": judged,
            "difference": None if interval is None else interval.estimate,
            "low": None if interval is None else interval.low,
            "high": None if interval is None else interval.high,
            "at_least_local": bool(interval is not None and interval.high >= 0),
            "better": bool(interval is not None and interval.low > 0),
            "resampled": "row" if branch.customers_test is None else "card",
        }
    return out


#: the federation's stable estimate: the mean of its last rounds' metrics
LAST_ROUNDS = 3


def last_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Pooled AUPRC and branch-mean AUPRC averaged over the last :data:`LAST_ROUNDS`
    completed rounds: the final round alone wobbles by 0.03-0.05 from round to round."""
    done = [r for r in rounds if r["status"] == "complete"][-LAST_ROUNDS:]
    if not done:
        return None
    return {
        "rounds": [r["round"] for r in done],
        "auprc": float(np.mean([r["pooled"]["auprc"] for r in done])),
        "mean_branch_auprc": float(np.mean([r["mean_branch_auprc"] for r in done])),
    }


# --- the run ------------------------------------------------------------------------


@dataclass
class SimulationResult:
    """Everything the run folder holds, in memory."""

    config: SimulationConfig
    branches: list[dict[str, Any]]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    final_model: np.ndarray | None = None
    dropouts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: why the server stopped before the planned rounds (the epsilon budget, too many
    #: attempts or aborts, no quorum), if it did
    stopped: str | None = None
    #: where the feature standardisation came from and what it cost (None: not standardised)
    feature_statistics: dict[str, Any] | None = None
    #: every privacy parameter of the federated run (see :func:`privacy_parameters`)
    privacy: dict[str, Any] = field(default_factory=dict)
    #: what the reader should know about the data (a branch without fraud in its test set)
    notes: list[str] = field(default_factory=list)
    #: branch -> federated against local-only (see :func:`branch_verdicts`)
    branch_verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)


class FederationRun(NamedTuple):
    """What :func:`run_federation` returns."""

    rounds: list[dict[str, Any]]
    model: np.ndarray
    dropouts: list[dict[str, Any]]
    trainers: dict[str, BranchTrainer]
    #: the server's reason for stopping before the planned rounds (``dp.epsilon_budget``
    #: reached, ``max_attempts``, aborts in a row, no quorum), else None
    stopped: str | None
    #: the server's client-level DP settings (``[dp]`` of its config), None without them
    server_dp: Any = None
    #: the distributed DP accountant's honest noise shares of each released round
    noise_shares: list[int] | None = None


def _client_level_noise(config: SimulationConfig, sample_rate: float | None = None) -> float:
    """The client-level noise multiplier: ``noise_multiplier``, or the smallest that meets
    the epsilon target. The central mechanism charges each branch for the rounds it was
    in and claims the most charged branch's epsilon, so with sampling the noise is sized
    for the rounds the most sampled branch likely takes part in
    (:func:`~secagg.dp.accounting.federation_noise_multiplier`; a branch sampled more
    often sits out once its next round would cross the target, the run's budget). The
    distributed mechanism passes ``sample_rate`` 1: every round counts for everyone."""
    if config.noise_multiplier is not None:
        return config.noise_multiplier
    from secagg.dp.accounting import federation_noise_multiplier

    assert config.epsilon is not None
    q = config.sample_rate if sample_rate is None else sample_rate
    return federation_noise_multiplier(
        config.epsilon, config.delta, q, config.rounds, config.branches
    )


def expected_cohort(config: SimulationConfig) -> int:
    """The expected branches of a round, q * N rounded: the public denominator the
    distributed mechanism sizes each branch's noise share by (as the runtime does)."""
    return max(1, round(config.sample_rate * config.branches))


def honest_shares(config: SimulationConfig) -> int:
    """The noise shares the distributed mechanism counts on in a round
    (:func:`secagg.dp.distributed.planned_honest_shares` of the expected cohort, the
    assumed colluders and the tolerated dropouts). Each branch's share is sized so that
    these alone carry the whole noise; every further share is noise beyond the target."""
    from secagg.dp.distributed import planned_honest_shares

    return planned_honest_shares(
        expected_cohort(config),
        config.corrupt_fraction,
        config.tolerated_dropout,
        population=config.branches,
    )


def _distributed_noise(
    config: SimulationConfig, dimension: int, record_clip: float | None = None
) -> float:
    """The noise multiplier of the distributed DG: the Gaussian one, raised in 2 % steps
    until the DDG's own epsilon meets the target, counting discreteness, rounding
    and only the noise shares of branches that neither collude nor drop out (within
    the tolerated fractions; a round with more dropouts spends more, and says so).

    With client sampling (``sample_rate`` q < 1) the shares are sized for the expected
    cohort q * N, and no amplification by sampling is counted: the server that draws
    the cohort is the party the distributed mechanism does not trust (see
    ``secagg.dp.release.DistributedRelease``). So q < 1 only thins the cohort, and a
    round's honest shares are counted from q * N; a cohort that comes out smaller
    than the tolerated dropout allows spends more, and the server's budget stops the
    run before it crosses the target."""
    from secagg.dp.distributed import calibrate_noise_multiplier

    if config.noise_multiplier is not None:
        return config.noise_multiplier
    assert config.epsilon is not None
    # no ``start``: the calibration finds the central Gaussian's noise at sample rate 1
    # (what _client_level_noise(config, sample_rate=1.0) gave) itself, and an unreachable
    # budget then says this mechanism's own epsilon, not the central Gaussian's (and no
    # "lower sample_rate", which this mechanism never credits)
    return calibrate_noise_multiplier(
        epsilon=config.epsilon,
        delta=config.delta,
        rounds=config.rounds,
        dimension=dimension,
        clip=config.dp_clip if record_clip is None else record_clip,
        expected_clients=expected_cohort(config),
        honest_shares=honest_shares(config),
        vector_bound=0.0 if record_clip is None else config.dp_clip,
    )


def federation_config(
    config: SimulationConfig, dimension: int, state: Path, units_total: int = 1
) -> Any:
    """The :class:`FederationConfig` the simulation's server runs. ``units_total``: the
    protected units of all branches (record-level distributed DP's public denominator)."""
    from secagg.dp.config import DPSettings
    from secagg.runtime.config import (
        BackendConfig,
        DeadlineConfig,
        FederationConfig,
        SamplingConfig,
        ServerSettings,
    )

    names = tuple(f"branch-{b + 1:02d}" for b in range(config.branches))
    client_dp = config.unit == "client" and config.private
    bound = config.dp_clip if client_dp else config.update_clip
    if client_dp:
        noise = (
            _distributed_noise(config, dimension)
            if config.mechanism == "distributed"
            else _client_level_noise(config)
        )
        dp = DPSettings(
            unit="client",
            mechanism=config.mechanism,
            clip=config.dp_clip,
            noise_multiplier=noise,
            delta=config.delta,
            # a target epsilon is a hard cap: the server stops before a round crosses it
            epsilon_budget=config.epsilon,
        )
    elif config.record_distributed:
        # a branch's vector is its customers' clipped gradients over all branches'
        # customers: at most dp_clip in norm, and one customer moves it by dp_clip / N
        record_clip = config.dp_clip / units_total
        bound = config.dp_clip
        dp = DPSettings(
            unit="record",
            mechanism="distributed",
            clip=config.dp_clip,
            record_clip=record_clip,
            record_unit=config.protected,  # a transaction when the rows name no customer
            noise_multiplier=_distributed_noise(config, dimension, record_clip),
            delta=config.delta,
            epsilon_budget=config.epsilon,
        )
    elif config.private:
        dp = DPSettings(
            unit="record", mechanism="dpsgd", clip=config.update_clip, delta=config.delta
        )
    else:
        dp = None
    return FederationConfig(
        name="simulation",
        clients=names,
        dimension=dimension,
        rounds=config.rounds,
        server_learning_rate=config.server_learning_rate,
        server_momentum=config.server_momentum,
        seed=config.seed,
        replay_noise=True,  # a simulation replays bit for bit; its ledger says so
        # each branch joins a round with probability q, drawn by the server (q = 1: all)
        sampling=SamplingConfig(kind="poisson", rate=config.sample_rate),
        backend=BackendConfig(
            name=config.backend,
            value_bound=bound,
            dropout_fraction=config.tolerated_dropout,
            corrupt_fraction=config.corrupt_fraction,
            key_holder=KEY_HOLDER if config.backend == "ckks" else None,
        ),
        dp=dp,
        # a branch still training is not a dropout; vanished branches are seen at once;
        # a branch whose protocol gave up (too few live neighbours) is silent: 10 s, and
        # 0.1 s more per expected branch, as every branch's thread shares the simulator's
        # cores (at 1 000 branches a masking phase took over 10 s and rounds aborted)
        deadlines=DeadlineConfig(
            phase_seconds=10.0 + 0.1 * expected_cohort(config),
            training_seconds=900.0,
            round_seconds=3600.0,
        ),
        # the simulated dropouts are drawn afresh each round: a branch that missed two
        # rounds is no more likely to miss the next, so none is left out (benched)
        server=ServerSettings(state=str(state), bench_after_missed_rounds=0),
    )


#: the tuned non-private fits (the prior, the centralized baseline): learning rates and
#: the most epochs tried, the epoch count chosen on a held-out fifth of the training rows
TUNING_LEARNING_RATES = (0.25, 1.0)
TUNING_MAX_EPOCHS = 12
TUNING_VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class TunedFit:
    """A non-private model fitted with its own tuning, and what the tuning chose."""

    model: Any  # the fitted torch module (every parameter trainable)
    vector: np.ndarray  # every parameter, flat
    start: str  # "scratch" or "prior"
    learning_rate: float
    epochs: int
    validation_auprc: float


def fit_tuned(
    config: SimulationConfig,
    x: np.ndarray,
    y: np.ndarray,
    starts: dict[str, np.ndarray | None],
    label: str,
) -> TunedFit:
    """Non-private training whose start, learning rate and epoch count are chosen on
    validation rows held out of ``x`` (never on a test set), then refitted on all rows.

    Why: the centralized baseline is the denominator of every claim; at one fixed
    learning rate (2, the federation's) it diverged on some seeds and small models, so
    it gets its own tuning, like any model a fraud team would deploy."""
    from secagg.apps.models.metrics import average_precision
    from secagg.apps.models.nets import build_model, fraud_loss, set_trainable
    from secagg.apps.models.training import scores, train_plain
    from secagg.dp.dpsgd import flat_parameters, load_flat_parameters

    rng = np.random.default_rng(_derived_seed(config, label, "validation"))
    held = rng.random(y.size) < TUNING_VALIDATION_SHARE
    if y[held].sum() == 0 or y[~held].sum() == 0:  # too few frauds to hold any out
        held = np.zeros(y.size, dtype=bool)
    epochs = min(TUNING_MAX_EPOCHS, config.epochs)

    def fresh(start: np.ndarray | None) -> Any:
        model = build_model(config.model, x.shape[1], seed=config.seed)
        if start is not None:
            load_flat_parameters(model, np.asarray(start, dtype=np.float32))
        return set_trainable(model, "all")

    best = (-math.inf, "scratch", TUNING_LEARNING_RATES[0], epochs)
    if held.any():
        # the two sides of the split, made once: every start and learning rate trains on
        # the same rows and every epoch validates on the same rows (a boolean mask
        # copies: indexing per candidate and per epoch copied the held-out rows up to
        # 4 x 12 times a fit, and the training rows 4 times)
        x_fit, y_fit = x[~held], y[~held]
        x_held, y_held = x[held], y[held]
        for name, start in starts.items():
            for lr in TUNING_LEARNING_RATES:
                seen: list[float] = []

                def validate(epoch: int, model: Any, seen: list[float] = seen) -> None:
                    s = scores(model, x_held)
                    seen.append(average_precision(y_held, s) if np.isfinite(s).all() else -1)

                train_plain(
                    fresh(start),
                    x_fit,
                    y_fit,
                    epochs=epochs,
                    batch_size=config.batch_size,
                    learning_rate=lr,
                    loss_fn=fraud_loss(config.positive_weight),
                    seed=_derived_seed(config, label, name, lr),
                    after_epoch=validate,
                )
                top = int(np.argmax(seen))
                if seen[top] > best[0]:
                    best = (seen[top], name, lr, top + 1)
    score, name, lr, chosen_epochs = best
    model = fresh(starts.get(name))
    train_plain(
        model,
        x,
        y,
        epochs=chosen_epochs,
        batch_size=config.batch_size,
        learning_rate=lr,
        loss_fn=fraud_loss(config.positive_weight),
        seed=_derived_seed(config, label, name, lr, "final"),
    )
    return TunedFit(model, flat_parameters(model), name, lr, chosen_epochs, float(score))


def prior_model(config: SimulationConfig, stats: Any) -> TunedFit | np.ndarray | None:
    """The model training starts from; it costs none of the branches' privacy.

    ``file``: the vector in ``prior_path`` (numpy ``.npy``, read without pickle), e.g. an
    earlier federation's released model. ``public``: fitted without privacy on the
    synthetic generator's public reference world (another seed: other branch mixes,
    typology shares and profiles; no branch's rows), standardised with the run's own
    released statistics. ``none``: None."""
    source = config.prior_source
    if source == "none":
        return None
    if source == "file":
        return read_prior_file(config)
    reference = _public_reference(config)
    x = np.concatenate([b.x_train for b in reference])
    y = np.concatenate([b.y_train for b in reference])
    if stats is not None:
        x = stats.apply(x)
    return fit_tuned(config, x, y, {"scratch": None}, "public-prior")


def read_prior_file(config: SimulationConfig, features: int | None = None) -> np.ndarray:
    """The model vector in ``prior_path`` (``.npy``, read without pickle), checked: a
    file that is missing, not numpy, not a vector of real numbers, holds a NaN or an
    infinity, or (given the data's ``features``) is not of the size of this run's model
    is refused with one line naming ``prior_path``.

    Why: a string array was a ValueError traceback, a vector of another model's size
    said "expected a flat vector of 2081 parameters" naming no flag, and a vector with a
    NaN (a corrupted or diverged file) ran to the end, exit 0, from a random start
    (simulate audit, 2026-12-04). :func:`run_simulation` calls it before any data is
    generated, and again with the features once the data is loaded."""
    from secagg.apps.simulation.config import key

    assert config.prior_path is not None
    path, flag = config.prior_path, key("prior_path")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise ConfigurationError(f"no prior model at {path} ({flag})") from None
    except OSError as exc:
        raise ConfigurationError(f"{path} ({flag}) cannot be read: {exc.strerror}") from None
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        # numpy tries any other file as a pickle, and its refusal advised loading it
        # "unsafely" with allow_pickle or pickle.load (simulate audit, 2026-12-04)
        raise ConfigurationError(
            f"{path} ({flag}) is not a .npy file (numpy.save writes one; an earlier run's "
            "model.npy is one)"
        )
    try:
        vector = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigurationError(f"no prior model at {path} ({flag})") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():  # a .npy of dtype object
            raise ConfigurationError(
                f"{path} ({flag}) holds Python objects, not a float vector: a file is never "
                "unpickled here"
            ) from None
        detail = " ".join(str(exc).split())
        raise ConfigurationError(f"{path} ({flag}) is not a numpy model vector: {detail}") from None
    except (OSError, EOFError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigurationError(f"{path} ({flag}) is not a numpy model vector: {detail}") from None
    if not isinstance(vector, np.ndarray):  # an .npz archive
        raise ConfigurationError(f"{path} ({flag}) is not a numpy model vector: an archive")
    if vector.dtype.kind != "f" or vector.size == 0 or sum(n > 1 for n in vector.shape) > 1:
        raise ConfigurationError(
            f"{path} ({flag}) is not a numpy model vector: an array of {vector.dtype} and "
            f"shape {vector.shape}, not a flat float vector (an earlier run's model.npy is one)"
        )
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(flat)):
        raise ConfigurationError(
            f"{path} ({flag}) holds {int(np.sum(~np.isfinite(flat)))} NaN or infinite "
            "parameters: a corrupted or diverged model is no place to start"
        )
    if features is not None:
        from secagg.apps.models.nets import build_model

        model = build_model(config.model, features, seed=config.seed)
        size = sum(p.numel() for p in model.parameters())
        if flat.size != size:
            raise ConfigurationError(
                f"{path} ({flag}) holds {flat.size} parameters; the {config.model} model of "
                f"these {features} features has {size}: it is a model of other data or "
                f"another {key('model')}"
            )
    return flat


#: the public reference: this many synthetic worlds (other seeds: other bank networks,
#: typology mixes and profiles), each with a quarter of the run's training rows.
#: Diversity is what makes a prior transfer. Pooled out-of-time AUPRC of the prior alone
#: on the tuning seeds 1000 / 1001 / 1002 (centralized: 0.87 / 0.68 / 0.51): one world
#: of 120 000 rows 0.60 / 0.23 / -, six of 60 000 0.82 / 0.54 / 0.49, twelve of 30 000
#: 0.79 / 0.61 / 0.57 (the same rows in all, more worlds), twenty-four of 15 000
#: 0.83 / - / 0.50
PUBLIC_WORLDS = 12


@functools.lru_cache(maxsize=1)
def _public_reference(config: SimulationConfig) -> list[BranchData]:
    """The synthetic generator's public reference: :data:`PUBLIC_WORLDS` worlds drawn
    under other seeds, no branch's data (what a consortium's shared, consented or
    synthetic data stands for). Cached for the run: public statistics and the public
    prior both read it (read-only)."""
    return [
        branch
        for world in range(PUBLIC_WORLDS)
        for branch in generate_branches(
            config.branches,
            seed=_derived_seed(config, "public-reference", world),
            total_train_rows=max(100 * config.branches, config.train_rows // 4),
            test_rows_per_branch=100,
            **_world(config),
        )
    ]


def _world(config: SimulationConfig) -> dict[str, Any]:
    return {} if config.world == "standard" else {"world": config.world}


def _run_baselines(
    config: SimulationConfig,
    branches: list[BranchData],
    progress: Progress,
    prior: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = {}
    # local-only: each branch alone, same epochs and privacy as in the federation
    total = len(branches)
    done = 0
    lock = threading.Lock()
    local_models: dict[str, Any] = {}
    local_eps: dict[str, float | None] = {}

    # every branch's trainer first (DP-SGD calibrates its noise here): a target that
    # cannot be calibrated is refused before any branch trains, and the other branch's
    # calibration ends before the command's quiet context does (its numpy overflow
    # warnings were printed after the error). Each task runs in a copy of this
    # thread's context: its messages name the flags as the user typed them.
    def make(branch: BranchData) -> BranchTrainer:
        return BranchTrainer(config, branch, "local", prior)

    progress("local-only", 0, total, "")
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(contextvars.copy_context().run, make, b) for b in branches]
        trainers: dict[str, BranchTrainer] = {}
        for branch, future in zip(branches, futures, strict=True):
            try:
                trainers[branch.name] = future.result()
            except Exception:
                for other in futures:  # calibrations: seconds, not trainings
                    other.cancel()
                wait(futures)
                raise
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise

    def one(branch: BranchData) -> None:
        nonlocal done
        start = time.perf_counter()
        with lock:  # let go of it once trained: only its model is kept
            trainer = trainers.pop(branch.name)
        trainer.train(config.epochs)
        with lock:
            local_models[branch.name] = trainer.model
            local_eps[branch.name] = trainer.epsilon()
            done += 1
            progress("local-only", done, total, f"{branch.name} {time.perf_counter() - start:.1f}s")

    try:
        for future in [pool.submit(contextvars.copy_context().run, one, b) for b in branches]:
            future.result()
    except BaseException:
        # SIGTERM or Ctrl-C (or a branch's error): not ``with``, whose exit waits for the
        # trainings under way, two whole local fits, before the stop is handled (a
        # service manager's SIGKILL came first and no ABORTED marker was written)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    local = scored({b.name: _scores(local_models[b.name], b.x_test) for b in branches}, branches)
    eps = [e for e in local_eps.values() if e is not None]
    # every test set pooled, each row scored by its own branch's model: the same measure
    # as the federated and centralized rows' (a per-branch mean was compared with pooled
    # figures before); one diverged branch model leaves the pooled ranking undefined
    settings["local-only"] = {
        **local,
        "epsilon": max(eps) if eps else None,
        "epsilon_unit": config.protected if eps else None,
        "bytes_sent_per_branch_per_round": 0,
        "seconds_per_round": None,
    }
    with_prior_cost(config, settings["local-only"])  # each branch starts from the prior
    # centralized, non-private: the upper bound, with its own tuning (start, learning
    # rate, epochs chosen on held-out training rows)
    progress("centralized", 0, 1, "")
    start = time.perf_counter()
    x = np.concatenate([b.x_train for b in branches])
    y = np.concatenate([b.y_train for b in branches])
    starts: dict[str, np.ndarray | None] = {"scratch": None}
    if prior is not None:
        starts["prior"] = prior
    fit = fit_tuned(config, x, y, starts, "centralized")
    model = fit.model
    central = evaluate(model, branches)
    central.update(
        tuning={
            "start": fit.start,
            "learning_rate": fit.learning_rate,
            "epochs": fit.epochs,
            "validation_auprc": fit.validation_auprc,
        },
        epsilon=math.inf,
        epsilon_unit=None,
        bytes_sent_per_branch_per_round=None,
        seconds_per_round=None,
    )
    settings["centralized (non-private)"] = central
    progress("centralized", 1, 1, f"{time.perf_counter() - start:.1f}s")
    return settings


def _scores(model: Any, x: np.ndarray) -> np.ndarray:
    from secagg.apps.models.training import scores

    return scores(model, x)


def run_federation(
    config: SimulationConfig,
    branches: list[BranchData],
    state: Path,
    progress: Progress = _quiet,
    ledger_path: Path | None = None,
    prior: np.ndarray | None = None,
) -> FederationRun:
    """The federated rounds over the real runtime. With ``config.trains == "head"`` the
    federation's model is the prior's output layer: that is all the branches train, send
    and the server averages (the frozen body is the prior's, known to everyone).

    ``config.engine`` says where the branches run: ``inprocess`` (one thread each, here)
    or ``ray`` (in Ray actors, :mod:`secagg.runtime.ray_engine`: started here, or joined
    at ``config.ray_address``, and shut down or left at the end). Both play the same
    dropout schedule, so the same seed gives the same rounds."""
    phases = SINGLE_PHASE if config.backend in ("plain", "ckks") else MASKING_PHASES
    schedule = DropoutSchedule(config.dropout, config.seed, phases) if config.dropout else None
    if config.engine != "ray":
        network = SimulatedNetwork(schedule)
        return _federate(config, branches, state, network, progress, ledger_path, prior)
    from secagg.runtime.ray_engine import RayHub, ray_session

    session = ray_session(config.ray_address, source=ray_address_source(config))
    with session, RayHub(schedule, workers=config.ray_workers) as hub:
        return _federate(config, branches, state, hub, progress, ledger_path, prior)


def _federate(
    config: SimulationConfig,
    branches: list[BranchData],
    state: Path,
    network: SimulatedNetwork,
    progress: Progress,
    ledger_path: Path | None,
    prior: np.ndarray | None,
) -> FederationRun:
    """:func:`run_federation` over ``network``: a :class:`SimulatedNetwork` whose branches
    are threads here, or a :class:`~secagg.runtime.ray_engine.RayHub` whose branches are
    built (trainers included) and run in its client hosts."""
    from secagg.aggregation.policy import BranchPolicy
    from secagg.apps.simulation.hosted import HostedBranch, hosted_epsilons, hosted_trainers
    from secagg.runtime.client import FederationClient
    from secagg.runtime.launch import (
        build_server,
        key_holder_idle,
        key_holder_service,
        make_key_holder_key,
    )
    from secagg.runtime.ray_engine import RayHub
    from secagg.runtime.server import RoundResult

    hub = network if isinstance(network, RayHub) else None
    trainers: dict[str, Any]
    if hub is not None:  # the trainers are built in the Ray workers, not here
        trainers: dict[str, BranchTrainer] = {}
        units_total = (
            sum(int(protected_units(config, b)[0].shape[0]) for b in branches)
            if config.record_distributed
            else None
        )
        initial = trainable_vector(
            starting_model(config, branches[0].x_train.shape[1], prior)
        ).astype(np.float64)
    else:
        trainers = {b.name: BranchTrainer(config, b, "federated", prior) for b in branches}
        units_total = None
        if config.record_distributed:
            units_total = sum(int(t.units[0].shape[0]) for t in trainers.values() if t.units)
            for trainer in trainers.values():
                trainer.units_total = units_total
        initial = next(iter(trainers.values())).flat().astype(np.float64)
    fed = federation_config(config, initial.size, state, units_total or 1)
    helper_settings: dict[str, Any] = {}
    pin = None
    if fed.backend.key_holder is not None:  # made before round 1, pinned by every branch
        key_file = Path(f"{state}.key-holder.key")
        key_file.unlink(missing_ok=True)
        pin = make_key_holder_key(fed, key_file)
        helper_settings["key"] = str(key_file)
    # the simulated branches hold the policy a bank would give them for this federation
    own_noise: dict[str, Any] = {}
    if config.record_distributed and fed.dp is not None:
        # each branch checks the noise is sized for what one of its customers moves
        own_noise = {
            "min_noise_multiplier": fed.dp.noise_multiplier,
            "record_sensitivity": fed.dp.record_clip,
            "expected_clients": config.branches,
        }
    policy = BranchPolicy(
        allow_plain=config.backend == "plain",
        key_holder_fingerprint=pin,
        corrupt_fraction=fed.backend.corrupt_fraction,
        dropout_fraction=fed.backend.dropout_fraction,
        **own_noise,
    )
    threads = []
    if hub is not None:
        hub.start(
            {b.name: HostedBranch(config, b, prior, policy, units_total) for b in branches},
            rounds=config.rounds,
        )
    for b in () if hub is not None else branches:  # hosted branches run in their hosts
        dpsgd = trainers[b.name].dpsgd
        client = FederationClient(
            b.name,
            trainers[b.name].update_hook(),
            network.connect(b.name),
            policy=policy,
            replay_seed=_replay_bytes(config, "rounding", b.name),
            privacy_report=None if dpsgd is None else trainers[b.name].privacy_report,
        )
        thread = threading.Thread(
            target=client.run,
            kwargs={"idle_timeout": 1800.0, "rounds": config.rounds},
            name=f"client-{b.name}",
            daemon=True,
        )
        threads.append(thread)
    if fed.backend.key_holder is not None:
        holder = key_holder_service(fed, network.connect(fed.backend.key_holder), helper_settings)
        threads.append(
            threading.Thread(
                target=holder.run,
                # silent from its key request to the decryption: every branch's training
                # and encryption; 60 s flat let it leave a large CKKS round (review)
                kwargs={"idle_timeout": key_holder_idle(fed)},
                name="key-holder",
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()

    evaluator = starting_model(config, branches[0].x_train.shape[1], prior)
    rounds: list[dict[str, Any]] = []
    clock = {"start": time.perf_counter()}
    sent_before = {b.name: 0 for b in branches}
    received_before = {b.name: 0 for b in branches}

    def observe(result: RoundResult, model: np.ndarray) -> None:
        now = time.perf_counter()
        load_trainable(evaluator, model)
        metrics = evaluate(evaluator, branches)
        record_eps = (
            hosted_epsilons(hub, branches)
            if hub is not None
            else {name: t.epsilon() for name, t in trainers.items()}
        )
        sent = {n: network.bytes_sent[n] - sent_before[n] for n in sent_before}
        received = {n: network.bytes_received[n] - received_before[n] for n in received_before}
        sent_before.update({n: network.bytes_sent[n] for n in sent_before})
        received_before.update({n: network.bytes_received[n] for n in received_before})
        known_eps = [e for e in record_eps.values() if e is not None]
        # epsilon is cumulative: a round that released nothing (aborted) spent nothing
        # new, so it shows what was spent before it, never a blank
        spent_before = rounds[-1]["epsilon_this_run"] if rounds else None
        this_run = (
            result.epsilon
            if result.epsilon is not None
            else (max(known_eps) if known_eps else spent_before)
        )
        row = {
            "round": result.number,
            "status": result.status,
            "reason": result.reason,
            "contributed": list(result.contributed),
            "dropped": sorted(set(result.participants) - set(result.contributed)),
            "seconds": now - clock["start"],
            "pooled": metrics["pooled"],
            "mean_branch_auprc": metrics["mean_branch_auprc"],
            "branch_auprc": {n: m["auprc"] for n, m in metrics["branches"].items()},
            "branches": metrics["branches"],
            "epsilon_client_level": result.epsilon,
            "epsilon_record_level": record_eps,
            # the model released after this round starts from the prior: its epsilon
            # is the prior's and this run's composed; this run's alone (what the
            # ledger and the accountants above record) beside it
            "epsilon": composed_epsilon(config, this_run),
            "epsilon_this_run": this_run,
            "bytes_sent": sent,
            "bytes_received": received,
        }
        rounds.append(row)
        clock["start"] = time.perf_counter()
        eps = row["epsilon"]
        progress(
            "federated",
            len(rounds),
            config.rounds,
            # an aborted round leaves the model as it was: no AUPRC of its own to show
            f"round {result.number} {result.status}"
            + (f": AUPRC {metrics['pooled']['auprc']:.3f}" if result.status == "complete" else "")
            + (f", ε {shown(eps, 2)}" if eps is not None and math.isfinite(eps) else ""),
        )

    progress("federated", 0, config.rounds, "")
    ledger_path = ledger_path or state.with_name(state.stem + ".ledger.sqlite")
    # the simulation's ledger key is fresh: only its public half outlives the run
    server = build_server(
        fed,
        network,
        state,
        initial_model=initial,
        observer=observe,
        ledger_path=ledger_path,
        export_key_to=ledger_path.with_suffix(".pub.pem"),
    )
    server.run(
        wait_for_clients=60.0, max_consecutive_aborts=config.rounds, max_attempts=config.rounds
    )
    for thread in threads:
        thread.join(timeout=5.0)
    if hub is not None:  # what the report needs of each branch's trainer, from its host
        trainers = hosted_trainers(hub, branches)
    # in protocol order: two branches vanishing in one phase are logged in whichever
    # order their threads ran, and the same seed must write the same summary
    phases = network.schedule.phases if network.schedule is not None else ()
    rank = {phase: index for index, phase in enumerate(phases)}
    events = sorted(
        network.dropouts, key=lambda e: (e.round, rank.get(e.phase, len(rank)), e.branch)
    )
    dropouts = [{"round": e.round, "branch": e.branch, "phase": e.phase} for e in events]
    _name_aborted_rounds_dropouts(rounds, dropouts)
    # run() clears stop_reason once every planned round is complete
    stopped = server.budget_reached or server.stop_reason
    # the distributed mechanism's honest shares per released round, as its accountant
    # charged them (each round at the largest per-round bound of the distinct counts):
    # what the report's epsilon follows from
    shares = getattr(getattr(server.mechanism, "accountant", None), "honest_shares", None)
    return FederationRun(rounds, server.model.copy(), dropouts, trainers, stopped, fed.dp, shares)


def bytes_per_branch_taking_part(rounds: list[dict[str, Any]]) -> list[float]:
    """Per round, the bytes a branch that took part sent: branches the server did not
    sample (client sampling) send nothing, and averaging them in understated what a
    round costs a branch that is in it."""
    out = []
    for row in rounds:
        sent = [int(v) for v in row["bytes_sent"].values() if v > 0]
        out.append(sum(sent) / len(sent) if sent else 0.0)
    return out


def _name_aborted_rounds_dropouts(
    rounds: list[dict[str, Any]], dropouts: list[dict[str, Any]]
) -> None:
    """An aborted round contributed nothing, so "participants less contributors" named
    every branch as dropped; it names the branches that vanished in it instead (the
    complete list is known only once the federation has ended: a Ray host records a
    dropout after its round)."""
    vanished: dict[int, set[str]] = {}
    for event in dropouts:
        vanished.setdefault(int(event["round"]), set()).add(str(event["branch"]))
    for row in rounds:
        if row["status"] != "complete":
            row["dropped"] = sorted(vanished.get(int(row["round"]), set()))


#: in-process rounds of at least this many expected branches switch threads coarsely
MANY_THREADS = 100
#: the interpreter's thread switch interval then (Python's default: 0.005 s)
COARSE_SWITCH_SECONDS = 0.1


@contextmanager
def _coarse_thread_switching(config: SimulationConfig) -> Iterator[None]:
    """Within this block, with the in-process engine and a round of
    :data:`MANY_THREADS` branches or more, Python switches threads every
    :data:`COARSE_SWITCH_SECONDS` instead of every 5 ms; restored after.

    Why: each branch is a thread, and with 1 000 of them every release of the GIL (a
    numpy, torch or AES call) set off a storm of wake-ups: a round of the many world
    (examples/many_participants.toml, distributed DP) took 118-183 s, two thirds of
    its CPU time in the kernel; at 0.1 s it took 44 s, with the same results (the
    simulation's randomness comes from its seed, not from the thread schedule)."""
    if config.engine != "inprocess" or expected_cohort(config) < MANY_THREADS:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(COARSE_SWITCH_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _check_federation_plan(
    config: SimulationConfig, branches: list[BranchData], state: Path
) -> None:
    """Build the federation's configuration (which plans its round) from the real model
    size and protected units before the prior is fitted and any baseline trains: the
    load-time plan uses stand-ins, and a setting only the real ones refuse (record-level
    distributed DP's clip against the ring: ``clip = 1e12``) failed after the data, the
    prior and every baseline (review of 2026-12-04); a client-level budget no noise meets
    (``--unit client --epsilon 1e-9``) was refused only after the prior's fit, a minute
    at the default size. The trained size is ``config.trains``'s share of the model,
    whatever the prior's values: no prior is needed to know it. A
    :class:`ConfigurationError` names what no round can run."""
    size = trainable_vector(starting_model(config, branches[0].x_train.shape[1], None)).size
    units_total = _record_distributed_units(config, branches) if config.record_distributed else 1
    try:
        federation_config(config, size, state, units_total)
    except BudgetUnreachable as exc:
        if config.epsilon is None:
            raise
        # the budget is what no noise meets: name it, not the updates' bound (which
        # the message named, "the updates' bound is --clip = 10", for --epsilon 1e-9)
        raise ConfigurationError(
            f"{key('epsilon', config.epsilon)}: no federation round can run with these "
            f"settings (checked before training): {exc}"
        ) from None
    except ConfigurationError as exc:
        dp_bound = config.record_distributed or (config.unit == "client" and config.private)
        name, bound = ("clip", config.dp_clip) if dp_bound else ("update_clip", config.update_clip)
        raise ConfigurationError(
            f"no federation round can run with these settings (checked before training): "
            f"{exc} (the updates' bound is {key(name)} = {bound:g})"
        ) from None


def ray_address_source(config: SimulationConfig) -> str:
    """How messages name ``config.ray_address``: as the user set it (the flag or the
    file's key); :func:`~secagg.runtime.ray_engine.joined_address` names the
    environment instead when Ray joins ``RAY_ADDRESS``."""
    return key("ray_address")


def _check_ray_address(config: SimulationConfig) -> None:
    """Refuse a Ray address nothing answers on before any data or training, in one
    line naming where it came from (each probe bounded: ``ray_engine.PROBE_SECONDS``):
    ``ray_address`` as the user set it, or the ``RAY_ADDRESS`` environment variable,
    which Ray joins when ``ray_address`` is not given or ``"auto"``.

    Why: the run first reached Ray in the federation, after the prior's fit and every
    baseline, so ``--ray-address 127.0.0.1:1`` was refused minutes into a default-size
    run; ``RAY_ADDRESS=127.0.0.1:1`` with no ``--ray-address`` was not checked at all,
    and hung in Ray's retries (killed after 150 s, simulate audit 2026-12-05). A driver
    already joined to Ray (a caller's instance, an experiment's session) is not probed:
    it joins what it has. A port that answers but is no Ray GCS (not gRPC, or gRPC
    without Ray's service) is refused here too (:func:`_not_a_ray_gcs`); one that
    answers like a GCS but cannot be joined is still found by ``ray.init``."""
    from secagg.runtime.ray_engine import (
        RayUnavailable,
        check_address,
        joined_address,
        require_ray,
    )

    target, named = joined_address(config.ray_address, ray_address_source(config))
    if target is None or require_ray().is_initialized():
        return
    try:
        check_address(target, source=named)
    except RayUnavailable as exc:
        # the engine's words name the source; a config file's key is named as typed
        _refuse_ray_address(config, target, named, str(exc).split("): ", 1)[-1])
    not_ray = _not_a_ray_gcs(target)
    if not_ray is not None:
        _refuse_ray_address(config, target, named, not_ray)


def _refuse_ray_address(
    config: SimulationConfig, target: str, named: str | None, why: str
) -> NoReturn:
    """The one line refusing the Ray address ``target``, named where it came from:
    ``ray_address`` as the user set it, or the ``RAY_ADDRESS`` environment variable."""
    from secagg.runtime.ray_engine import RAY_ADDRESS_SOURCE, RAY_ADDRESS_VARIABLE

    where = (
        f"{RAY_ADDRESS_VARIABLE}={target} (the environment variable Ray joins when "
        f"{key('ray_address')} is {'auto' if config.ray_address else 'not given'})"
        if named == RAY_ADDRESS_SOURCE
        else key("ray_address", config.ray_address)
    )
    raise ConfigurationError(f"{where}: cannot reach Ray there (checked before training): {why}")


#: a method every Ray GCS serves (``NodeInfoGcsService.CheckAlive``); asked with an empty
#: request only to see who answers, never to learn anything of the cluster
_GCS_PROBE_METHOD: Final = "/ray.rpc.NodeInfoGcsService/CheckAlive"


def _not_a_ray_gcs(target: str, timeout: float | None = None) -> str | None:
    """Why the port at ``target`` (``HOST:PORT``, accepting connections) is no Ray GCS,
    or None when it may be one (or the probe cannot tell).

    Why: a port that accepts TCP but is not Ray (a web server, the federation's own
    gRPC port) passed :func:`~secagg.runtime.ray_engine.check_address` and failed only
    in ``ray.init``, after the data, the prior and every baseline (about 115 s; review,
    2026-12-05). One unary gRPC call settles it, bounded by ``PROBE_SECONDS``: a peer
    that does not speak HTTP/2 ("Failed parsing HTTP/2") or a gRPC server without
    Ray's GCS service (``UNIMPLEMENTED``) is refused; any other answer, even
    ``UNAUTHENTICATED`` (a cluster with token auth), is a GCS. No verdict (None) for
    silence within the bound, a ``ray://`` (Ray Client) address, or ``RAY_USE_TLS``
    (a plaintext probe of a TLS GCS would read as garbage)."""
    import grpc

    from secagg.runtime.ray_engine import PROBE_SECONDS

    if target.strip().startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
        return None
    channel = grpc.insecure_channel(target.strip())
    try:
        probe = channel.unary_unary(
            _GCS_PROBE_METHOD, request_serializer=None, response_deserializer=None
        )
        probe(b"", timeout=PROBE_SECONDS if timeout is None else timeout)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = (exc.details() if callable(getattr(exc, "details", None)) else "") or ""
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return "a gRPC server answers on that port, but not Ray's (no GCS service there)"
        if code == grpc.StatusCode.UNAVAILABLE and "Failed parsing HTTP/2" in details:
            return "something answers on that port, but not gRPC, so not a Ray GCS"
        return None
    finally:
        channel.close()
    return None


def _check_before_training(
    config: SimulationConfig, branches: list[BranchData], state: Path
) -> None:
    """Every refusal of ``config`` its data allows before the prior's fit and any
    baseline (each one line naming the flag or key)."""
    if config.prior_source == "file":  # the model's size, once it is known
        read_prior_file(config, branches[0].x_train.shape[1])
    check_dpsgd_calibration(config, branches)
    check_record_distributed_delta(config, branches)
    check_composed_delta(config, branches)
    _check_federation_plan(config, branches, state)  # ... and so is the round's plan


def check_seed_before_training(config: SimulationConfig) -> None:
    """The refusals :func:`run_simulation` makes before it trains, for ``config``'s seed,
    with no run folder: its data (generated or split), checked (every branch's minimum
    rows, a fraud to learn from), and the checks on it (DP-SGD calibration, delta, the
    round's plan); the data is then let go.

    Why: ``--seeds N`` refused a seed whose data no federation can run on only when that
    seed's turn came, after the seeds before it had trained (minutes each). This costs
    what a run spends before its prior (0.6-1.7 s a seed at the defaults: the data
    1.7 s, the calibration 0.9 s once imported); the calibration is memoised, so the
    seed's run later calibrates to the same noise without a second search."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="secagg-check-") as scratch:
        branches, _, _ = _load_data(config)
        _check_before_training(config, branches, Path(scratch) / "server.sqlite")


def run_simulation(
    config: SimulationConfig, run_dir: Path, progress: Progress = _quiet
) -> SimulationResult:
    """Baselines, federation and final evaluation; ``run_dir`` must be new or empty."""
    import torch

    if config.engine == "ray":  # a missing extra is said now, not after the baselines
        from secagg.runtime.ray_engine import require_ray

        require_ray()
        _check_ray_address(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = run_dir / "server.sqlite"
    if state.exists():
        raise ConfigurationError(f"{run_dir} already holds a run: choose a new folder")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)  # determinism, and no oversubscription of the cores
    started = time.perf_counter()
    if config.prior_source == "file":  # refused before the data is generated
        read_prior_file(config)
    try:
        branches, stats, feature_names = _load_data(config)
        unscaled = unscaled_notes(config, branches, feature_names)
        data_notes = customer_column_notes(config, branches)
        data_notes += partition_notes(config, feature_names)
        _check_before_training(config, branches, state)
        progress("prior", 0, 1, "")
        start = time.perf_counter()
        fitted = prior_model(config, stats)
        prior = fitted.vector if isinstance(fitted, TunedFit) else fitted
        progress("prior", 1, 1, f"{config.prior_source} {time.perf_counter() - start:.1f}s")
        if prior is not None and not np.all(np.isfinite(prior)):
            # a prior whose fit blew up is no place to start: train everything from the
            # seeded initialisation instead, and say so with the results
            prior_note = (
                f"the {config.prior_source} prior diverged (its parameters are not finite): "
                "every setting trained all parameters from scratch instead"
            )
            config = dataclasses.replace(
                config,
                prior="none",
                prior_path=None,
                prior_epsilon=None,  # nothing starts from it: its cost is in no model
                prior_delta=None,
                trainable="all",
            )
            prior = None
            # every parameter now trains: a larger round than the one checked above
            _check_federation_plan(config, branches, state)
        else:
            prior_note = None
        settings = _run_baselines(config, branches, progress, prior)
        with _coarse_thread_switching(config):
            run = run_federation(
                config,
                branches,
                state,
                progress,
                ledger_path=run_dir / "ledger.sqlite",
                prior=prior,
            )
        rounds, model, dropouts = run.rounds, run.model, run.dropouts
        privacy = privacy_parameters(config, run, branches)
    finally:
        torch.set_num_threads(threads_before)
    evaluator = starting_model(config, branches[0].x_train.shape[1], prior)
    load_trainable(evaluator, model)
    federated = evaluate(evaluator, branches)
    from secagg.dp.dpsgd import flat_parameters

    released = flat_parameters(evaluator)  # every parameter: a prior for a later federation
    completed = [r for r in rounds if r["status"] == "complete"]
    last_eps = rounds[-1]["epsilon"] if rounds else None
    sent = bytes_per_branch_taking_part(rounds)
    federated.update(
        epsilon=last_eps,
        epsilon_unit=config.protected if config.private else None,
        bytes_sent_per_branch_per_round=float(np.mean(sent)) if sent else 0.0,
        seconds_per_round=float(np.mean([r["seconds"] for r in rounds])) if rounds else None,
        rounds_completed=len(completed),
        rounds_aborted=len(rounds) - len(completed),
        rounds_released=[r["round"] for r in completed],
        epsilon_target=config.epsilon if config.private else None,
        stopped=run.stopped,
        last_rounds=last_rounds(rounds),
        # no round completed: the model is where training started (the prior, or the
        # seeded initialisation), which the table must not present as a federated result
        untrained=not completed,
    )
    # last_eps is composed already (see the rounds): this run's alone is the last round's
    with_prior_cost(config, federated, this_run=rounds[-1]["epsilon_this_run"] if rounds else None)
    federated["above_target"] = _above_target(federated["epsilon"], config)
    verdicts = branch_verdicts(config, branches, federated, settings["local-only"])
    if not completed:  # an untrained model is compared with nothing
        verdicts = {name: {**v, "judged": False, "untrained": True} for name, v in verdicts.items()}
    statistics = _statistics_summary(config, stats)
    if prior is not None:
        # what the prior scores before any branch trains: what the federation adds is
        # the difference (a prior that does all the work would be seen here)
        settings["prior only"] = evaluate(
            starting_model(config, branches[0].x_train.shape[1], prior), branches
        )
        # the prior is fitted on public rows standardised with the run's statistics: a
        # post-processing of their release, so it costs what that release cost (0 when
        # the statistics are public)
        settings["prior only"].update(
            epsilon=((statistics or {}).get("epsilon_alone") or 0.0) if config.private else None,
            epsilon_unit=config.protected if config.private else None,
            bytes_sent_per_branch_per_round=0,
            seconds_per_round=None,
            source=config.prior_source,
        )
        # a prior from a file costs what its own training spent, on top of the statistics
        with_prior_cost(config, settings["prior only"])
    if not completed:
        untrained_cost(config, federated, settings.get("prior only"))
    settings = {
        **({"prior only": settings["prior only"]} if prior is not None else {}),
        "local-only": settings["local-only"],
        f"federated ({config.backend})": federated,
        "centralized (non-private)": settings["centralized (non-private)"],
    }
    return SimulationResult(
        config=config,
        branches=[b.summary() for b in branches],
        rounds=rounds,
        settings=settings,
        final_model=released,
        dropouts=dropouts,
        seconds=time.perf_counter() - started,
        stopped=run.stopped,
        feature_statistics=statistics,
        privacy=privacy,
        notes=check_branch_data(config, _branch_counts(branches))
        + data_notes
        + statistics_notes(config, statistics)
        + unscaled
        + whole_cohort_notes(config, rounds)
        + ([prior_note] if prior_note else []),
        branch_verdicts=verdicts,
    )


def privacy_parameters(
    config: SimulationConfig, run: FederationRun, branches: list[BranchData]
) -> dict[str, Any]:
    """Every parameter an auditor needs to recompute the run's epsilon, per branch.

    Record-level: each branch's DP-SGD (its accountant's history as (noise multiplier,
    sample rate, steps) runs, the per-record clip, delta, accountant and unit), the
    releases charged before training (the feature statistics) apart. Client-level: the
    server's noise multiplier, clip, sampling rate, delta and accountant. The report
    prints them; summary.json keeps them."""
    out: dict[str, Any] = {"mechanism": config.mechanism if config.private else "off"}
    if not config.private:
        return out
    if config.record_distributed and run.server_dp is not None:
        dp = run.server_dp
        out["server"] = {
            "mechanism": "distributed",
            "unit": config.protected,
            "noise_multiplier": dp.noise_multiplier,
            "clip": config.dp_clip,
            "record_clip": dp.record_clip,
            # the public denominator: one customer moves the mean gradient by clip / N
            "customers": round(config.dp_clip / dp.record_clip),
            # the cap applies only to customers' rows: a file without a customer column
            # clips every row on its own (None, as DP-SGD's record-level report says)
            "max_rows": config.max_rows_per_customer if config.has_customers else None,
            "rounds": config.rounds,
            "expected_clients": expected_cohort(config),
            "honest_shares": honest_shares(config),
            **_charged_shares(run),
            "delta": dp.delta,
            "accountant": "ddg (distributed discrete Gaussian)",
            "sample_rate": 1.0,  # every customer in every step: full-batch DP-GD
            "epsilon_budget": dp.epsilon_budget,
        }
    elif config.unit == "record":
        per_branch = {}
        for branch in branches:
            trainer = run.trainers[branch.name]
            if trainer.dpsgd is None:
                continue
            report = trainer.privacy_report()
            history = [tuple(step) for step in report["history"]]
            prior = len(branch.prior_releases)
            per_branch[branch.name] = {
                "unit": report["unit"],
                "accountant": report["accountant"],
                "delta": report["delta"],
                "clip": report["max_grad_norm"],
                "batch_size": trainer.dpsgd_batch_size,
                "units": report.get("num_customers", branch.num_train),
                "max_rows": report.get("max_rows"),
                "prior_releases": [list(step) for step in history[:prior]],
                "dpsgd": [list(step) for step in _runs(history[prior:])],
                "epsilon": report["epsilon"],
            }
        out["branches"] = per_branch
    elif run.server_dp is not None:
        dp = run.server_dp
        out["server"] = {
            "mechanism": dp.mechanism,
            "noise_multiplier": dp.noise_multiplier,
            "clip": dp.clip,
            "delta": dp.delta,
            "accountant": "ddg (distributed discrete Gaussian)"
            if dp.mechanism == "distributed"
            else dp.accountant,
            # the server's Poisson sampling of branches (1: every branch, every round) ...
            "sample_rate": config.sample_rate,
            # ... and the rate the accountant credits: none (a round's members see each
            # other; the central mechanism charges each branch for its own rounds)
            "accounted_sample_rate": 1.0,
            "charged": "each branch for the rounds it was in"
            if dp.mechanism == "central"
            else "every branch, every round",
            "expected_clients": config.sample_rate * config.branches,
            "epsilon_budget": dp.epsilon_budget,
        }
        if dp.mechanism == "distributed":
            out["server"].update(honest_shares=honest_shares(config), **_charged_shares(run))
    return out


def _charged_shares(run: FederationRun) -> dict[str, Any]:
    """The honest noise shares the server's accountant counted in each released round
    (the contributors less the assumed colluders) and their distinct counts: every round
    is charged, order by order, the largest per-round bound of those counts (usually the
    fewest's, not always: :class:`~secagg.dp.accountants.DiscreteGaussianAccountant`).
    With these, z and the rounds, an auditor recomputes epsilon. Run folders written
    before 2026-12-05 give one count here, the fewest, at which every round was charged."""
    shares = list(run.noise_shares or [])
    return {"noise_shares_per_round": shares, "noise_shares_charged": sorted(set(shares))}


def _runs(history: list[tuple[Any, ...]]) -> list[tuple[float, float, int]]:
    """Consecutive (z, q, steps) entries with the same z and q merged into one."""
    merged: list[tuple[float, float, int]] = []
    for z, q, steps in history:
        if merged and merged[-1][:2] == (z, q):
            merged[-1] = (z, q, merged[-1][2] + int(steps))
        else:
            merged.append((float(z), float(q), int(steps)))
    return merged


def _statistics_summary(config: SimulationConfig, stats: Any) -> dict[str, Any] | None:
    """The report's account of the standardisation: source, parameters, epsilon alone."""
    if stats is None:
        return None
    out = {k: v for k, v in stats.as_dict().items() if k not in ("mean", "std")}
    out["epsilon_alone"] = stats.epsilon_at(config.delta) if stats.private else None
    out["charged_to_branches"] = bool(stats.private)
    return out


#: how a prior's cost and this run's compose (see :func:`with_prior_cost`)
PRIOR_COMPOSITION = "basic (the prior's and this run's epsilons add, and their deltas)"


def composed_epsilon(config: SimulationConfig, this_run: float | None) -> float | None:
    """The epsilon of a model that starts from the prior: the prior's (``prior_epsilon``,
    see :attr:`SimulationConfig.prior_cost`) plus this run's, by basic composition (the
    prior's mechanisms are unknown: the generic bound). ``this_run`` itself without a
    prior cost, or when this run claims none (None)."""
    cost = config.prior_cost
    if cost is None or this_run is None:
        return this_run
    return float(this_run) + cost[0]


def with_prior_cost(
    config: SimulationConfig, setting: dict[str, Any], this_run: float | None = None
) -> None:
    """A setting that starts from a prior from a file (prior only, local-only,
    federated) claims the composed epsilon and delta (:func:`composed_epsilon`): its
    ``epsilon`` and ``delta`` become the composition, this run's alone stays in
    ``epsilon_this_run`` and ``delta_this_run``, the prior's in ``prior_epsilon`` and
    ``prior_delta``. ``this_run``: this run's epsilon when ``setting["epsilon"]`` is
    composed already (the federated rounds'); else ``setting["epsilon"]`` is it. Nothing
    changes without a prior cost (no DP, the public prior, no prior)."""
    cost = config.prior_cost
    if cost is None:
        return
    if this_run is None and "epsilon_this_run" not in setting:
        this_run = setting.get("epsilon")
    setting.update(
        epsilon=composed_epsilon(config, this_run),
        epsilon_this_run=this_run,
        delta=config.delta + cost[1],
        delta_this_run=config.delta,
        prior_epsilon=cost[0],
        prior_delta=cost[1],
        composition=PRIOR_COMPOSITION,
    )


#: what a federation that released no round claims of its starting model's cost
_STARTING_COST_KEYS = (
    "epsilon",
    "epsilon_this_run",
    "delta",
    "delta_this_run",
    "prior_epsilon",
    "prior_delta",
    "composition",
)


def untrained_cost(
    config: SimulationConfig, federated: dict[str, Any], prior_only: dict[str, Any] | None
) -> None:
    """The privacy cost of a federation that released no round, where its accountant
    claims none: its model (model.npy) is where training started, so it costs what
    the prior-only setting's model costs (a prior from a file: its own training's ε,
    composed; every prior: the feature statistics' release it was fitted with), and
    nothing without a prior (the seeded initialisation saw no data).

    Why: ``--unit client`` with every round aborted printed "ε = 0" for a model that
    was a prior whose training had spent ε = 1.25 (report review, 2026-12-05). A
    record-level run keeps its own figure: its branches' DP-SGD trained, and spent,
    in the aborted rounds too."""
    if not config.private or federated.get("epsilon") is not None or prior_only is None:
        return
    federated.update({k: prior_only[k] for k in _STARTING_COST_KEYS if k in prior_only})
    federated["epsilon_of"] = "the starting model"  # what the report says it is
    federated["above_target"] = _above_target(federated["epsilon"], config)


def _above_target(epsilon: float | None, config: SimulationConfig) -> bool:
    """A run whose epsilon ended above its target (the budget should make this impossible;
    every epsilon-printing output marks it if it happens). With a prior from a file,
    ``epsilon`` is the composed one: the target sizes this run's noise alone, so a prior
    that spent anything can put the released model above it, and that is said."""
    if not config.private or config.epsilon is None or epsilon is None:
        return False
    return not epsilon <= config.epsilon
