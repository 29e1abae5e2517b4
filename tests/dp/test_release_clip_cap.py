"""The central mechanism never runs a round with a clip above its ``clip_cap``.

``clip_cap`` is the ring's value bound (``backend.value_bound``): the most a clipped
update may weigh and still fit the secure sum. :class:`~secagg.dp.release.CentralRelease`
held the adaptive clip's *steps* under it, but took the first round's clip (the
adaptive clip's initial value, or the fixed clip) as given: built with ``clip = 5``
and ``clip_cap = 1`` (the runtime's config check refuses that pair, the mechanism did
not), round 1 asked every client to clip at 5, above the cap, and its noise was sized
for 5. Now the mechanism refuses such a pair in one line naming both numbers (refuse,
not cap: a clip silently lowered would run a round the operator did not configure),
and a cap that is not a positive number (NaN passed every ``min`` and set the next
clip to NaN).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.config import DPSettings
from secagg.dp.release import CentralRelease, mechanism_for
from secagg.errors import ConfigurationError


def _central(*, clip: float, cap: float, adaptive: bool) -> CentralRelease:
    settings_ = DPSettings(
        unit="client", mechanism="central", clip=clip, noise_multiplier=1.0, adaptive_clip=adaptive
    )
    made = mechanism_for(
        settings_,
        dimension=4,
        bits=32,
        sample_rate=1.0,
        expected_clients=100.0,
        corrupt_fraction=0.0,
        seed=b"\x07" * 16,
        clip_cap=cap,
    )
    assert isinstance(made, CentralRelease)
    return made


@given(
    clip=st.floats(min_value=1e-3, max_value=1e3),
    ratio=st.floats(min_value=1.0 + 1e-9, max_value=1e6),
    adaptive=st.booleans(),
)
@settings(max_examples=30, deadline=None)
def test_a_first_clip_above_the_cap_is_refused_naming_both(
    clip: float, ratio: float, adaptive: bool
) -> None:
    cap = clip / ratio
    if not cap < clip:
        return
    with pytest.raises(ConfigurationError, match="clip_cap") as caught:
        _central(clip=clip, cap=cap, adaptive=adaptive)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("adaptive", [False, True])
def test_a_clip_at_the_cap_runs_at_it(adaptive: bool) -> None:
    made = _central(clip=1.0, cap=1.0, adaptive=adaptive)
    assert made.clip == 1.0


@pytest.mark.parametrize("cap", [math.nan, 0.0, -1.0, "1"])
def test_a_cap_that_is_no_positive_number_is_refused(cap: object) -> None:
    with pytest.raises(ConfigurationError, match="clip_cap"):
        _central(clip=1.0, cap=cap, adaptive=True)  # type: ignore[arg-type]
