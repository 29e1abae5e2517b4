"""AdaptiveClipping's limit noise_multiplier < 2 * count_stddev: refused, documented,
and the refusal says which argument to change and to what range.

Why: with the default count noise (expected_clients / 20) a small cohort cannot take
adaptive clipping at all (z = 1 needs more than 10 expected clients). Refusing is
right (the count alone would spend the whole budget), but the old message spoke of
``count_noise_stddev``, a name this class does not take, and gave no range.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest

from secagg.dp.adaptive import AdaptiveClipping
from secagg.errors import ConfigurationError


def test_the_default_count_noise_refusal_names_the_arguments_and_their_ranges() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AdaptiveClipping(1.0, expected_clients=10)
    message = str(caught.value)
    assert "noise_multiplier 1 must be below 2 * count_stddev = 1" in message
    # where the limit came from: the default count noise
    assert "expected_clients / 20 = 0.5" in message
    # what to change, to what
    assert "count_stddev above 0.5" in message
    assert "noise_multiplier below 1" in message
    assert "expected_clients above 10" in message
    # never the accountant's parameter name, which this class does not take
    assert "count_noise_stddev" not in message.replace("dp.count_noise_stddev", "")


def test_an_explicit_count_noise_refusal_names_count_stddev() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AdaptiveClipping(2.0, expected_clients=1000, count_stddev=0.8)
    message = str(caught.value)
    assert "noise_multiplier 2 must be below 2 * count_stddev = 1.6" in message
    assert "count_stddev above 1" in message
    assert "noise_multiplier below 1.6" in message
    # expected_clients does not set an explicit count noise: not offered as the fix
    assert "expected_clients above" not in message


@pytest.mark.parametrize(("z", "m"), [(1.0, 10), (1.0, 5), (0.5, 4), (3.0, 29.9)])
def test_the_documented_limit_is_the_enforced_one(z: float, m: float) -> None:
    """With the default count noise, noise_multiplier must lie in (0, expected_clients / 10)."""
    assert z >= m / 10
    with pytest.raises(ConfigurationError, match=re.escape(f"expected_clients above {10 * z:g}")):
        AdaptiveClipping(z, expected_clients=m)
    m_ok = math.nextafter(10 * z, math.inf) * 1.01
    with pytest.warns(UserWarning, match="most of the privacy budget"):  # barely inside
        AdaptiveClipping(z, expected_clients=m_ok)


def test_the_suggested_count_stddev_is_accepted_without_a_warning() -> None:
    """The message's suggestion keeps the update's multiplier within 2x the total."""
    with pytest.raises(ConfigurationError) as caught:
        AdaptiveClipping(1.0, expected_clients=10)
    found = re.search(r"count_stddev=(\d+(?:\.\d+)?)", str(caught.value))
    assert found is not None
    suggested = float(found.group(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = AdaptiveClipping(1.0, expected_clients=10, count_stddev=suggested)
    assert state.update_noise_multiplier < 2.0


def test_the_limit_is_in_the_class_docstring() -> None:
    doc = AdaptiveClipping.__doc__ or ""
    assert "noise_multiplier < 2 * count_stddev" in doc
    assert "expected_clients / 10" in doc
