"""A branch's clip check takes only a clip: a positive number, or none at all.

Hostile policy review (2026-12-07): ``BranchPolicy.check_clip`` compared the round's clip
with ``max_clip`` alone, so ``-1.0``, ``0.0`` and ``-inf`` passed a policy of ``max_clip =
1`` (``-1 <= 1``), ``True`` passed as a clip of 1, and without ``max_clip`` even ``"1"``
passed; the round went on to train until clipping refused the number. The wire's decoder
refuses a non-positive clip, so this is the library's own callers' case: the check now
refuses what no update can be clipped to, with or without a cap, in a typed error.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError, PolicyRefused

NOT_A_CLIP = [-1.0, 0.0, -0.0, -math.inf, -1e-300, True, False, "1", b"1", [1.0]]


@pytest.mark.parametrize(
    "policy", [BranchPolicy(max_clip=1.0), BranchPolicy()], ids=["cap", "no-cap"]
)
@pytest.mark.parametrize("clip", NOT_A_CLIP, ids=repr)
def test_what_no_update_can_be_clipped_to_is_refused(policy: BranchPolicy, clip: object) -> None:
    with pytest.raises(ConfigurationError, match="a round's clip is a positive number") as caught:
        policy.check_clip(clip)  # type: ignore[arg-type]
    assert not isinstance(caught.value, PolicyRefused)  # a mistake, not a weaker round
    assert "\n" not in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(clip=st.floats(max_value=0.0, allow_nan=False))
def test_no_non_positive_float_passes_a_cap(clip: float) -> None:
    with pytest.raises(ConfigurationError, match="positive"):
        BranchPolicy(max_clip=1.0).check_clip(clip)


def test_a_clip_and_no_clip_keep_their_meaning() -> None:
    capped = BranchPolicy(max_clip=1.0)
    capped.check_clip(0.5)
    capped.check_clip(1e-300)  # tiny but a clip
    for none in (None, math.nan, math.inf):  # no clip: refused by a cap, taken without one
        with pytest.raises(PolicyRefused, match="does not clip"):
            capped.check_clip(none)
        BranchPolicy().check_clip(none)
    with pytest.raises(PolicyRefused, match="max_clip"):
        capped.check_clip(2.0)
