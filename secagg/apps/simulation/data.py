"""The branches' data of a ``secagg simulate`` run: generated or read, split, capped and
standardised, or refused before any training.

Step 1 of the run (:mod:`secagg.apps.simulation.runner`): synthetic branches from the
generator's seed, or a CSV partitioned into branches (by customer when the file names
one, so a customer's rows stay in one branch and on one side of the split), each with
its minimum rows and frauds or a refusal naming the key; then each customer's rows
capped as its DP-SGD grouping caps them, and the feature statistics (a noised secure
sum of per-branch sums, or public data) applied. The generator's public reference
worlds (another seed's: no branch's rows) live here too: the public statistics and the
public prior are both drawn from them. No branch's raw rows are pooled here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np

from secagg.apps.models.synthetic import BranchData, generate_branches
from secagg.apps.models.tabular import MemoryPeak
from secagg.apps.simulation.config import SimulationConfig, check_branch_data, key, shown_file
from secagg.apps.simulation.seeding import _customer_rows_seed, _derived_seed, _replay_bytes
from secagg.durable import special_file_kind
from secagg.errors import ConfigurationError


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
        what = f"is no column of {shown_file('path', str(config.path))}"
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
            shown = shown_file("stats_path", config.stats_path)
            return load_public_statistics(config.stats_path, names, shown=shown)
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
    shown = shown_file(name, str(path))
    if not path.exists():
        raise ConfigurationError(f"{key(name)} {shown}: no such file")
    if path.is_dir():
        raise ConfigurationError(f"{key(name)} {shown} is a directory, not a file")
    # a named pipe read "Error: X is a named pipe, not a CSV file", naming no flag (the
    # reader's one-open check, which still refuses a file swapped for one after this)
    kind = special_file_kind(path)
    if kind is not None:
        raise ConfigurationError(f"{key(name)} {shown} is {kind}, not a file")


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
    from secagg.apps.models.tabular import customer_groups, load_creditcard_csv, load_labelled_csv

    assert config.path is not None
    _require_file(config, "path")
    if config.source == "creditcard":
        shown = shown_file("path", config.path)
        table = load_creditcard_csv(
            config.path, config.customer_column, peak=SIMULATION_PEAK, shown=shown
        )
    else:
        assert config.label is not None
        table = load_labelled_csv(
            config.path,
            config.label,
            config.customer_column,
            peak=SIMULATION_PEAK,
            shown=shown_file("path", config.path),
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
    unit = "customer" if table.customers is not None else "row"

    def training_rows(b: int, train_units: np.ndarray) -> int:
        """The rows branch ``b`` trains on, its customers' rows capped as below."""
        train = rows(train_units)
        if table.customers is None:
            return int(train.size)
        name = f"branch-{b + 1:02d}"
        return int(np.count_nonzero(_kept_customer_rows(config, table.customers[train], name)))

    splits = split_units(config, unit_labels, unit_feature, unit, training_rows)
    # the credit-card layout holds each row's amount (as log1p): the fraud-amount metric
    # reads it back, where it read n/a for a file that has the column
    amounts = None
    if config.source == "creditcard":
        amounts = np.expm1(table.x[:, table.feature_names.index("log_amount")].astype(np.float64))
    branches = []
    for b, split in enumerate(splits):
        name = f"branch-{b + 1:02d}"
        train, test = (rows(u) for u in split)
        if table.customers is not None:
            # at most max_rows_per_customer rows each, chosen as the branch's DP-SGD
            # grouping would (same seed), so the statistics and DP-SGD see these rows
            train = train[_kept_customer_rows(config, table.customers[train], name)]
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
                amount_test=None if amounts is None else amounts[test],
            )
        )
    return branches, table.feature_names


#: the share of each branch's units its test set gets (stratified: see train_test_split)
TEST_FRACTION: Final = 0.3


def split_units(
    config: SimulationConfig,
    unit_labels: np.ndarray,
    unit_feature: np.ndarray,
    unit: str,
    training_rows: Callable[[int, np.ndarray], int],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each branch's (training, test) unit indices: the units partitioned into
    ``config.branches`` branches, each split with its minimums of frauds and legitimate
    units on both sides. ``training_rows(b, units)`` counts the rows branch ``b``
    trains on (a customer's rows capped).

    Never a degenerate branch: each gets a quarter of an equal share of the units at
    least, 2 training and 2 test frauds, and 2 training and 2 test legitimate units (a
    test set of frauds alone scores every model AUPRC 1.000). A quarter of a share is no
    promise of :data:`~secagg.apps.simulation.config.MIN_TRAIN_ROWS` training rows,
    though: a 400-row file with ``--partition feature`` and 8 branches gave a branch 12
    rows, 9 of them for training, and was refused although a split giving every branch
    10 exists (simulate audit, 2026-12-06). So a split that leaves a branch short is
    redrawn with every branch given the units that guarantee them
    (:func:`~secagg.apps.models.tabular.units_for_training`); a split that did not leave
    one short is the one it always was (results reproduce). Refused, naming
    ``branches``, when the file has too few rows for that; with customers the check of
    the rows (:func:`check_branch_data`) has the last word, as a customer may hold
    several.
    """
    from secagg.apps.models.tabular import (
        MIN_TEST_NEGATIVES,
        MIN_TRAIN_NEGATIVES,
        branch_minimums,
        partition,
        train_test_split,
        units_for_training,
    )
    from secagg.apps.simulation.config import MIN_TRAIN_ROWS

    least = branch_minimums(unit_labels.size, int(unit_labels.sum()), config.branches, unit=unit)
    sides = {
        "min_train_positives": least.min_train_positives,
        "min_test_positives": least.min_test_positives,
        "min_train_negatives": MIN_TRAIN_NEGATIVES,
        "min_test_negatives": MIN_TEST_NEGATIVES,
    }

    def split(min_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
        parts = partition(
            unit_labels,
            config.branches,
            kind=config.partition,
            alpha=config.alpha,
            seed=config.seed,
            feature=unit_feature if config.partition == "feature" else None,
            min_rows=min_rows,
            min_positives=least.min_positives,
            unit=unit,
            min_negatives=MIN_TRAIN_NEGATIVES + MIN_TEST_NEGATIVES,
        )
        return [
            train_test_split(
                units, TEST_FRACTION, config.seed + b, labels=unit_labels[units], unit=unit, **sides
            )
            for b, units in enumerate(parts)
        ]

    splits = split(least.min_rows)
    if all(training_rows(b, train) >= MIN_TRAIN_ROWS for b, (train, _) in enumerate(splits)):
        return splits
    needed = units_for_training(MIN_TRAIN_ROWS, TEST_FRACTION, **sides)
    if unit_labels.size >= config.branches * needed:
        return split(max(least.min_rows, needed))
    if unit == "customer":  # a customer's several rows may still make up the count
        return splits
    most = unit_labels.size // needed
    way_out = (
        f"use at most {most} {key('branches')} or a larger file"
        if most >= 2  # the fewest branches a federation has
        else f"use a larger file (fewer {key('branches')} cannot help: 2 at the least)"
    )
    raise ConfigurationError(
        f"{unit_labels.size} rows cannot give {config.branches} branches the {needed} "
        f"each that {MIN_TRAIN_ROWS} training rows need (a {round(100 * TEST_FRACTION)} % "
        f"test set and its frauds): {way_out}"
    )


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
    data = shown_file("path", str(config.path))
    raise ConfigurationError(
        f"{data}: {frauds} of {rows} rows ({share:.1f} %) have {label!r} = 1 (fraud), "
        f"above {key('max_fraud_share')} = {limit:g}: fraud is the rare class, so the label "
        "is most likely inverted (1 must mean fraud, 0 legitimate); if fraud really is "
        f"this common in the file (an undersampled one), raise {key('max_fraud_share')}"
    )


def _kept_customer_rows(
    config: SimulationConfig, customers: np.ndarray, branch_name: str
) -> np.ndarray:
    """Which of a branch's training rows (their ``customers``) stay: at most
    ``max_rows_per_customer`` per customer, chosen with the seed the branch's DP-SGD
    grouping uses (:func:`~secagg.apps.simulation.seeding._customer_rows_seed`)."""
    from secagg.dp.user_level import keep_customer_rows

    return keep_customer_rows(
        customers,
        max_rows=config.max_rows_per_customer,
        seed=_customer_rows_seed(config, branch_name),
    )


def _capped(config: SimulationConfig, branch: BranchData) -> BranchData:
    """The branch's training rows with at most ``max_rows_per_customer`` per customer,
    chosen as its DP-SGD grouping would (same seed), so that the feature statistics and
    DP-SGD see these rows and a customer's weight in both is bounded."""
    if branch.customers_train is None:
        return branch
    keep = _kept_customer_rows(config, branch.customers_train, branch.name)
    if keep.all():
        return branch
    # every per-row training array: the row times were left whole (the centralized
    # baseline's out-of-time validation reads them beside the capped rows)
    per_row = ("x_train", "y_train", "customers_train", "day_train", "typology_train")
    return dataclasses.replace(
        branch,
        **{
            name: getattr(branch, name)[keep]
            for name in per_row
            if getattr(branch, name) is not None
        },
    )


#: the public reference: this many synthetic worlds (other seeds: other bank networks,
#: typology mixes and profiles), each with a quarter of the run's training rows.
#: Diversity is what makes a prior transfer. Pooled out-of-time AUPRC of the prior alone
#: on the tuning seeds 1000 / 1001 / 1002 (centralized: 0.87 / 0.68 / 0.51): one world
#: of 120 000 rows 0.60 / 0.23 / -, six of 60 000 0.82 / 0.54 / 0.49, twelve of 30 000
#: 0.79 / 0.61 / 0.57 (the same rows in all, more worlds), twenty-four of 15 000
#: 0.83 / - / 0.50. Twelve until 2026-12-07; then forty-eight of 30 000 (four times the
#: rows: more typology mixes and about four times the fraud rows), chosen by rules written
#: before each run (docs/results.md, "A larger public reference"): over tuning seeds
#: 1000-1009 the record-level noise once's worst seed rose from 0.723 to 0.858 of the
#: centralized AUPRC and its mean barely moved (0.946 to 0.949), then on the fresh tuning
#: seeds 1010-1019 worst 0.745 to 0.910, mean 0.990 to 1.050, branches at least local 75
#: to 77 of 79. It costs no privacy (no branch's rows) and about 40 s of CPU per run
PUBLIC_WORLDS = 48


def _public_reference(config: SimulationConfig) -> list[BranchData]:
    """The synthetic generator's public reference: :data:`PUBLIC_WORLDS` worlds drawn
    under other seeds, no branch's data (what a consortium's shared, consented or
    synthetic data stands for). Cached for the run (:func:`_public_worlds`): public
    statistics and the public prior both read it (read-only)."""
    return _public_worlds(config, "public-reference", PUBLIC_WORLDS)


#: public worlds held out of the public prior's fit to validate its tuning on
#: (``prior_validation = "world"``), each drawn under its own derived seed, as the
#: reference's are: about 3 x 30 000 rows and 130 fraud rows by default, as many as the
#: fifth of cards the customer split holds out of the 12 (decided 2026-12-07 before
#: any run, not tuned)
PUBLIC_VALIDATION_WORLDS = 3


def _public_validation_worlds(config: SimulationConfig) -> list[BranchData]:
    """Public worlds that are not in :func:`_public_reference`: the public prior's
    tuning chooses on them (``prior_validation = "world"``).

    Why: the prior is fitted on public worlds and used on another one (the run's
    branches); a world held out of its fit measures that transfer, where cards held
    out of the same worlds measure how it fits those worlds. It costs no privacy: no
    branch's rows. Drawn as the reference's worlds are (:func:`_public_worlds`) under
    seeds labelled apart from theirs."""
    return _public_worlds(config, "public-validation-world", PUBLIC_VALIDATION_WORLDS)


@functools.lru_cache(maxsize=2)  # a run's reference and its held-out worlds
def _public_worlds(config: SimulationConfig, label: str, count: int) -> list[BranchData]:
    """``count`` synthetic worlds of ``config.branches`` branches, world ``i`` drawn
    under the seed derived from ``(label, i)``, each with a quarter of the run's
    training rows (at least 100 a branch) and 100 test rows a branch, under the
    config's ``world`` knob. ``label`` is part of every world's seed: the same label
    and config draw the same worlds, another label others.

    Why one function: the public reference and the held-out validation worlds were
    two copies of this draw that differed only in the label and the count, and a
    size or knob changed in one copy would have drawn the validation worlds unlike
    the worlds the prior is fitted on. Cached (one entry a label, as each copy kept
    its one): the reference and the held-out worlds of one run are both read more
    than once; callers only read them."""
    return [
        branch
        for world in range(count)
        for branch in generate_branches(
            config.branches,
            seed=_derived_seed(config, label, world),
            total_train_rows=max(100 * config.branches, config.train_rows // 4),
            test_rows_per_branch=100,
            **_world(config),
        )
    ]


def _world(config: SimulationConfig) -> dict[str, Any]:
    return {} if config.world == "standard" else {"world": config.world}
