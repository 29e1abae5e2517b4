"""The server plans a fixed-size cohort as fixed, not as a Poisson draw.

:meth:`FederationConfig.plan_privacy` did not pass ``sampling.kind`` to the DP plan, so a
federation drawing exactly ``count`` clients a round was warned with the figure of
Poisson cohorts that may come out smaller (safe, but looser than what the run can
spend; DP review, 2026-12-06)."""

from __future__ import annotations

import re
import warnings

from secagg.dp.config import PrivacyCostWarning
from secagg.runtime.config import FederationConfig

CLIENTS = [f"branch-{i:02d}" for i in range(20)]


def _config(sampling: dict[str, object]) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "plan", "clients": CLIENTS, "dimension": 1_000, "rounds": 5},
            "sampling": sampling,
            "backend": {
                "name": "secagg+",
                "value_bound": 1.0,
                "dropout_fraction": 0.1,
                "corrupt_fraction": 0.05,
            },
            "dp": {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": 1.0},
        }
    )


def _warned_epsilon(config: FederationConfig) -> float:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config.plan_privacy()
    texts = [str(w.message) for w in caught if issubclass(w.category, PrivacyCostWarning)]
    assert len(texts) == 1, texts
    return max(float(v) for v in re.findall(r"epsilon = ([0-9.e+-]+)", texts[0]))


def _dp_plan(config: FederationConfig, kind: str) -> float:
    assert config.dp is not None
    plan = config.dp.plan(
        num_clients=len(config.clients),
        sample_rate=config.sample_rate,
        rounds=config.rounds,
        dimension=config.dimension,
        bits=config.backend.bits,
        corrupt_fraction=config.backend.corrupt_fraction,
        dropout_fraction=config.backend.dropout_fraction,
        sampling=kind,
    )
    assert plan is not None
    return plan.planned_epsilon_with_dropouts()


def test_a_fixed_cohort_is_warned_with_the_fixed_plan() -> None:
    config = _config({"kind": "fixed", "count": 10})
    fixed, poisson = _dp_plan(config, "fixed"), _dp_plan(config, "poisson")
    assert fixed < poisson  # the two plans differ here, so the test can tell them apart
    warned = _warned_epsilon(config)
    assert warned < poisson
    assert abs(warned - fixed) <= 0.01 * fixed + 0.01  # as printed


def test_a_poisson_cohort_is_still_warned_with_the_poisson_plan() -> None:
    config = _config({"kind": "poisson", "rate": 0.5})
    poisson = _dp_plan(config, "poisson")
    assert _warned_epsilon(config) >= poisson * 0.99
