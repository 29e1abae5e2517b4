"""The seeds a simulation derives from its ``seed``: one label per use, hashed.

Every seeded draw of a run (the tuning's validation split, plain SGD's shuffles, the
DP-SGD samplers and noise, the customer-row caps, the fixed-point rounding, the
verdicts' bootstrap) takes its own seed from :func:`_derived_seed` under a label naming
the use, so no two uses share a stream and the same ``seed`` replays the same run. Noise
derived from a known seed protects nothing: a simulation measures utility, it is no
private release (keys and masks stay fresh randomness; see the runtime).
"""

from __future__ import annotations

import hashlib

from secagg.apps.simulation.config import SimulationConfig


def _derived_seed(config: SimulationConfig, *parts: object) -> int:
    label = "/".join(str(p) for p in ("secagg/v1/simulation", config.seed, *parts))
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:7], "big")


def _replay_bytes(config: SimulationConfig, *parts: object) -> bytes:
    return _derived_seed(config, *parts).to_bytes(8, "big")


def _customer_rows_seed(config: SimulationConfig, branch_name: str) -> bytes:
    """The seed that chooses which rows of a customer with more than
    ``max_rows_per_customer`` a branch keeps. One seed for the data's cap
    (:mod:`~secagg.apps.simulation.data`) and the DP-SGD grouping
    (:func:`~secagg.apps.simulation.branch_training.customer_dataset`): so both keep the
    same rows, and the feature statistics see the rows DP-SGD trains on."""
    return _replay_bytes(config, "customer-rows", branch_name)
