"""The DP plan counts as many tolerated dropouts as the masking protocol is sized for.

SecAgg+ sizes a round of ``n`` for ``floor((delta + 1e-14) * n)`` dropouts (the nudge
makes 0.29 * 100, 28.999999999999996 in floats, read as the 29 a person means). The DP
plan floored ``delta * n`` without it: 28 of 100 at 0.29, so a round the protocol
completes with 29 dropouts kept one honest noise share fewer than the plan counted.
The simulator sized its distributed noise for that count (one share too many) and
the plan's "epsilon with dropouts" was the figure of 28 dropouts, not of 29.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import pytest

from secagg.dp.config import DPConfig, PrivacyCostWarning
from secagg.dp.distributed import assumed_colluders, planned_honest_shares
from secagg.protocol.graph_params import tolerated_dropouts


def test_a_cohort_of_100_at_0_29_loses_29_shares() -> None:
    # 100 expected, 2 colluders (the floor), 29 dropouts: 69 honest shares, not 70
    assert planned_honest_shares(100, 0.0, 0.29) == 100 - 2 - 29
    assert tolerated_dropouts(100, 0.29) == 29


def test_the_count_is_the_decimal_fraction_of_the_cohort() -> None:
    """Every fraction a person writes with two decimals, every cohort up to 300: the
    dropouts counted are ``floor(p/100 * n)`` in exact arithmetic, as the protocol
    sizes them (before: 49 of these pairs were one short, e.g. 0.35 of 180)."""
    wrong = []
    for percent in range(1, 90):
        fraction = percent / 100
        for cohort in range(2, 301):
            exact = math.floor(Fraction(percent, 100) * cohort)
            colluders = assumed_colluders(cohort, 0.0)
            counted = cohort - colluders - planned_honest_shares(cohort, 0.0, fraction)
            if counted != min(exact, cohort - colluders - 1):
                wrong.append((fraction, cohort, counted, exact))
    assert wrong == []


def test_the_plan_states_the_29_dropouts_the_backend_tolerates() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyCostWarning)
        config = DPConfig(
            unit="client",
            mechanism="distributed",
            noise_multiplier=1.0,
            clip=1.0,
            delta=1e-5,
            num_clients=100,
            rounds=2,
            dimension=1_000,
            dropout_fraction=0.29,
        )
    assert config.client_level_cost().tolerated_dropouts == 29


@pytest.mark.parametrize("fraction", [-0.1, 1.0, float("nan"), True])
def test_a_fraction_outside_the_protocols_range_is_refused_by_name(fraction: object) -> None:
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="dropout_fraction"):
        tolerated_dropouts(100, fraction)  # type: ignore[arg-type]
