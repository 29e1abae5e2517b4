"""A restart's adaptive clip is one a round could have set, or the restore is refused.

``CentralRelease.restore`` took a stored round's ``next_clip`` as it was: a state from
before the clip had a floor and a ceiling (ce60ce4), or an altered one, restarted the
federation at 1e-320 or at 1e300 (beyond ``clip_cap``, the ring's value bound), and a
stored NaN, inf, 0 or -1 only failed the next round's release, after its sum was
unmasked; "0.5" and True passed as 0.5 and 1. A finite positive clip is now clamped into
``[min_clip, min(max_clip, clip_cap)]``, as a round's own step is; anything else is a
:class:`ConfigurationError` that changes neither the clip nor the accountant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.config import DPSettings
from secagg.dp.release import CentralRelease, mechanism_for
from secagg.errors import ConfigurationError

_CAP = 100.0  # the ring's value bound the server passes as clip_cap
_INITIAL = 0.1  # default floor and ceiling: 1e-7 and 1e5


def _adaptive(clip_cap: float = _CAP) -> CentralRelease:
    mechanism = mechanism_for(
        DPSettings(
            clip=_INITIAL,
            noise_multiplier=1.0,
            delta=1e-5,
            adaptive_clip=True,
            count_noise_stddev=1.0,
        ),
        dimension=8,
        bits=32,
        sample_rate=1.0,
        expected_clients=4.0,
        corrupt_fraction=0.25,
        seed=b"s" * 16,
        clip_cap=clip_cap,
    )
    assert isinstance(mechanism, CentralRelease)
    return mechanism


def _stored_round() -> dict[str, Any]:
    """What a real adaptive round stores (its charge, the clip applied and the next)."""
    mechanism = _adaptive()
    return mechanism.release(np.zeros(9), contributors=4, participants=4, noise_added=0).store


_STORED = _stored_round()


@pytest.mark.parametrize(
    "stored_clip",
    [math.nan, math.inf, -math.inf, 0.0, -1.0, -1e-300, "0.5", True, None, [0.5]],
    ids=repr,
)
def test_a_stored_clip_no_round_can_have_is_refused_and_changes_nothing(
    stored_clip: object,
) -> None:
    mechanism = _adaptive()
    before = (mechanism.clip, mechanism.accountant.epsilon(), mechanism.accountant.everyone)
    with pytest.raises(ConfigurationError, match="adaptive clip for the next round is stored"):
        mechanism.restore({**_STORED, "next_clip": stored_clip})
    after = (mechanism.clip, mechanism.accountant.epsilon(), mechanism.accountant.everyone)
    assert after == before
    assert mechanism.adaptive is not None and mechanism.adaptive.clip == _INITIAL


@pytest.mark.parametrize(
    ("stored_clip", "restored"),
    [(1e-320, _INITIAL / 1e6), (1e-9, _INITIAL / 1e6), (1e300, _CAP), (250.0, _CAP)],
)
def test_a_stored_clip_past_the_floor_or_the_cap_is_clamped(
    stored_clip: float, restored: float
) -> None:
    mechanism = _adaptive()
    mechanism.restore({**_STORED, "next_clip": stored_clip})
    assert mechanism.clip == pytest.approx(restored, rel=1e-12)
    assert mechanism.adaptive is not None and mechanism.adaptive.clip == mechanism.clip
    # the next round applies the clamped clip and records it
    out = mechanism.release(np.zeros(9), contributors=4, participants=4, noise_added=0)
    assert out.store["clip_applied"] == mechanism.ledger_block(out.store)["clip"]
    assert out.store["clip_applied"] == pytest.approx(restored, rel=1e-12)


def test_without_a_cap_the_ceiling_is_max_clip() -> None:
    mechanism = _adaptive(clip_cap=math.inf)
    mechanism.restore({**_STORED, "next_clip": 1e300})
    assert mechanism.clip == pytest.approx(_INITIAL * 1e6)


@settings(max_examples=200, deadline=None)
@given(
    stored_clip=st.floats(
        min_value=5e-324, allow_nan=False, allow_infinity=False, allow_subnormal=True
    ),
    # at least the initial clip: a cap below it is refused at construction
    # (tests/dp/test_release_clip_cap.py)
    clip_cap=st.floats(min_value=_INITIAL, max_value=1e8) | st.just(math.inf),
)
def test_any_positive_stored_clip_restores_within_the_bounds_at_the_same_epsilon(
    stored_clip: float, clip_cap: float
) -> None:
    reference = _adaptive(clip_cap)
    reference.restore(_STORED)
    mechanism = _adaptive(clip_cap)
    mechanism.restore({**_STORED, "next_clip": stored_clip})
    adaptive = mechanism.adaptive
    assert adaptive is not None and adaptive.min_clip is not None and adaptive.max_clip is not None
    ceiling = min(adaptive.max_clip, clip_cap)
    assert mechanism.clip == min(ceiling, max(adaptive.min_clip, stored_clip))
    assert adaptive.clip == mechanism.clip
    # the clip is post-processing: the round is charged as it was
    assert mechanism.accountant.epsilon() == reference.accountant.epsilon()
