"""The server's plan warning states what a run within ``backend.dropout_fraction`` can cost.

:meth:`FederationConfig.plan_privacy` (the server runs it before any data moves)
warned with the epsilon of rounds that keep every honest noise share, while the
backend tolerates ``dropout_fraction`` of the cohort dropping and each round is charged
at the shares it kept: 4 clients tolerating 1 dropout were warned below what two
rounds with one dropout each were charged (review, 2026-12-06).
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from secagg.dp.config import PrivacyCostWarning
from secagg.runtime.config import FederationConfig

NAMES = ["a", "b", "c", "d"]
DIMENSION = 1_000
ROUNDS = 2


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "plan",
                "clients": NAMES,
                "dimension": DIMENSION,
                "rounds": ROUNDS,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {
                "name": "secagg+",
                "value_bound": 1.0,
                "dropout_fraction": 0.25,
                "corrupt_fraction": 0.05,
            },
            "dp": {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": 1.0},
        }
    )


def test_the_plan_warning_is_not_below_a_run_within_the_tolerated_dropouts() -> None:
    config = _config()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config.plan_privacy()
    texts = [str(w.message) for w in caught if issubclass(w.category, PrivacyCostWarning)]
    assert len(texts) == 1, texts
    warned = max(float(v) for v in re.findall(r"epsilon = ([0-9.e+-]+)", texts[0]))

    # the run: every round one of the 4 drops out (the 25 % the backend tolerates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyCostWarning)
        mechanism = config.mechanism(seed=b"plan-dropouts-16")
    signed = 0.0
    for _ in range(ROUNDS):
        signed = mechanism.release(
            np.zeros(DIMENSION), contributors=3, participants=4, noise_added=0.0
        ).epsilon
    assert warned >= signed, (texts[0], signed)
    assert "1 of 4" in texts[0], texts[0]


def test_a_central_round_is_not_charged_more_for_its_dropouts() -> None:
    """Why the central plan keeps one figure: the server adds the whole noise, so a
    round that loses a client is charged what a full one is."""
    data = {
        "federation": {"name": "plan", "clients": NAMES, "dimension": DIMENSION, "rounds": 2},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.25},
        "dp": {"mechanism": "central", "clip": 1.0, "noise_multiplier": 1.0},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = FederationConfig.from_dict(data)
        config.plan_privacy()
        mechanism = config.mechanism(seed=b"plan-dropouts-16")
    texts = [str(w.message) for w in caught if issubclass(w.category, PrivacyCostWarning)]
    assert texts and all(len(re.findall(r"epsilon = ", text)) == 1 for text in texts), texts
    full = mechanism.epsilon_after_next(contributors=4, participants=4)
    short = mechanism.epsilon_after_next(contributors=3, participants=4)
    assert short == full
