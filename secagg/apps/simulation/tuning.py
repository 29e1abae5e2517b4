"""The tuned non-private fits: the public prior and the centralized baseline.

Neither is trained at one fixed learning rate: a start, a learning rate and an epoch
count are chosen on validation rows (never on a test set). Why: the centralized
baseline is the denominator of every claim, and at the federation's learning rate it
diverged on some seeds and small models, so it is tuned like any model a fraud team
would deploy.

Each fit validates on what it is for (since 2026-12-07, decided before any run):

- ``prior_validation = "world"``: the public prior is fitted on the generator's public
  reference worlds and used on another world, the run's branches; it chooses on public
  worlds held out of its fit (:func:`~secagg.apps.simulation.data._public_validation_worlds`),
  which measure that transfer. It trains every candidate on all its rows and keeps the
  chosen epoch's model (nothing is held out of its own rows, so there is nothing to
  refit).
- ``centralized_validation = "customer"``: the centralized baseline chooses on whole
  customers held out of its rows (cards; :func:`customer_validation_split`), then is
  refitted on all rows. ``"time"`` (the latest fifth of its training rows by time,
  :func:`time_validation_split`, like its out-of-time test) was its default on the
  morning of 2026-12-07, until the check on tuning seeds 1000-1009 found it choosing
  clearly worse than ``"customer"`` (docs/results.md, "Tuning each fit for its use").

``"customer"`` (the default of both fits earlier on 2026-12-07) and ``"row"`` (the
default before) replay the runs of then exactly. Why not rows: a card's fraud burst is several rows;
split by row, 31 of the 47 fraud cards of tuning seed 1000 had rows on both sides
(docs/results.md, "Tuning by customer"). Data that cannot give the asked validation
(no row times, no customers, no fraud on a side) falls back (time or world, then
customer, then row, then none), and the fit's ``validation`` says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.seeding import _derived_seed
from secagg.errors import ConfigurationError

#: the tuned non-private fits (the prior, the centralized baseline): learning rates and
#: the most epochs tried, the epoch count chosen on held-out validation rows (what each
#: fit holds out: ``prior_validation``, ``centralized_validation``)
TUNING_LEARNING_RATES = (0.25, 1.0)


TUNING_MAX_EPOCHS = 12


TUNING_VALIDATION_SHARE = 0.2

#: how each validation falls back when the data cannot give it (see :func:`fit_tuned`)
_FALLBACK = {"time": "customer", "world": "customer", "customer": "row"}


@dataclass(frozen=True)
class TunedFit:
    """A non-private model fitted with its own tuning, and what the tuning chose."""

    model: Any  # the fitted torch module (every parameter trainable)
    vector: np.ndarray  # every parameter, flat
    start: str  # "scratch" or "prior"
    learning_rate: float
    epochs: int
    validation_auprc: float  # -inf when nothing could be held out (see ``validation``)
    #: how the choice was validated, in words: which rows or worlds were held out, and
    #: why a validation asked for fell back (e.g. data without row times)
    validation: str
    #: the validation that ran: "world", "time", "customer", "row", or "none" (too few
    #: customers or frauds to hold any out: scratch at the first learning rate for
    #: every epoch, untuned)
    scheme: str = "none"

    def choice(self) -> dict[str, Any]:
        """What the tuning chose and on what, as summary.json records it."""
        return {
            "start": self.start,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "validation_auprc": self.validation_auprc,
            "validation_scheme": self.scheme,
            "validation": self.validation,
        }


def fit_settings(config: SimulationConfig, validation: str) -> tuple[object, ...]:
    """Every setting :func:`fit_tuned` reads, of ``config`` and of this module, for a fit
    validated by ``validation``: with the same rows, starts, label and validation rows,
    two configs that agree on these fit the same model (the public prior's cache in
    :mod:`~secagg.apps.simulation.prior` is keyed on them). Extend it with any setting
    :func:`fit_tuned` comes to read."""
    return (
        config.model,
        config.seed,
        config.epochs,
        config.batch_size,
        config.positive_weight,
        TUNING_LEARNING_RATES,
        TUNING_MAX_EPOCHS,
        TUNING_VALIDATION_SHARE,
        validation,
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


def time_validation_split(days: np.ndarray, share: float) -> np.ndarray:
    """Which rows (True) the tuning holds out: the latest ``share`` of them by time
    (rounded to a row; at least one row on each side when there are two).

    Why: the centralized baseline is scored on a later period than it trains on (drift:
    channels, amounts and typologies move); the latest rows of its training period are
    the validation that looks most like that test. Rows of one time keep their order
    (a stable sort), so the split is a function of the rows and their order."""
    days = np.asarray(days).reshape(-1)
    held = np.zeros(days.size, dtype=bool)
    if days.size < 2:
        return held
    count = min(max(round(share * days.size), 1), days.size - 1)
    held[np.argsort(days, kind="stable")[days.size - count :]] = True
    return held


def fit_tuned(
    config: SimulationConfig,
    x: np.ndarray,
    y: np.ndarray,
    starts: dict[str, np.ndarray | None],
    label: str,
    *,
    customers: np.ndarray | None,
    validation: str,
    days: np.ndarray | None = None,
    world: tuple[np.ndarray, np.ndarray] | None = None,
) -> TunedFit:
    """Non-private training whose start, learning rate and epoch count are chosen on
    validation rows (never on a test set).

    ``validation`` says which: ``"world"``, the rows ``world`` (features, labels) of
    data held out of ``x`` altogether (every candidate trains on all of ``x`` and the
    chosen epoch's model is kept); ``"time"``, the latest fifth of ``x`` by ``days``;
    ``"customer"``, whole ``customers`` (:func:`pooled_customers`); ``"row"``, single
    rows. The last three are held out of ``x``, and the chosen setting is refitted on
    all rows. Without what the validation needs (no ``days``, no ``world``, no
    ``customers``, or no fraud on a side) it falls back (time or world to customer,
    customer to row), saying why in the fit's ``validation``.

    A start with a NaN or infinite parameter is refused
    (:class:`~secagg.errors.ConfigurationError` naming it) before anything trains:
    loaded, it failed only after every earlier candidate had trained (second review of
    2026-12-08); ``run_simulation`` replaces a diverged prior before any fit, and says so.

    Why: the centralized baseline is the denominator of every claim; at one fixed
    learning rate (2, the federation's) it diverged on some seeds and small models, so
    it gets its own tuning, like any model a fraud team would deploy."""
    from secagg.apps.models.metrics import average_precision
    from secagg.apps.models.nets import build_model, fraud_loss, set_trainable
    from secagg.apps.models.training import scores, train_plain
    from secagg.dp.parameter_vector import flat_parameters, load_flat_parameters

    if customers is not None and customers.shape != y.shape:
        raise ValueError(f"{customers.shape} customer ids for {y.shape} rows")
    if days is not None and np.shape(days) != y.shape:
        raise ValueError(f"{np.shape(days)} row times for {y.shape} rows")
    if validation not in (*_FALLBACK, "row"):
        raise ValueError(f"no validation {validation!r}: world, time, customer or row")
    for name, start in starts.items():
        bad = 0 if start is None else int(np.sum(~np.isfinite(np.asarray(start, np.float64))))
        if bad:
            raise ConfigurationError(
                f"the {name} start holds {bad} NaN or infinite parameters: a diverged "
                "model is no place to start a fit from"
            )
    plan = _validation_plan(config, y, label, validation, customers, days, world)
    epochs = min(TUNING_MAX_EPOCHS, config.epochs)

    def fresh(start: np.ndarray | None) -> Any:
        model = build_model(config.model, x.shape[1], seed=config.seed)
        if start is not None:
            load_flat_parameters(model, np.asarray(start, dtype=np.float32))
        return set_trainable(model, "all")

    best = (-math.inf, "scratch", TUNING_LEARNING_RATES[0], epochs)
    kept: np.ndarray | None = None  # "world": the chosen epoch's parameters
    if plan.scheme != "none":
        # the two sides of the split, made once: every start and learning rate trains on
        # the same rows and every epoch validates on the same rows (a boolean mask
        # copies: indexing per candidate and per epoch copied the held-out rows up to
        # 4 x 12 times a fit, and the training rows 4 times)
        if plan.held is None:  # another data set: every candidate trains on all rows
            assert plan.x_held is not None and plan.y_held is not None
            x_fit, y_fit, x_held, y_held = x, y, plan.x_held, plan.y_held
        else:
            x_fit, y_fit = x[~plan.held], y[~plan.held]
            x_held, y_held = x[plan.held], y[plan.held]
        for name, start in starts.items():
            for lr in TUNING_LEARNING_RATES:
                seen: list[float] = []
                candidate = (name, lr)

                def validate(
                    epoch: int, model: Any, seen: list[float] = seen, candidate: Any = candidate
                ) -> None:
                    nonlocal best, kept
                    s = scores(model, x_held)
                    finite = bool(np.isfinite(s).all())
                    seen.append(average_precision(y_held, s) if finite else -1)
                    # kept, not refitted; never a diverged epoch (its parameters would
                    # not load: where every candidate diverged, the fallback below refits
                    # one and the run says the prior diverged, instead of stopping)
                    if plan.held is None and finite and seen[-1] > best[0]:
                        best = (seen[-1], *candidate, epoch)  # epoch counts from 1
                        kept = flat_parameters(model)

                train_plain(
                    fresh(start),
                    x_fit,
                    y_fit,
                    epochs=epochs,
                    batch_size=config.batch_size,
                    learning_rate=lr,
                    loss_fn=fraud_loss(config.positive_weight),
                    # a candidate validated on another data set is the model shipped:
                    # it trains as the refit of a held-out split would
                    seed=_derived_seed(
                        config, label, name, lr, *(() if plan.held is not None else ("final",))
                    ),
                    after_epoch=validate,
                )
                top = int(np.argmax(seen))
                if plan.held is not None and seen[top] > best[0]:
                    best = (seen[top], name, lr, top + 1)
    score, name, lr, chosen_epochs = best
    model = fresh(starts.get(name))
    if kept is not None:
        load_flat_parameters(model, kept)
    else:
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
        model,
        flat_parameters(model),
        name,
        lr,
        chosen_epochs,
        float(score),
        plan.described,
        plan.scheme,
    )


@dataclass(frozen=True)
class _ValidationPlan:
    """The rows a fit validates on: ``held`` rows of its own, or (``held`` None) another
    data set, ``x_held`` and ``y_held``; none at all when ``scheme`` is "none"."""

    held: np.ndarray | None
    x_held: np.ndarray | None
    y_held: np.ndarray | None
    scheme: str
    described: str


def _validation_plan(
    config: SimulationConfig,
    y: np.ndarray,
    label: str,
    asked: str,
    customers: np.ndarray | None,
    days: np.ndarray | None,
    world: tuple[np.ndarray, np.ndarray] | None,
) -> _ValidationPlan:
    """The validation ``asked`` for, or the first fallback the data can give, with the
    reasons of each fallback in its description."""
    reasons: list[str] = []
    scheme = asked
    while True:
        if scheme == "world":
            if world is None:
                reasons.append("world: no held-out public world (the prior is not public)")
            elif not np.asarray(world[1]).any():
                reasons.append("world: the held-out public worlds hold no fraud")
            else:
                x_world, y_world = world
                text = (
                    f"a held-out public world: {y_world.size} rows, {int(y_world.sum())} "
                    "fraud rows, none of them fitted"
                )
                return _ValidationPlan(None, x_world, y_world, "world", _why(reasons, text))
        elif scheme == "time":
            if days is None:
                reasons.append("time: no row times in this data")
            else:
                held = time_validation_split(days, TUNING_VALIDATION_SHARE)
                if y[held].sum() == 0 or y[~held].sum() == 0:
                    reasons.append("time: no fraud on one side of the latest fifth")
                else:
                    text = (
                        f"the latest {int(held.sum())} of {y.size} rows held out (from day "
                        f"{float(np.min(days[held])):.2f})"
                    )
                    return _ValidationPlan(held, None, None, "time", _why(reasons, text))
        elif scheme == "customer" and customers is None:
            reasons.append("customer: no customer ids in this data")
        else:  # customer or row: the draws these splits always made
            held, text = _held_out(config, y, label, customers if scheme == "customer" else None)
            if not held.any():
                return _ValidationPlan(None, None, None, "none", _why(reasons, text))
            return _ValidationPlan(held, None, None, scheme, _why(reasons, text))
        scheme = _FALLBACK[scheme]


def _why(reasons: list[str], text: str) -> str:
    """``text``, after the reasons the validation asked for fell back (if it did)."""
    return f"{text} (fell back: {'; '.join(reasons)})" if reasons else text


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
