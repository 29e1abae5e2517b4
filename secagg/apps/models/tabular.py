"""Real transaction tables: CSV loaders and the split of one dataset into branches.

Two layouts are read:

* the widely used credit-card fraud schema ``Time, V1..V28, Amount, Class``
  (``Time`` in seconds since the first transaction, ``V*`` PCA components,
  ``Class`` 1 for fraud). Features: V1..V28, log(1 + Amount) and the time of
  day on the circle (sin, cos of ``Time`` modulo a day);
* any CSV of numeric columns with a named 0/1 label column.

Either may carry a customer (card or account) id column, named by the caller: its
values are kept as strings, never as features. With it, one customer's rows stay
together (one branch, one side of the train/test split) and DP-SGD protects the
customer; without it the privacy unit is the transaction row, and the simulator
says so in every output.

A bad file gets a :class:`~secagg.errors.ConfigurationError` naming the line
and column, never a half-read table. A header that names a column twice is refused
(which copy is the label, and is the other one a feature?), and so is an unnamed
column of the generic layout, where every column but the label is a feature; the
credit-card layout ignores the columns outside its schema (they must still hold
numbers: a text column is most likely a customer id to name).

Partitioning into branches is IID or a Dirichlet skew (Hsu et al., 2019) over the
labels (at equal branch sizes) or over quantile bins of one feature; the draw is
seeded (not a secret, so numpy's PCG64 drives it). Every branch gets a minimum of
units and of frauds by construction (:func:`branch_minimums` gives the defaults),
and the train/test split can be stratified so both sides keep their frauds; data
too small for the minimums is refused with the numbers, never split into branches
without a test fraud.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from secagg.errors import ConfigurationError

CREDITCARD_COLUMNS = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class")
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Table:
    """Features (float32), 0/1 labels (int8) and the feature names."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    #: the customer id of every row (strings), when the file names a customer column
    customers: np.ndarray | None = None


class _Rows(NamedTuple):
    """A CSV's header and non-blank records, with the line of the file each starts on
    (blank lines are skipped and a quoted field may span lines: a record's index is not
    its line)."""

    header: list[str]
    body: list[list[str]]
    lines: list[int]


def _split_customers(
    path: str | Path, rows: _Rows, column: str | None
) -> tuple[_Rows, np.ndarray | None]:
    """Take the customer id column out of the table (ids are labels, not numbers)."""
    header, body, lines = rows
    if column is None:
        return rows, None
    if column not in header:
        raise ConfigurationError(f"{path} has no customer column {column!r}; columns: {header}")
    j = header.index(column)
    ids = []
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ConfigurationError(
                f"{path} line {lines[i]}: {len(row)} fields, the header has {len(header)}"
            )
        value = row[j].strip()
        if not value:
            raise ConfigurationError(f"{path} line {lines[i]}: empty customer id in {column!r}")
        ids.append(value)
    rest = [h for k, h in enumerate(header) if k != j]
    body = [[f for k, f in enumerate(r) if k != j] for r in body]
    return _Rows(rest, body, lines), np.asarray(ids)


#: files that are not CSV text, by their first bytes: what they are and what to do
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed: decompress it (gunzip) first"),
    (b"PK\x03\x04", "a zip archive (an Excel workbook is one): unzip it, or save it as CSV"),
    (b"\xff\xfe", "UTF-16 text: save it as UTF-8 CSV"),
    (b"\xfe\xff", "UTF-16 text: save it as UTF-8 CSV"),
)
#: separators other than the comma, as a message names them
_OTHER_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def _read(path: str | Path) -> _Rows:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ConfigurationError(f"no CSV file at {path}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path} is a directory, not a CSV file") from None
    except OSError as exc:  # permissions, a device, a file that vanished mid-read
        raise ConfigurationError(f"{path} cannot be read: {exc.strerror or exc}") from None
    for magic, what in _NOT_TEXT:
        if raw.startswith(magic):
            raise ConfigurationError(f"{path} is {what}")
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte order mark, not a column name
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigurationError(
            f"{path} line {line} is not UTF-8 text (byte {raw[exc.start]:#04x}): save the "
            "file as UTF-8 CSV"
        ) from None
    del raw
    rows, lines, end = [], [], 0
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        for row in reader:
            start, end = end + 1, reader.line_num
            if row:  # a blank line
                rows.append(row)
                lines.append(start)
    except csv.Error as exc:
        raise ConfigurationError(
            f"{path} line {reader.line_num}: not readable CSV: {exc}"
        ) from None
    if not rows:
        raise ConfigurationError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    if len(header) == 1:
        for sep, name in _OTHER_SEPARATORS.items():
            if sep in header[0]:
                raise ConfigurationError(
                    f"{path} is separated by {name}, not by commas: export it comma-separated"
                )
    for name in dict.fromkeys(h for h in header if h):
        where = [j + 1 for j, h in enumerate(header) if h == name]
        if len(where) > 1:  # which one is the label, or the V1? and the other a feature?
            raise ConfigurationError(
                f"{path}: column {name!r} appears {len(where)} times in the header "
                f"(columns {', '.join(map(str, where))}): drop or rename the copies"
            )
    if len(rows) == 1:
        raise ConfigurationError(f"{path} has a header but no rows")
    return _Rows(header, rows[1:], lines[1:])


def _numbers(path: str | Path, rows: _Rows) -> np.ndarray:
    header, body, lines = rows
    out = np.empty((len(body), len(header)), dtype=np.float64)
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ConfigurationError(
                f"{path} line {lines[i]}: {len(row)} fields, the header has {len(header)}"
            )
        for j, field in enumerate(row):
            try:
                out[i, j] = float(field)
            except ValueError:
                raise ConfigurationError(
                    f"{path} line {lines[i]}, column {header[j]!r}: {field!r} is not a number"
                ) from None
    if not np.all(np.isfinite(out)):
        i, j = (int(v) for v in np.argwhere(~np.isfinite(out))[0])
        raise ConfigurationError(
            f"{path} line {lines[i]}, column {header[j]!r}: {body[i][j].strip()!r} is not "
            "a finite number"
        )
    return out


def _fits_float32(path: str | Path, rows: _Rows, values: np.ndarray, names: list[str]) -> None:
    """Refuse a feature value the float32 table would make infinite, naming it."""
    header, lines = rows.header, rows.lines
    limit = float(np.finfo(np.float32).max)
    columns = [header.index(name) for name in names]
    beyond = np.abs(values[:, columns]) > limit
    if beyond.any():
        i, k = (int(v) for v in np.argwhere(beyond)[0])
        raise ConfigurationError(
            f"{path} line {lines[i]}, column {names[k]!r}: {values[i, columns[k]]:g} is beyond "
            f"the float32 range of the features (|x| <= {limit:.3g}): rescale the column"
        )


def _labels(path: str | Path, column: np.ndarray, name: str, lines: list[int]) -> np.ndarray:
    bad = ~np.isin(column, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigurationError(
            f"{path} line {lines[i]}: label {name!r} is {column[i]:g}; it must be 0 "
            "(legitimate) or 1 (fraud)"
        )
    if column.all():  # nothing to rank the frauds against: every model would score 1.0
        raise ConfigurationError(
            f"{path}: every row of {name!r} is 1 (fraud), none 0 (legitimate); the label "
            "must be 1 for fraud only"
        )
    return column.astype(np.int8)


def load_creditcard_csv(path: str | Path, customer_column: str | None = None) -> Table:
    """The credit-card fraud schema (Time, V1..V28, Amount, Class), in any column order."""
    if customer_column in CREDITCARD_COLUMNS:
        raise ConfigurationError(
            f"the customer column {customer_column!r} is one of the credit-card columns "
            "(Time, V1..V28, Amount, Class): name the card or account id column"
        )
    rows, customers = _split_customers(path, _read(path), customer_column)
    header = rows.header
    missing = [c for c in CREDITCARD_COLUMNS if c not in header]
    if missing:
        raise ConfigurationError(
            f"{path} lacks the credit-card columns {missing}; for another layout use "
            "source = 'csv' with a label column"
        )
    values = _numbers(path, rows)
    _fits_float32(path, rows, values, [f"V{i}" for i in range(1, 29)])  # Amount: log1p
    col = {name: values[:, header.index(name)] for name in CREDITCARD_COLUMNS}
    if np.any(col["Amount"] < 0):
        i = int(np.flatnonzero(col["Amount"] < 0)[0])
        raise ConfigurationError(
            f"{path} line {rows.lines[i]}: Amount {col['Amount'][i]:g} must not be negative"
        )
    angle = 2 * math.pi * (col["Time"] % SECONDS_PER_DAY) / SECONDS_PER_DAY
    features = [col[f"V{i}"] for i in range(1, 29)]
    features += [np.log1p(col["Amount"]), np.sin(angle), np.cos(angle)]
    names = (*(f"V{i}" for i in range(1, 29)), "log_amount", "hour_sin", "hour_cos")
    x = np.stack(features, axis=1).astype(np.float32)
    return Table(x, _labels(path, col["Class"], "Class", rows.lines), names, customers)


def load_labelled_csv(path: str | Path, label: str, customer_column: str | None = None) -> Table:
    """A CSV of numeric columns; ``label`` names the 0/1 fraud column."""
    if customer_column == label:
        raise ConfigurationError("the customer column cannot be the label column")
    rows = _read(path)
    if "" in rows.header:  # every column is a feature here: it needs a name
        raise ConfigurationError(
            f"{path}: column {rows.header.index('') + 1} of the header has no name (a row number "
            "written by pandas' to_csv without index=False?): name it or drop it"
        )
    rows, customers = _split_customers(path, rows, customer_column)
    header = rows.header
    if label not in header:
        raise ConfigurationError(f"{path} has no label column {label!r}; columns: {header}")
    if len(header) < 2:
        raise ConfigurationError(f"{path} has no feature columns besides {label!r}")
    values = _numbers(path, rows)
    j = header.index(label)
    names = tuple(h for k, h in enumerate(header) if k != j)
    _fits_float32(path, rows, values, list(names))
    x = np.delete(values, j, axis=1).astype(np.float32)
    return Table(x, _labels(path, values[:, j], label, rows.lines), names, customers)


def customer_groups(customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique ids, index of each row's customer)``: the unit partitions work on."""
    unique, inverse = np.unique(customers, return_inverse=True)
    return unique, inverse


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every column to mean 0, std 1 with the statistics of ``train``.

    For one party's own data (a baseline, a test). Across branches nobody may pool
    the rows: the simulator standardises with a noised secure sum of per-branch sums
    or public statistics (:mod:`secagg.apps.simulation.feature_stats`).
    """
    train = np.asarray(train)
    if train.ndim != 2:
        raise ConfigurationError("standardize needs a 2-D array (rows x features)")
    if train.shape[0] == 0:
        raise ConfigurationError("standardize needs at least one training row")
    if not np.all(np.isfinite(train)):
        i, j = (int(v) for v in np.argwhere(~np.isfinite(train))[0])
        raise ConfigurationError(f"the training value at row {i}, column {j} is not finite")
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _integer(value: object, name: str, least: float) -> int:
    """``value`` as an int, or a ConfigurationError: 2.5 branches are not 2, and a
    negative seed is numpy's bare ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        at_least = "" if least == -math.inf else f" >= {least:g}"
        raise ConfigurationError(f"{name} must be an integer{at_least}, not {value!r}")
    return int(value)


def _checked_labels(labels: np.ndarray, unit: str) -> np.ndarray:
    """One 0/1 label per unit: a 2, -1 or NaN is not silently a legitimate unit."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ConfigurationError(f"labels must give one label per {unit} (a 1-D array)")
    bad = ~np.isin(y, (0, 1)) if y.dtype.kind in "biuf" else np.ones(y.shape, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigurationError(
            f"labels must be 0 or 1 (legitimate or fraud); {unit} {i} has {y[i].item()!r}"
        )
    return y


#: fraud (label 1) units every branch keeps for training / for testing by default
#: (:func:`branch_minimums`)
MIN_TRAIN_POSITIVES = 2
MIN_TEST_POSITIVES = 2
#: a branch gets at least ``1 / ROW_SHARE_DIVISOR`` of an equal share of the units
ROW_SHARE_DIVISOR = 4

PARTITION_KINDS = ("iid", "dirichlet", "feature")


class BranchMinimums(NamedTuple):
    """What every branch must get: the ``min_*`` keywords of :func:`partition`
    (``min_rows``, ``min_positives``) and :func:`train_test_split`
    (``min_train_positives``, ``min_test_positives``)."""

    min_rows: int
    min_positives: int
    min_train_positives: int
    min_test_positives: int


def branch_minimums(
    units: int, positives: int, branches: int, *, unit: str = "row"
) -> BranchMinimums:
    """The default minimums for splitting ``units`` units (``positives`` of them fraud)
    into ``branches`` branches, or a :class:`ConfigurationError` saying why none exist.

    The rule:

    * fraud units: :data:`MIN_TRAIN_POSITIVES` (2) for training and
      :data:`MIN_TEST_POSITIVES` (2) for testing, so ``min_positives = 4``. With one
      test fraud a branch's recall is 0 or 1 and its AUPRC one coin; two is the least
      that ranks anything, and a training set with two frauds at least shows the local
      model the class. It is a floor, not a target: a Dirichlet split still skews the
      rest of the frauds, so most branches hold more. At the credit-card rate (0.17 %)
      four frauds need about 2 350 rows a branch, which is what a file with 44 frauds
      gives 8 branches (11 branches is the most it can serve).
    * rows: ``min_rows = max(min_positives, units // (4 * branches))``, a quarter of
      an equal share (:data:`ROW_SHARE_DIVISOR`). A skewed split (``feature``) may
      still make branches that differ in size, but none is starved: 20 000 rows and 8
      branches give every branch at least 625 rows, more than two batches of 256,
      where the unconstrained Dirichlet split made branches of 78. (``iid`` and
      ``dirichlet`` give equal sizes anyway.)

    Refused exactly when ``positives < branches * min_positives`` or
    ``units < branches * min_rows`` (with this rule the second fails only with the
    first, since ``min_rows <= units // branches`` whenever ``units >= 4 * branches``):
    "44 fraud rows cannot give 12 branches at least 4 each (2 for training, 2 for
    testing): lower the number of branches or use a larger file". ``unit`` names the
    unit in messages (``"row"`` or ``"customer"``).
    """
    units, positives = _integer(units, "units", 0), _integer(positives, "positives", 0)
    if positives > units:
        raise ConfigurationError(f"{positives} fraud {unit}s but only {units} {unit}s")
    min_positives = MIN_TRAIN_POSITIVES + MIN_TEST_POSITIVES
    min_rows = max(min_positives, units // (ROW_SHARE_DIVISOR * max(branches, 1)))
    if branches >= 1:
        _require_minimums(
            units,
            positives,
            branches,
            min_rows,
            min_positives,
            unit,
            f" ({MIN_TRAIN_POSITIVES} for training, {MIN_TEST_POSITIVES} for testing)",
        )
    return BranchMinimums(min_rows, min_positives, MIN_TRAIN_POSITIVES, MIN_TEST_POSITIVES)


def _require_minimums(
    units: int,
    positives: int,
    branches: int,
    min_rows: int,
    min_positives: int,
    unit: str,
    detail: str = "",
) -> None:
    advice = "lower the number of branches or use a larger file"
    if positives < branches * min_positives:
        raise ConfigurationError(
            f"{positives} fraud {unit}{'s' if positives != 1 else ''} cannot give "
            f"{branches} branches at least {min_positives} each{detail}: {advice}"
        )
    if units < branches * min_rows:
        raise ConfigurationError(
            f"{units} {unit}{'s' if units != 1 else ''} cannot give {branches} branches "
            f"at least {min_rows} each: {advice}"
        )


def partition(
    labels: np.ndarray,
    branches: int,
    *,
    kind: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    feature: np.ndarray | None = None,
    bins: int = 5,
    min_rows: int = 1,
    min_positives: int = 0,
    unit: str = "row",
) -> list[np.ndarray]:
    """Unit (row or customer) indices for each branch.

    Every branch gets at least ``min_rows`` units and at least ``min_positives``
    positive (label 1) units, by construction; the parts are disjoint, cover every
    unit and depend only on the arguments and ``seed``. When the data cannot give that
    (``positives < branches * min_positives`` or ``units < branches * min_rows``) a
    :class:`ConfigurationError` says so in one sentence, naming the numbers.

    * ``iid``: equal sizes (``units // branches``, some one more). Without
      ``min_positives`` a seeded shuffle cut into parts (as it always was); with it the
      positives are dealt out evenly too (each branch ``positives // branches`` or one
      more), so the minimum holds whenever it is feasible.
    * ``dirichlet``: a label skew with controlled sizes. The branch sizes are equal as
      for ``iid``; each branch first gets ``min_positives`` positives, the remaining
      positives are shared out in Dirichlet(``alpha``) proportions (small alpha = very
      skewed; a branch that is full passes its excess to the others in the same
      proportions) and legitimate units fill each branch up to its size. So the label
      mix differs between branches, the sizes do not: the old split that skewed the
      legitimate rows too made branches of 78 to 4 900 rows out of 20 000.
    * ``feature``: each branch first gets ``min_positives`` random positives and
      random units up to ``min_rows``; the rest are shared per quantile bin (``bins``
      of them) of ``feature`` in Dirichlet(``alpha``) proportions (customer mixes that
      differ between branches). Sizes vary, never below ``min_rows``.

    ``unit`` names the unit in messages (``"row"`` or ``"customer"``).
    """
    y = _checked_labels(labels, unit)
    n = y.size
    if isinstance(branches, bool) or not isinstance(branches, int | np.integer):
        raise ConfigurationError(f"branches must be an integer >= 2, not {branches!r}")
    if branches < 2:
        raise ConfigurationError(f"cannot split {n} {unit}s into {branches} branches")
    if not alpha > 0:  # NaN too: its Dirichlet draw is NaN, which splits evenly
        raise ConfigurationError("alpha must be positive")
    if kind not in PARTITION_KINDS:
        raise ConfigurationError(f"partition kind must be iid, dirichlet or feature, not {kind!r}")
    if kind == "feature":
        if feature is None or np.asarray(feature).shape != (n,):
            raise ConfigurationError("a feature skew needs one feature value per row")
        if not np.all(np.isfinite(np.asarray(feature, dtype=np.float64))):
            raise ConfigurationError("feature values must be finite for a feature skew")
        bins = _integer(bins, "bins", 1)
    min_rows = _integer(min_rows, "min_rows", -math.inf)
    min_positives = _integer(min_positives, "min_positives", -math.inf)
    if min_rows < 1 or min_positives < 0:
        raise ConfigurationError("min_rows must be at least 1 and min_positives at least 0")
    seed = _integer(seed, "seed", 0)
    positives = np.flatnonzero(y == 1)
    _require_minimums(n, positives.size, branches, min_rows, min_positives, unit)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A27]))
    if kind == "iid" and min_positives == 0:
        return [np.sort(part) for part in np.array_split(rng.permutation(n), branches)]
    if kind == "feature":
        assert feature is not None
        return _feature_skew(rng, n, positives, np.asarray(feature), branches, alpha, bins,
                             min_rows, min_positives)  # fmt: skip
    negatives = rng.permutation(np.flatnonzero(y != 1))
    positives = rng.permutation(positives)
    p = positives.size
    sizes = np.full(branches, n // branches)
    sizes[: n % branches] += 1
    if kind == "iid":  # the extras of both go to the first branches: sizes >= counts
        counts = np.full(branches, p // branches)
        counts[: p % branches] += 1
        order = rng.permutation(branches)
        sizes, counts = sizes[order], counts[order]
    else:
        sizes = sizes[rng.permutation(branches)]
        shares = rng.dirichlet(np.full(branches, alpha))
        extra = _capped_allocation(p - branches * min_positives, shares, sizes - min_positives)
        counts = min_positives + extra
    pos_parts = np.split(positives, np.cumsum(counts)[:-1])
    neg_parts = np.split(negatives, np.cumsum(sizes - counts)[:-1])
    return [np.sort(np.concatenate(pair)) for pair in zip(pos_parts, neg_parts, strict=True)]


def _capped_allocation(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integers ``c`` with ``sum(c) == total`` and ``0 <= c <= caps``, proportional to
    ``weights``: a full branch's excess goes to the others in the same proportions
    (largest remainders round; ``sum(caps) >= total`` is the caller's guarantee)."""
    counts = np.zeros(caps.size, dtype=np.int64)
    remaining = int(total)
    while remaining > 0:
        open_ = counts < caps
        w = np.where(open_, np.nan_to_num(weights, nan=0.0), 0.0)
        if not w.sum() > 0:  # only zero-weight branches left open: share evenly
            w = open_.astype(float)
        quota = remaining * w / w.sum()
        alloc = np.floor(quota).astype(np.int64)
        left = remaining - int(alloc.sum())
        candidates = np.flatnonzero(open_)
        by_remainder = candidates[np.argsort(-(quota - alloc)[candidates], kind="stable")]
        alloc[by_remainder[:left]] += 1
        alloc = np.minimum(alloc, caps - counts)
        counts += alloc
        remaining -= int(alloc.sum())
    return counts


def _feature_skew(
    rng: np.random.Generator,
    n: int,
    positives: np.ndarray,
    feature: np.ndarray,
    branches: int,
    alpha: float,
    bins: int,
    min_rows: int,
    min_positives: int,
) -> list[np.ndarray]:
    edges = np.quantile(feature, np.linspace(0, 1, bins + 1)[1:-1])
    groups = np.searchsorted(edges, feature)
    reserved = rng.permutation(positives)[: branches * min_positives]
    rest = np.setdiff1d(np.arange(n), reserved)
    rest = rng.permutation(rest)
    top_up = max(0, min_rows - min_positives)
    parts: list[list[np.ndarray]] = [
        [
            reserved[b * min_positives : (b + 1) * min_positives],
            rest[b * top_up : (b + 1) * top_up],
        ]
        for b in range(branches)
    ]
    rest = rest[branches * top_up :]
    for group in np.unique(groups[rest]):
        rows = rest[groups[rest] == group]
        shares = rng.dirichlet(np.full(branches, alpha))
        cuts = np.round(np.cumsum(shares)[:-1] * rows.size).astype(int)
        for b, chunk in enumerate(np.split(rows, cuts)):
            parts[b].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def train_test_split(
    rows: np.ndarray,
    test_fraction: float,
    seed: int,
    *,
    labels: np.ndarray | None = None,
    min_test_positives: int = 0,
    min_train_positives: int = 0,
    unit: str = "row",
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of one branch's unit indices into (train, test).

    Without ``labels``: a seeded shuffle, ``max(1, round(size * (1 - test_fraction)))``
    units for training (unchanged: the same seed gives the same split as ever).

    With ``labels`` (the label of each of ``rows``, aligned): stratified. The test set
    gets ``round(positives * test_fraction)`` of the positive (label 1) units, raised to
    ``min_test_positives`` and lowered to leave ``min_train_positives`` for training,
    and legitimate units up to the unstratified test size; a
    :class:`ConfigurationError` when the branch has fewer than
    ``min_train_positives + min_test_positives`` positives.
    """
    if not 0 < test_fraction < 1:
        raise ConfigurationError("test_fraction must lie in (0, 1)")
    seed = _integer(seed, "seed", 0)
    rows = np.asarray(rows)
    distinct, counts = np.unique(rows, return_counts=True)
    if distinct.size != rows.size:  # a repeated row could land on both sides
        raise ConfigurationError(
            f"row indices must be distinct ({distinct[counts > 1][0]} repeats)"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7E57]))
    cut = max(1, round(rows.size * (1 - test_fraction)))
    if labels is None:
        if min_test_positives or min_train_positives:
            raise ConfigurationError("a minimum of positives per side needs the labels")
        shuffled = rng.permutation(rows)
        return np.sort(shuffled[:cut]), np.sort(shuffled[cut:])
    y = np.asarray(labels)
    if y.shape != rows.shape:
        raise ConfigurationError("train_test_split needs one label per row")
    y = _checked_labels(y, unit)
    if min_test_positives < 0 or min_train_positives < 0:
        raise ConfigurationError("the minimums of positives cannot be negative")
    min_test_positives = _integer(min_test_positives, "min_test_positives", 0)
    min_train_positives = _integer(min_train_positives, "min_train_positives", 0)
    positives = rng.permutation(rows[y == 1])
    negatives = rng.permutation(rows[y != 1])
    p = positives.size
    if p < min_train_positives + min_test_positives:
        raise ConfigurationError(
            f"{p} fraud {unit}{'s' if p != 1 else ''} cannot give a training set "
            f"{min_train_positives} and a test set {min_test_positives}: lower the "
            "number of branches or use a larger file"
        )
    test_p = min(max(round(p * test_fraction), min_test_positives), p - min_train_positives)
    test_n = min(max(rows.size - cut - test_p, 0), negatives.size)
    test = np.concatenate([positives[:test_p], negatives[:test_n]])
    train = np.concatenate([positives[test_p:], negatives[test_n:]])
    return np.sort(train), np.sort(test)
