"""What a tuned fit accepts as a start (the centralized baseline's prior): a start with
a NaN or an infinity, or of another model's size, is a typed error, and a start is
trained like any candidate, deterministically per seed.

Why: a start with a non-finite parameter failed only after scratch's every candidate
had trained (second review of 2026-12-08), and the untrained-start candidate that
review examined was dropped (docs/results.md, "What helped, what did not")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from secagg.apps.simulation import tuning
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError

#: a logistic model: fits in milliseconds on the few hundred rows below
CONFIG = SimulationConfig(model="logistic", batch_size=32, rounds=3, local_epochs=1)
FEATURES = 4


def _world(seed: int, rows: int = 400) -> dict[str, np.ndarray]:
    """Rows whose fraud is a noisy linear rule of the features (about a sixth fraud),
    with customers of four rows each and a second, held-out world of the same rule."""
    rng = np.random.default_rng(seed)  # test data, not a key, seed or mask
    direction = np.array([1.0, -0.5, 0.25, 0.0])

    def rows_of(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        signal = x @ direction + 0.3 * rng.normal(size=n)
        return x, (signal > np.quantile(signal, 5 / 6)).astype(np.float32)

    x, y = rows_of(rows)
    x_world, y_world = rows_of(rows // 2)
    return {
        "x": x,
        "y": y,
        "customers": np.arange(rows) // 4,
        "x_world": x_world,
        "y_world": y_world,
        "direction": direction,
    }


def _start(direction: np.ndarray, scale: float) -> np.ndarray:
    """A logistic model's flat parameters ranking rows by ``scale * direction``."""
    from secagg.apps.models.nets import build_model
    from secagg.dp.parameter_vector import flat_parameters, load_flat_parameters

    model = build_model("logistic", FEATURES, seed=0)
    vector = flat_parameters(model).copy()
    assert vector.size == FEATURES + 1  # the weights, then the bias
    vector[:FEATURES] = scale * direction
    vector[FEATURES] = 0.0
    load_flat_parameters(model, vector)
    return flat_parameters(model)


def _fit(world: dict[str, np.ndarray], starts: dict[str, Any], validation: str) -> Any:
    return tuning.fit_tuned(
        CONFIG,
        world["x"],
        world["y"],
        starts,
        "centralized",
        customers=world["customers"] if validation == "customer" else None,
        validation=validation,
        world=(world["x_world"], world["y_world"]) if validation == "world" else None,
    )


@pytest.mark.parametrize("validation", ["row", "world", "customer"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_start_not_all_finite_is_refused_before_any_training(
    monkeypatch: pytest.MonkeyPatch, bad: float, validation: str
) -> None:
    """A start with a NaN or an infinity is a typed error naming it, before any
    candidate trains (it failed only after scratch's every candidate had trained)."""
    from secagg.apps.models import training

    trained: list[int] = []
    original = training.train_plain

    def spy(*a: Any, **kw: Any) -> Any:
        trained.append(1)
        return original(*a, **kw)

    monkeypatch.setattr(training, "train_plain", spy)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(11)
    start = _start(world["direction"], 3.0)
    start[2] = bad
    with pytest.raises(ConfigurationError, match=r"the prior start holds 1 NaN or infinite"):
        _fit(world, {"scratch": None, "prior": start}, validation)
    assert trained == []


@pytest.mark.parametrize("size", [0, 4, 6])
def test_a_start_of_another_size_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """A start that is not this model's parameters (another model's file) is refused
    with the load's ConfigurationError, never scored or shipped."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 1)
    world = _world(5)
    start = np.zeros(size, dtype=np.float32)
    with pytest.raises(ConfigurationError, match=r"expected a flat vector of 5 parameters"):
        _fit(world, {"scratch": None, "prior": start}, "row")


@pytest.mark.parametrize("validation", ["row", "world", "customer"])
def test_a_start_is_trained_and_the_fit_replays(
    monkeypatch: pytest.MonkeyPatch, validation: str
) -> None:
    """A start is a trained candidate (one epoch at least, a learning rate of the
    grid), never shipped as it is, and the same inputs give the same fit bit for bit."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 3)
    world = _world(7)
    start = _start(world["direction"], 3.0)
    fit = _fit(world, {"prior": start}, validation)
    assert fit.start == "prior" and 1 <= fit.epochs <= 3
    assert fit.learning_rate in tuning.TUNING_LEARNING_RATES
    assert not np.array_equal(fit.vector, start)
    again = _fit(world, {"prior": start}, validation)
    assert np.array_equal(fit.vector, again.vector)
    assert fit.choice() == again.choice()
