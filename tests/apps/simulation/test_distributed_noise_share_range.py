"""The simulator calibrates the distributed noise for every honest share count its plan
allows: from the fewest (tolerated dropouts gone) to all of the expected cohort's.

Why: the DDG bound is not monotone in the count, so noise sized for the fewest shares
alone can fall short when nobody drops (tests/dp/test_ddg_calibration_share_range.py);
the plan's own ``planned_epsilon_with_dropouts`` already bounded that range, the
calibration did not."""

from __future__ import annotations

from typing import Any

import pytest

import secagg.dp.distributed as distributed
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.federation_plan import (
    _distributed_noise,
    honest_shares,
    most_honest_shares,
)


def test_the_calibration_is_given_the_fewest_and_the_most_honest_shares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: dict[str, Any] = {}

    def calibrate(**kwargs: Any) -> float:
        asked.update(kwargs)
        return 1.5

    monkeypatch.setattr(distributed, "calibrate_noise_multiplier", calibrate)
    # 300 of 1 000 expected a round, all 50 colluders of the population in it, 10 % dropping
    config = SimulationConfig(branches=1000, world="many", train_rows=300_000,
                              test_rows_per_branch=200, unit="client", mechanism="distributed",
                              epsilon=3.0, sample_rate=0.3, rounds=10, corrupt_fraction=0.05,
                              tolerated_dropout=0.1)  # fmt: skip
    assert _distributed_noise(config, 2081) == 1.5
    assert (honest_shares(config), most_honest_shares(config)) == (300 - 50 - 30, 300 - 50)
    assert asked["honest_shares"] == 220
    assert asked["most_shares"] == 250
