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
and column, never a half-read table. Partitioning into branches is IID or a
Dirichlet skew (Hsu et al., 2019) over the labels or over quantile bins of one
feature; the draw is seeded (not a secret, so numpy's PCG64 drives it).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

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


def _split_customers(
    path: str | Path, header: list[str], body: list[list[str]], column: str | None
) -> tuple[list[str], list[list[str]], np.ndarray | None]:
    """Take the customer id column out of the table (ids are labels, not numbers)."""
    if column is None:
        return header, body, None
    if column not in header:
        raise ConfigurationError(f"{path} has no customer column {column!r}; columns: {header}")
    j = header.index(column)
    ids = []
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ConfigurationError(
                f"{path} line {i + 2}: {len(row)} fields, the header has {len(header)}"
            )
        value = row[j].strip()
        if not value:
            raise ConfigurationError(f"{path} line {i + 2}: empty customer id in {column!r}")
        ids.append(value)
    rest = [h for k, h in enumerate(header) if k != j]
    return rest, [[f for k, f in enumerate(r) if k != j] for r in body], np.asarray(ids)


def _read(path: str | Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise ConfigurationError(f"no CSV file at {path}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"{path} is not a readable CSV file: {exc}") from None
    if not rows:
        raise ConfigurationError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    if not body:
        raise ConfigurationError(f"{path} has a header but no rows")
    return header, body


def _numbers(path: str | Path, header: list[str], body: list[list[str]]) -> np.ndarray:
    out = np.empty((len(body), len(header)), dtype=np.float64)
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ConfigurationError(
                f"{path} line {i + 2}: {len(row)} fields, the header has {len(header)}"
            )
        for j, field in enumerate(row):
            try:
                out[i, j] = float(field)
            except ValueError:
                raise ConfigurationError(
                    f"{path} line {i + 2}, column {header[j]!r}: {field!r} is not a number"
                ) from None
    if not np.all(np.isfinite(out)):
        line = int(np.argwhere(~np.isfinite(out))[0][0]) + 2
        raise ConfigurationError(f"{path} line {line}: a value is not finite")
    return out


def _labels(path: str | Path, column: np.ndarray, name: str) -> np.ndarray:
    bad = ~np.isin(column, (0.0, 1.0))
    if bad.any():
        line = int(np.flatnonzero(bad)[0]) + 2
        raise ConfigurationError(f"{path} line {line}: label {name!r} must be 0 or 1")
    return column.astype(np.int8)


def load_creditcard_csv(path: str | Path, customer_column: str | None = None) -> Table:
    """The credit-card fraud schema (Time, V1..V28, Amount, Class), in any column order."""
    header, body, customers = _split_customers(path, *_read(path), customer_column)
    missing = [c for c in CREDITCARD_COLUMNS if c not in header]
    if missing:
        raise ConfigurationError(
            f"{path} lacks the credit-card columns {missing}; for another layout use "
            "source = 'csv' with a label column"
        )
    values = _numbers(path, header, body)
    col = {name: values[:, header.index(name)] for name in CREDITCARD_COLUMNS}
    if np.any(col["Amount"] < 0):
        raise ConfigurationError(f"{path}: Amount must not be negative")
    angle = 2 * math.pi * (col["Time"] % SECONDS_PER_DAY) / SECONDS_PER_DAY
    features = [col[f"V{i}"] for i in range(1, 29)]
    features += [np.log1p(col["Amount"]), np.sin(angle), np.cos(angle)]
    names = (*(f"V{i}" for i in range(1, 29)), "log_amount", "hour_sin", "hour_cos")
    x = np.stack(features, axis=1).astype(np.float32)
    return Table(x, _labels(path, col["Class"], "Class"), names, customers)


def load_labelled_csv(path: str | Path, label: str, customer_column: str | None = None) -> Table:
    """A CSV of numeric columns; ``label`` names the 0/1 fraud column."""
    if customer_column == label:
        raise ConfigurationError("the customer column cannot be the label column")
    header, body, customers = _split_customers(path, *_read(path), customer_column)
    if label not in header:
        raise ConfigurationError(f"{path} has no label column {label!r}; columns: {header}")
    if len(header) < 2:
        raise ConfigurationError(f"{path} has no feature columns besides {label!r}")
    values = _numbers(path, header, body)
    j = header.index(label)
    names = tuple(h for k, h in enumerate(header) if k != j)
    x = np.delete(values, j, axis=1).astype(np.float32)
    return Table(x, _labels(path, values[:, j], label), names, customers)


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
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def partition(
    labels: np.ndarray,
    branches: int,
    *,
    kind: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    feature: np.ndarray | None = None,
    bins: int = 5,
) -> list[np.ndarray]:
    """Row indices for each branch.

    ``iid``: a seeded shuffle cut into near-equal parts. ``dirichlet``: for each
    label, the branches' shares are a Dirichlet(alpha) draw (small alpha = very
    skewed). ``feature``: the same over ``bins`` quantile bins of ``feature``
    (customer mixes that differ between branches). Every branch gets at least
    one row; the parts are disjoint and cover every row.
    """
    y = np.asarray(labels)
    n = y.size
    if branches < 2 or branches > n:
        raise ConfigurationError(f"cannot split {n} rows into {branches} branches")
    if alpha <= 0:
        raise ConfigurationError("alpha must be positive")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A27]))
    if kind == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(n), branches)]
    if kind == "dirichlet":
        groups = y
    elif kind == "feature":
        if feature is None or np.asarray(feature).shape != (n,):
            raise ConfigurationError("a feature skew needs one feature value per row")
        edges = np.quantile(feature, np.linspace(0, 1, bins + 1)[1:-1])
        groups = np.searchsorted(edges, feature)
    else:
        raise ConfigurationError(f"partition kind must be iid, dirichlet or feature, not {kind!r}")
    parts: list[list[np.ndarray]] = [[] for _ in range(branches)]
    for group in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == group))
        shares = rng.dirichlet(np.full(branches, alpha))
        cuts = np.round(np.cumsum(shares)[:-1] * rows.size).astype(int)
        for b, chunk in enumerate(np.split(rows, cuts)):
            parts[b].append(chunk)
    result = [np.concatenate(p) if p else np.zeros(0, dtype=int) for p in parts]
    for b in range(branches):  # no empty branch: borrow a row from the largest
        if result[b].size == 0:
            donor = int(np.argmax([r.size for r in result]))
            result[b], result[donor] = result[donor][:1], result[donor][1:]
    return [np.sort(r) for r in result]


def train_test_split(
    rows: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of one branch's row indices."""
    if not 0 < test_fraction < 1:
        raise ConfigurationError("test_fraction must lie in (0, 1)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7E57]))
    shuffled = rng.permutation(rows)
    cut = max(1, round(rows.size * (1 - test_fraction)))
    return np.sort(shuffled[:cut]), np.sort(shuffled[cut:])
