"""The adaptive clip's learning rate is bounded above, so its geometric step stays finite.

Upper-bounds review (2026-12-05): ``dp.clip_learning_rate = 2000`` (or 1e300) loaded,
and the first round's close failed inside the server with an OverflowError ("math
range error") from ``math.exp``; at 1418 the clip was 8e307 after one round and inf
after two. Past :data:`MAX_CLIP_LEARNING_RATE` the federation file is refused naming
the key, and :class:`AdaptiveClipping` refuses it naming its argument.
"""

from __future__ import annotations

import math
import warnings

import pytest

from secagg.dp.adaptive import MAX_CLIP_LEARNING_RATE, AdaptiveClipping
from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig


def _federation(rate: float) -> FederationConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warnings
        return FederationConfig.from_dict(
            {
                "federation": {
                    "name": "lr",
                    "clients": [f"b{i}" for i in range(40)],
                    "dimension": 4,
                },
                "backend": {"name": "secagg"},
                "dp": {
                    "unit": "client",
                    "mechanism": "central",
                    "noise_multiplier": 1.0,
                    "delta": 1e-3,
                    "adaptive_clip": True,
                    "clip_learning_rate": rate,
                },
            }
        )


@pytest.mark.parametrize("rate", [1e300, 2000.0, MAX_CLIP_LEARNING_RATE * 1.01])
def test_a_rate_past_the_cap_is_refused_naming_the_key(rate: float) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _federation(rate)
    message = str(refused.value)
    assert message.startswith("dp.clip_learning_rate must lie in (0, 10]"), message
    assert "\n" not in message


@pytest.mark.parametrize("rate", [1e300, 2000.0])
def test_the_mechanism_refuses_it_too(rate: float) -> None:
    with pytest.raises(ConfigurationError, match="learning_rate must lie in"):
        AdaptiveClipping(noise_multiplier=1.0, expected_clients=100, learning_rate=rate)


def test_at_the_cap_every_step_stays_finite_and_positive() -> None:
    """The worst rounds at the cap (every report clipped, then none) for many rounds:
    the clip moves by at most exp(10 * 0.5) a round and never overflows."""
    assert _federation(MAX_CLIP_LEARNING_RATE).dp is not None
    clipping = AdaptiveClipping(
        noise_multiplier=1.0, expected_clients=100, learning_rate=MAX_CLIP_LEARNING_RATE
    )
    for count in (-1e9, 1e9, -1e9, 1e9, -1e9):
        before = clipping.clip
        after = clipping.update(count)
        assert math.isfinite(after) and after > 0
        assert max(after / before, before / after) <= math.exp(5.0) * (1 + 1e-12)
