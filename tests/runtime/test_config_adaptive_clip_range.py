"""``[dp] min_clip`` and ``[dp] max_clip``: the adaptive clip's floor and ceiling.

The adaptive clip got a floor and a ceiling (:class:`~secagg.dp.adaptive.AdaptiveClipping`,
10^6 either side of the initial clip by default), but a federation file had no key for
them: ``min_clip = 0.01`` was "unknown keys in [dp]", so an operator could not keep the
clip out of a range they know is wrong (config review, 2026-12-06). Now both are keys,
checked like the others (one line naming the key), refused beside a fixed clip (where
they would bound nothing) and above ``backend.value_bound`` (which caps the clip
already), and they reach the clip the server moves each round.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.dp.adaptive import DEFAULT_CLIP_RANGE
from secagg.dp.release import mechanism_for
from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from tests._config_fuzz import names_key, one_line

CLIENTS = ["b1", "b2", "b3", "b4"]
DIMENSION = 4
ADAPTIVE: dict[str, Any] = {
    "clip": 0.05,
    "noise_multiplier": 0.3,
    "delta": 1e-3,
    "adaptive_clip": True,
    "count_noise_stddev": 0.5,
    "clip_learning_rate": 1.0,
}


def _load(dp: dict[str, Any], value_bound: float = 2.0) -> FederationConfig:
    data = {
        "federation": {"name": "range", "clients": CLIENTS, "dimension": DIMENSION},
        "backend": {"name": "secagg", "value_bound": value_bound},
        "dp": dp,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warnings
        return FederationConfig.from_dict(data)


def _clips(config: FederationConfig, report_sum: float, rounds: int) -> list[float]:
    """The clip after each of ``rounds`` released rounds whose clients' unclipped
    reports sum to ``report_sum`` (+2: all four under the clip, -2: all over it)."""
    mechanism = config.mechanism(seed=b"\x01" * 16)
    clips = []
    for _ in range(rounds):
        total = np.append(np.zeros(DIMENSION), report_sum)
        mechanism.release(total, contributors=4, participants=4, noise_added=0.0)
        clips.append(mechanism.clip)  # type: ignore[attr-defined]
    return clips


def test_the_ceiling_and_the_floor_reach_the_clip_the_server_moves() -> None:
    config = _load(ADAPTIVE | {"min_clip": 0.02, "max_clip": 0.1})
    adaptive = config.mechanism().adaptive  # type: ignore[attr-defined]
    assert (adaptive.min_clip, adaptive.max_clip, adaptive.clip) == (0.02, 0.1, 0.05)
    # every update over the clip: it grows by about e^0.5 a round, and stops at 0.1
    # (without the key, at the value bound 2: 0.05 e^(0.5 * 8) = 2.7)
    grown = _clips(config, -2.0, rounds=8)
    assert grown[-1] == 0.1 and max(grown) == 0.1 and grown[0] < 0.1
    # every update under it: it shrinks and stops at 0.02 (without, 0.05 e^-4 = 9e-4)
    shrunk = _clips(config, 2.0, rounds=8)
    assert shrunk[-1] == 0.02 and min(shrunk) == 0.02


def test_one_of_them_alone_leaves_the_other_at_its_default() -> None:
    only_floor = _load(ADAPTIVE | {"min_clip": 0.04}).mechanism().adaptive  # type: ignore[attr-defined]
    assert only_floor.min_clip == 0.04
    assert only_floor.max_clip == pytest.approx(0.05 * DEFAULT_CLIP_RANGE)
    only_ceiling = _load(ADAPTIVE | {"max_clip": 0.5}).mechanism().adaptive  # type: ignore[attr-defined]
    assert only_ceiling.max_clip == 0.5
    assert only_ceiling.min_clip == pytest.approx(0.05 / DEFAULT_CLIP_RANGE)
    assert _clips(_load(ADAPTIVE | {"max_clip": 0.5}), -2.0, rounds=8)[-1] == 0.5


def test_left_out_they_are_the_adaptive_clips_defaults() -> None:
    """No key: 10^6 either side of dp.clip, and the value bound caps the clip (the
    released clip never passes backend.value_bound = 2)."""
    config = _load(ADAPTIVE)
    assert config.dp is not None and config.dp.min_clip is None and config.dp.max_clip is None
    adaptive = config.mechanism().adaptive  # type: ignore[attr-defined]
    assert adaptive.min_clip == pytest.approx(0.05 / DEFAULT_CLIP_RANGE)
    assert adaptive.max_clip == pytest.approx(0.05 * DEFAULT_CLIP_RANGE)
    assert _clips(config, -2.0, rounds=10)[-1] == 2.0


def test_a_file_with_both_keys_loads(tmp_path: Path) -> None:
    path = tmp_path / "federation.toml"
    path.write_text(
        '[federation]\nname = "file"\nclients = ["b1", "b2", "b3", "b4"]\ndimension = 4\n'
        '[backend]\nname = "secagg"\nvalue_bound = 2.0\n'
        "[dp]\nclip = 0.05\nnoise_multiplier = 0.3\ndelta = 1e-3\nadaptive_clip = true\n"
        "count_noise_stddev = 0.5\nmin_clip = 0.001\nmax_clip = 1\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = FederationConfig.load(path)
    assert config.dp is not None and (config.dp.min_clip, config.dp.max_clip) == (0.001, 1)
    adaptive = config.mechanism().adaptive  # type: ignore[attr-defined]
    assert (adaptive.min_clip, adaptive.max_clip) == (0.001, 1)


FIXED = {"clip": 0.05, "noise_multiplier": 1.0, "delta": 1e-3}

#: (the [dp] section, the key the refusal names, words of its reason)
REFUSED = [
    pytest.param(FIXED | {"min_clip": 0.01}, "min_clip", "adaptive_clip is off", id="floor-fixed"),
    pytest.param(FIXED | {"max_clip": 1.0}, "max_clip", "adaptive_clip is off", id="ceiling-fixed"),
    *(
        pytest.param(ADAPTIVE | {key: value}, key, "positive finite number", id=f"{key}-{value}")
        for key in ("min_clip", "max_clip")
        for value in (0.0, -1.0, math.nan, math.inf, -math.inf, 1e-320)
    ),
    pytest.param(ADAPTIVE | {"min_clip": 0.06}, "min_clip", "above dp.clip", id="floor-above"),
    pytest.param(ADAPTIVE | {"max_clip": 0.04}, "max_clip", "below dp.clip", id="ceiling-below"),
    pytest.param(
        ADAPTIVE | {"max_clip": 3.0}, "max_clip", "above backend.value_bound", id="ceiling-ring"
    ),
]


@pytest.mark.parametrize(("dp", "key", "reason"), REFUSED)
def test_a_floor_or_ceiling_that_makes_no_sense_is_one_line_naming_it(
    dp: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _load(dp)
    message = str(refused.value)
    assert one_line(message), message
    assert names_key(message, "dp", key), message
    assert reason in message, message


def test_the_bounds_themselves_load() -> None:
    """min_clip = clip = max_clip = value_bound: a clip that cannot move, and legal."""
    config = _load(ADAPTIVE | {"clip": 2.0, "min_clip": 2.0, "max_clip": 2.0})
    assert _clips(config, -2.0, rounds=2) == [2.0, 2.0]


def test_mechanism_for_itself_takes_the_floor_and_the_ceiling() -> None:
    """The keys reach the clip through :func:`secagg.dp.release.mechanism_for`, the
    one builder, not a rebuild after it: a caller that builds the mechanism from the
    ``[dp]`` settings directly (an auditor's replay, a test) gets the same clip range
    as the server."""
    config = _load(ADAPTIVE | {"min_clip": 0.03, "max_clip": 0.2})
    assert config.dp is not None
    mechanism = mechanism_for(
        config.dp,
        dimension=DIMENSION,
        bits=config.backend.bits,
        sample_rate=1.0,
        expected_clients=4,
        corrupt_fraction=0.0,
        seed=b"\x02" * 16,
    )
    adaptive = mechanism.adaptive  # type: ignore[attr-defined]
    assert (adaptive.min_clip, adaptive.max_clip) == (0.03, 0.2)
