"""The tuned non-private fits: the public prior and the centralized baseline.

Neither is trained at one fixed learning rate: a start, a learning rate and an epoch
count are chosen on a held-out share of the training rows (never on a test set), then
the model is refitted on all of them. Why: the centralized baseline is the denominator
of every claim, and at the federation's learning rate it diverged on some seeds and
small models, so it is tuned like any model a fraud team would deploy.

With ``tuning_validation = "customer"`` (the default since 2026-12-07) the held-out
share is made of whole customers (cards) when the data names them
(:func:`customer_validation_split`), and of rows when it does not (a CSV without a
customer column); with ``"row"`` (the default before, which the figures of
docs/results.md labelled "tuned by row" ran) it is single rows. Why customers: a card's
fraud burst is several rows; split by row, 31 of the 47 fraud cards of tuning seed 1000
had rows on both sides, so the model was scored on bursts it had partly fitted, the
validation AUPRC was optimistic and what was chosen on it could be chosen for that
leakage (docs/results.md, "Tuning by customer").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.seeding import _derived_seed

#: the tuned non-private fits (the prior, the centralized baseline): learning rates and
#: the most epochs tried, the epoch count chosen on a held-out fifth of the training
#: rows: whole customers' rows by default (``tuning_validation = "customer"``, see
#: :func:`customer_validation_split`), single rows with ``"row"``
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
    validation_auprc: float  # -inf when nothing could be held out (see ``validation``)
    #: how the choice was validated: whole customers held out, rows (``tuning_validation``
    #: "row", or data naming no customer), or nothing (too few customers or frauds to
    #: hold any out: scratch at the first learning rate for every epoch, untuned)
    validation: str


def fit_settings(config: SimulationConfig) -> tuple[object, ...]:
    """Every setting :func:`fit_tuned` reads, of ``config`` and of this module: with the
    same rows, starts and label, two configs that agree on these fit the same model (the
    public prior's cache in :mod:`~secagg.apps.simulation.prior` is keyed on them).
    Extend it with any setting :func:`fit_tuned` comes to read."""
    return (
        config.model,
        config.seed,
        config.epochs,
        config.batch_size,
        config.positive_weight,
        TUNING_LEARNING_RATES,
        TUNING_MAX_EPOCHS,
        TUNING_VALIDATION_SHARE,
        config.tuning_validation,
    )


def pooled_customers(customers: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """One customer id per row of the branches' pooled rows (in the order they are
    concatenated), unique across branches; None when a branch names no customers.

    Why: card ids restart in every synthetic branch (card 3 of two branches is two
    cards), so the pooled rows need ids that tell the branches' customers apart. A
    customer split across branches (none is: a file is partitioned by customer) would
    count as one customer per branch."""
    if not customers or any(ids is None for ids in customers):
        return None
    pooled: list[np.ndarray] = []
    offset = 0
    for ids in customers:
        assert ids is not None
        _, dense = np.unique(ids, return_inverse=True)
        pooled.append(dense.reshape(-1).astype(np.int64) + offset)
        offset += int(dense.max()) + 1 if dense.size else 0
    return np.concatenate(pooled)


def customer_validation_split(customers: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Which rows (True) the tuning holds out: whole customers, drawn in a seeded order
    until their rows come as close as one more customer can to ``share`` of the rows;
    at least one customer on each side when there are two.

    Why: a customer's rows (a card's fraud burst) on both sides of the split let the
    validation score a burst the model had partly fitted (see the module). The customers
    are ordered by a permutation of their sorted ids, so the split depends on the seed
    and on which rows each customer has, not on the order of the rows."""
    ids, owner, counts = np.unique(customers, return_inverse=True, return_counts=True)
    if ids.size < 2:
        return np.zeros(customers.size, dtype=bool)
    order = np.random.default_rng(seed).permutation(ids.size)
    cumulative = np.cumsum(counts[order])
    target = share * customers.size
    # ``below`` customers hold fewer rows than the target, one more holds at least it
    below = int(np.searchsorted(cumulative, target))
    fewer = float(cumulative[below - 1]) if below else 0.0
    taken = below + 1 if cumulative[below] - target <= target - fewer else below
    taken = min(max(taken, 1), ids.size - 1)
    held_customer = np.zeros(ids.size, dtype=bool)
    held_customer[order[:taken]] = True
    return held_customer[owner.reshape(-1)]


def fit_tuned(
    config: SimulationConfig,
    x: np.ndarray,
    y: np.ndarray,
    starts: dict[str, np.ndarray | None],
    label: str,
    *,
    customers: np.ndarray | None,
) -> TunedFit:
    """Non-private training whose start, learning rate and epoch count are chosen on
    validation rows held out of ``x`` (never on a test set), then refitted on all rows.
    ``customers`` names each row's customer (:func:`pooled_customers`): with
    ``config.tuning_validation == "customer"`` the held-out rows are whole customers;
    with ``"row"``, or None (data without customers), single rows.

    Why: the centralized baseline is the denominator of every claim; at one fixed
    learning rate (2, the federation's) it diverged on some seeds and small models, so
    it gets its own tuning, like any model a fraud team would deploy."""
    from secagg.apps.models.metrics import average_precision
    from secagg.apps.models.nets import build_model, fraud_loss, set_trainable
    from secagg.apps.models.training import scores, train_plain
    from secagg.dp.parameter_vector import flat_parameters, load_flat_parameters

    if customers is not None and customers.shape != y.shape:
        raise ValueError(f"{customers.shape} customer ids for {y.shape} rows")
    by_customer = config.tuning_validation == "customer"
    held, validation = _held_out(config, y, label, customers if by_customer else None)
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
    return TunedFit(
        model, flat_parameters(model), name, lr, chosen_epochs, float(score), validation
    )


def _held_out(
    config: SimulationConfig, y: np.ndarray, label: str, customers: np.ndarray | None
) -> tuple[np.ndarray, str]:
    """The rows :func:`fit_tuned` validates on, and how they were chosen (its
    ``validation``): whole ``customers``, else (None) rows (the draw the row split
    always made, so it tunes as it did), else none when a side would hold no fraud (or
    there is one customer): an AUPRC without a fraud is undefined."""
    seed = _derived_seed(config, label, "validation")
    if customers is not None:
        held = customer_validation_split(customers, TUNING_VALIDATION_SHARE, seed)
        unit = "customers"
        count = np.unique(customers).size
        side = np.unique(customers[held]).size
    else:
        held = np.random.default_rng(seed).random(y.size) < TUNING_VALIDATION_SHARE
        unit, count, side = "rows", y.size, int(held.sum())
    if not held.any() or y[held].sum() == 0 or y[~held].sum() == 0:
        frauds = int(np.unique(customers[y == 1]).size) if customers is not None else int(y.sum())
        return np.zeros(y.size, dtype=bool), (
            f"none: {frauds} fraud {unit} among {count} {unit}, too few to hold some out "
            "with a fraud on each side: untuned, from scratch at the first learning rate "
            "for every epoch"
        )
    return held, f"{side} of {count} {unit} held out ({int(held.sum())} rows)"
