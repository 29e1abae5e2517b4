"""The documented ranges of a ``secagg simulate`` configuration, as a test oracle.

Shared by the simulate config fuzz (tests/apps/simulation/test_simulation_config_fuzz.py)
and the CLI flag fuzz (tests/apps/test_cli_flag_fuzz.py): whatever door a value came
through, a config that loaded must hold it in its range (the module docstring of
secagg.apps.simulation.config, ``CAPS``, ``REAL_CAPS``, ``REAL_FLOORS``).
"""

from __future__ import annotations

import math
from typing import Any

from secagg.aggregation import BACKENDS
from secagg.apps.models import MODELS
from secagg.apps.simulation.config import (
    CAPS,
    CENTRALIZED_VALIDATIONS,
    ENGINES,
    MAX_EPSILON,
    MAX_PRIOR_EPSILON,
    MECHANISMS,
    MIN_DELTA,
    PARTITIONS,
    PRIOR_VALIDATIONS,
    PRIORS,
    REAL_CAPS,
    REAL_FLOORS,
    SERVER_OPTIMIZERS,
    SOURCES,
    STANDARDIZE,
    TRAINABLE,
    UNITS,
    SimulationConfig,
)


def _within(value: Any, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _positive_capped(value: Any, name: str) -> bool:
    return _within(value, REAL_FLOORS.get(name, 0.0), REAL_CAPS[name]) and value > 0


def _blank(value: Any) -> bool:
    return isinstance(value, str) and value.strip() == ""


def ranges_violated(c: SimulationConfig) -> list[str]:
    """The documented ranges a loaded config breaks: each one a bug."""
    checks = {
        "branches": _within(c.branches, 2, CAPS["branches"]),
        "rounds": _within(c.rounds, 1, CAPS["rounds"]),
        "seeds": _within(c.seeds, 1, CAPS["seeds"]),
        "seed": _within(c.seed, 0, CAPS["seed"] - c.seeds + 1),
        "model": c.model in MODELS,
        "backend": c.backend in BACKENDS,
        "dropout": _within(c.dropout, 0, 0.5) and c.dropout < 0.5,
        "tolerated_dropout": _within(c.tolerated_dropout, 0, 1) and c.tolerated_dropout < 1,
        "corrupt_fraction": _within(c.corrupt_fraction, 0, 1) and c.corrupt_fraction < 1,
        "out": c.out is None or not _blank(c.out),
        "sample_rate": _within(c.sample_rate, 0, 1) and c.sample_rate > 0,
        "engine": c.engine in ENGINES,
        "ray_address": c.ray_address is None or not _blank(c.ray_address),
        "ray_workers": c.ray_workers is None or _within(c.ray_workers, 1, CAPS["ray_workers"]),
        "tuning_seeds": c.tuning_seeds is None
        or all(type(s) is int and s >= 0 for s in c.tuning_seeds),
        "unit": c.unit in UNITS,
        "mechanism": c.mechanism in MECHANISMS.get(c.unit, ()),
        "epsilon": c.epsilon is None or (_within(c.epsilon, 0, MAX_EPSILON) and c.epsilon > 0),
        "noise_multiplier": c.noise_multiplier is None
        or _positive_capped(c.noise_multiplier, "noise_multiplier"),
        "delta": _within(c.delta, MIN_DELTA if c.private else 0, 1) and 0 < c.delta < 1,
        "clip": c.clip is None or _positive_capped(c.clip, "clip"),
        "update_clip": _positive_capped(c.update_clip, "update_clip"),
        "local_epochs": _within(c.local_epochs, 1, CAPS["local_epochs"]),
        "batch_size": _within(c.batch_size, 1, CAPS["batch_size"]),
        "learning_rate": _positive_capped(c.learning_rate, "learning_rate"),
        "positive_weight": _positive_capped(c.positive_weight, "positive_weight"),
        "server_learning_rate": _positive_capped(c.server_learning_rate, "server_learning_rate"),
        "server_momentum": _within(c.server_momentum, 0, 1)
        and c.server_momentum < 1
        and (c.server_optimizer != "adam" or c.server_momentum == 0),
        "server_optimizer": c.server_optimizer in SERVER_OPTIMIZERS,
        # FedAvg has no tau (a file's tau beside it is refused); FedAdam's is filled in
        # with the runtime's default when none is given, so a loaded one always has it
        "server_adam_tau": c.server_adam_tau is None
        if c.server_optimizer != "adam"
        else _within(
            c.server_adam_tau, REAL_FLOORS["server_adam_tau"], REAL_CAPS["server_adam_tau"]
        ),
        "prior": c.prior in PRIORS,
        "prior_path": c.prior_path is None or not _blank(c.prior_path),
        "prior_epsilon": c.prior_epsilon is None or _within(c.prior_epsilon, 0, MAX_PRIOR_EPSILON),
        "prior_delta": c.prior_delta is None
        or (_within(c.prior_delta, 0, 1) and c.prior_delta < 1),
        "trainable": c.trainable in TRAINABLE,
        "prior_validation": c.prior_validation in PRIOR_VALIDATIONS,
        "centralized_validation": c.centralized_validation in CENTRALIZED_VALIDATIONS,
        "source": c.source in SOURCES,
        "path": c.path is None or not _blank(c.path),
        "max_rows_per_customer": _within(c.max_rows_per_customer, 1, CAPS["max_rows_per_customer"]),
        "max_fraud_share": c.max_fraud_share is None
        or (_within(c.max_fraud_share, 0, 1) and c.max_fraud_share > 0),
        "standardize": c.standardize in STANDARDIZE,
        "stats_path": c.stats_path is None or not _blank(c.stats_path),
        "stats_bound": _positive_capped(c.stats_bound, "stats_bound"),
        "stats_noise_multiplier": _positive_capped(
            c.stats_noise_multiplier, "stats_noise_multiplier"
        ),
        "partition": c.partition in PARTITIONS,
        "partition_column": c.partition_column is None or not _blank(c.partition_column),
        "label": c.label is None or not _blank(c.label),
        "customer_column": c.customer_column is None or not _blank(c.customer_column),
        "alpha": _positive_capped(c.alpha, "alpha"),
        "train_rows": type(c.train_rows) is int,
        "test_rows_per_branch": type(c.test_rows_per_branch) is int,
    }
    if c.source == "synthetic":
        checks["train_rows"] = checks["train_rows"] and c.train_rows >= 100 * c.branches
        checks["test_rows_per_branch"] = (
            checks["test_rows_per_branch"] and c.test_rows_per_branch >= 100
        )
        checks["rows"] = c.train_rows + c.branches * c.test_rows_per_branch <= CAPS["rows"]
    checks["runs"] = c.rounds * c.seeds <= CAPS["runs"]
    checks["epochs"] = c.rounds * c.local_epochs <= CAPS["epochs"]
    return [name for name, ok in checks.items() if not ok]
