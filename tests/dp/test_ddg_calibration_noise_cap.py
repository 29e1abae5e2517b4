"""The distributed discrete Gaussian's calibration stops at the most noise a federation
takes (``MAX_NOISE_MULTIPLIER``) and says the budget is out of reach there.

Found 2026-12-07 (second review of the noise-once defaults): ``--epsilon 1e-3`` with the
noise added once went on searching to z = 2e5-9e5 (and found *less* noise for a smaller
epsilon: the bound's floor from discreteness is about 0.02 at any z, so the grid ended
wherever its 500 steps ran out), and the federation's settings then refused that z by
naming ``dp.noise_multiplier``, a key the user never set.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.dp.distributed import calibrate_noise_multiplier
from secagg.errors import BudgetUnreachable

#: the default record-level plan's shape: 8 branches, 4 to 8 honest shares, a customer
#: moving the mean by C / N
RECORD = dict(
    delta=1e-5,
    dimension=2081,
    clip=1e-4,
    expected_clients=8,
    honest_shares=4,
    most_shares=8,
    vector_bound=10.0,
)


@pytest.mark.parametrize("epsilon", [1e-3, 1e-2])
def test_a_budget_below_the_floor_is_unreachable_at_the_cap(epsilon: float) -> None:
    with pytest.raises(BudgetUnreachable) as refused:
        calibrate_noise_multiplier(epsilon=epsilon, rounds=2, **RECORD)
    exc = refused.value
    assert exc.noise_multiplier == MAX_NOISE_MULTIPLIER
    assert exc.spent > epsilon
    assert f"even noise_multiplier {MAX_NOISE_MULTIPLIER:g} (the most" in str(exc)
    assert f"epsilon {epsilon:g} is unreachable" in str(exc)


def test_the_default_plan_is_unchanged() -> None:
    """ε = 3 over 30 rounds: the z of docs/results.md (11.78)."""
    z = calibrate_noise_multiplier(epsilon=3.0, rounds=30, **RECORD)
    assert z == pytest.approx(11.775150013082092, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    epsilon=st.floats(min_value=1e-4, max_value=10.0),
    rounds=st.integers(min_value=1, max_value=50),
)
def test_never_more_than_a_federation_takes(epsilon: float, rounds: int) -> None:
    """Every answer is within the cap and meets its budget; every refusal is typed."""
    try:
        z = calibrate_noise_multiplier(epsilon=epsilon, rounds=rounds, **RECORD)
    except BudgetUnreachable as exc:
        assert exc.noise_multiplier <= MAX_NOISE_MULTIPLIER
        assert exc.spent > epsilon
    else:
        assert 0 < z <= MAX_NOISE_MULTIPLIER
