"""Small worlds and starts for the tuned fits' tests (:mod:`secagg.apps.simulation.tuning`):
a logistic model that fits in milliseconds, rows whose fraud is a noisy linear rule, and
a start that ranks them (or ranks them backwards).

Why here: the tuned fits' start checks (tests/apps/simulation/test_tuning_start_checks.py)
need a world small enough to fit every candidate in milliseconds."""

from __future__ import annotations

import numpy as np

from secagg.apps.simulation.config import SimulationConfig

#: a logistic model: fits in milliseconds on the few hundred rows below
CONFIG = SimulationConfig(model="logistic", batch_size=32, rounds=3, local_epochs=1)
FEATURES = 4


def world(seed: int, rows: int = 400, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Rows whose fraud is a noisy linear rule of the features (about a sixth fraud),
    with customers of four rows each and a second, held-out world of the same rule;
    features of standard deviation ``scale`` (the rows' ranking does not depend on it)."""
    rng = np.random.default_rng(seed)  # test data, not a key, seed or mask
    direction = np.array([1.0, -0.5, 0.25, 0.0])

    def rows_of(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        signal = x @ direction + 0.3 * rng.normal(size=n)
        return scale * x, (signal > np.quantile(signal, 5 / 6)).astype(np.float32)

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


def start_vector(direction: np.ndarray, scale: float) -> np.ndarray:
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
