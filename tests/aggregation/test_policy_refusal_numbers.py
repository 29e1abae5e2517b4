"""A branch's refusal shows numbers that compare as the values it compared did.

Hostile review of the branch's own policy (2026-12-06): the refusals printed the round's
value and the policy's bound at 6 significant digits, so a server's noise multiplier of
0.9999999999999999 against a floor of 1 was refused as ``noise multiplier 1 < 1``, a clip
just above the cap as ``clip 1 > 1``, a noise the whole round delivers of 0.9996 as ``1 <
1`` (``.3g`` rounds up: more noise than the round carries), and a floor typed just above
the largest a federation sets as ``must be at most 10000, not 10000``. The comparisons
were right; their lines contradicted themselves.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.policy import MAX_CLIP, BranchPolicy
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError, PolicyRefused

NUMBER = r"(-?[\d.]+(?:e[-+]?\d+)?)"


def _pair(message: str, pattern: str) -> tuple[float, float]:
    """The two numbers ``pattern`` (with two ``{}``) finds in ``message``."""
    found = re.search(pattern.format(NUMBER, NUMBER), message)
    assert found is not None, message
    return float(found.group(1)), float(found.group(2))


def _refusal(policy: BranchPolicy, **share: object) -> str:
    with pytest.raises(PolicyRefused) as caught:
        policy.check_noise_share(**share)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_multiplier_just_below_the_floor_reads_below_it() -> None:
    message = _refusal(
        BranchPolicy(min_noise_multiplier=1.0),
        noise_multiplier=math.nextafter(1.0, 0.0),
        clip=0.5,
        expected_clients=4,
        num_clients=4,
    )
    shown, floor = _pair(message, r"noise multiplier {} < {}")
    assert shown < floor, message


def test_a_clip_just_above_the_cap_reads_above_it() -> None:
    with pytest.raises(PolicyRefused) as caught:
        BranchPolicy(max_clip=1.0).check_clip(math.nextafter(1.0, 2.0))
    shown, cap = _pair(str(caught.value), r"clip {} > {}")
    assert shown > cap, caught.value


def test_the_noise_a_round_delivers_is_never_shown_larger() -> None:
    """z = 1 split over 1250 in a round of 1249: sqrt(1249/1250) = 0.9996 delivered."""
    message = _refusal(
        BranchPolicy(min_noise_multiplier=1.0),
        noise_multiplier=1.0,
        clip=0.5,
        expected_clients=1250,
        num_clients=1249,
    )
    shown, floor = _pair(message, r"carries noise multiplier {} < {}")
    assert shown <= math.sqrt(1249 / 1250) and shown < floor, message


def test_a_unit_sensitivity_just_below_the_branchs_reads_below_it() -> None:
    message = _refusal(
        BranchPolicy(record_sensitivity=0.1),
        noise_multiplier=1.0,
        clip=math.nextafter(0.1, 0.0),
        expected_clients=4,
        record_level=True,
        vector_bound=1.0,
        num_clients=4,
    )
    shown, needed = _pair(message, r"change of {} per protected unit; .* by {}")
    assert shown < needed, message


def test_a_client_level_share_is_refused_as_one_not_as_a_unit_sensitivity() -> None:
    """A branch with record_sensitivity takes record-level shares only: a client-level
    share's clip is the whole update's, which the refusal called a per-unit change."""
    message = _refusal(
        BranchPolicy(record_sensitivity=0.1),
        noise_multiplier=1.0,
        clip=0.5,
        expected_clients=4,
        num_clients=4,
    )
    assert "client level" in message and "per protected unit" not in message, message


@pytest.mark.parametrize(
    ("key", "most"),
    [
        ("min_noise_multiplier", MAX_NOISE_MULTIPLIER),
        ("max_clip", MAX_CLIP),
        ("record_sensitivity", MAX_CLIP),
    ],
)
def test_a_policy_just_above_a_largest_value_reads_above_it(key: str, most: float) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BranchPolicy(**{key: math.nextafter(most, math.inf)})
    shown_most, given = _pair(str(caught.value), r"at most {} .*, not {}:")
    assert given > shown_most, caught.value


@given(
    floor=st.floats(0.05, 100.0),
    below=st.floats(0.0, 1.0, exclude_max=True),
    ulps=st.integers(1, 4),
)
@settings(max_examples=50, deadline=None)
def test_any_refused_multiplier_reads_below_the_floor(
    floor: float, below: float, ulps: int
) -> None:
    """A multiplier anywhere below the floor, a few ulps below it included."""
    z = floor * below if below > 0.5 else floor
    for _ in range(ulps if below <= 0.5 else 0):
        z = math.nextafter(z, 0.0)
    if not 0 < z < floor:
        return
    message = _refusal(
        BranchPolicy(min_noise_multiplier=floor),
        noise_multiplier=z,
        clip=0.5,
        expected_clients=4,
        num_clients=4,
    )
    shown, shown_floor = _pair(message, r"noise multiplier {} < {}")
    assert shown < shown_floor, message
