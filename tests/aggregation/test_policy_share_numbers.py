"""A branch's noise-share check takes only numbers a noise share can have.

Hostile policy review (2026-12-07): ``BranchPolicy.check_noise_share`` compared the
share's numbers with the branch's settings alone. A noise multiplier of NaN passed a
``min_noise_multiplier = 1`` (``NaN < 1`` is false), as did +inf; ``expected_clients``
of 0 or -3 passed; a record-level share of clip NaN passed ``record_sensitivity = 0.5``,
and one whose vector bound was below its clip was taken. The masking spec's decoder and
its mechanism refuse each of these, so they come from the library's own callers (another
backend's spec, a harness); the check now refuses them, whoever calls, in a typed line.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError, PolicyRefused

FLOOR = BranchPolicy(min_noise_multiplier=1.0, max_clip=1.0)
RECORD = BranchPolicy(min_noise_multiplier=1.0, max_clip=1.0, record_sensitivity=0.5)
HONEST: dict[str, Any] = {
    "noise_multiplier": 2.0,
    "clip": 1.0,
    "expected_clients": 2,
    "num_clients": 2,
}
RECORD_LEVEL: dict[str, Any] = {**HONEST, "clip": 0.5, "record_level": True, "vector_bound": 0.9}


@pytest.mark.parametrize(
    ("policy", "share"),
    [
        (FLOOR, {**HONEST, "noise_multiplier": math.nan}),
        (FLOOR, {**HONEST, "noise_multiplier": math.inf}),
        (FLOOR, {**HONEST, "noise_multiplier": True}),
        (FLOOR, {**HONEST, "expected_clients": 0}),
        (FLOOR, {**HONEST, "expected_clients": -3}),
        (FLOOR, {**HONEST, "expected_clients": 2.5}),
        (FLOOR, {**HONEST, "num_clients": 0}),
        (FLOOR, {**HONEST, "clip": -1.0}),
        (RECORD, {**RECORD_LEVEL, "clip": math.nan}),
        (RECORD, {**RECORD_LEVEL, "vector_bound": 0.1}),
        (RECORD, {**RECORD_LEVEL, "vector_bound": math.nan}),
    ],
    ids=[
        "z-nan", "z-inf", "z-bool", "expected-0", "expected-negative", "expected-float",
        "round-0", "clip-negative", "record-clip-nan", "bound-below-clip", "bound-nan",
    ],
)  # fmt: skip
def test_numbers_no_share_has_are_a_typed_mistake(policy: BranchPolicy, share: dict) -> None:
    with pytest.raises(ConfigurationError, match=r"a (record-level )?noise share's") as caught:
        policy.check_noise_share(**share)
    assert not isinstance(caught.value, PolicyRefused)  # a mistake, not a weaker round
    assert "\n" not in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(z=st.floats(allow_nan=True, allow_infinity=True))
def test_a_share_below_the_floor_is_never_taken(z: float) -> None:
    """Whatever float the share's z is, a branch with a floor of 1 takes it only at 1 or
    more (a typed mistake or a refusal otherwise)."""
    try:
        FLOOR.check_noise_share(**{**HONEST, "noise_multiplier": z})
    except ConfigurationError:
        return
    assert z >= 1.0


def test_honest_shares_are_still_taken() -> None:
    FLOOR.check_noise_share(**HONEST)
    RECORD.check_noise_share(**RECORD_LEVEL)
    BranchPolicy().check_noise_share(noise_multiplier=None, clip=None, expected_clients=None)


@pytest.mark.parametrize(
    "huge", [10**400, 10**5000, -(10**5000)], ids=["past-floats", "past-repr", "negative"]
)
def test_an_integer_past_the_floats_is_named_by_its_digits(huge: int) -> None:
    """``math.isfinite(10**400)`` raised OverflowError, and ``repr`` of an integer of more
    than 4 300 digits a ValueError: neither is a refusal's line."""
    with pytest.raises(ConfigurationError, match="noise share's noise multiplier"):
        FLOOR.check_noise_share(**{**HONEST, "noise_multiplier": huge})
    with pytest.raises(ConfigurationError, match="noise share's expected clients"):
        FLOOR.check_noise_share(**{**HONEST, "expected_clients": -abs(huge)})
    with pytest.raises(ConfigurationError, match="a round's clip is a positive number"):
        BranchPolicy().check_clip(huge)
