"""The tuned non-private fits: the public prior and the centralized baseline.

Neither is trained at one fixed learning rate: a start, a learning rate and an epoch
count are chosen on a held-out share of the training rows (never on a test set), then
the model is refitted on all of them. Why: the centralized baseline is the denominator
of every claim, and at the federation's learning rate it diverged on some seeds and
small models, so it is tuned like any model a fraud team would deploy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.seeding import _derived_seed

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
    )


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
    from secagg.dp.parameter_vector import flat_parameters, load_flat_parameters

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
