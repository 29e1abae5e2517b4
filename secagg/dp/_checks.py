"""Argument checks shared by the accountants: each names the argument it refuses."""

from __future__ import annotations

import math
import numbers

from secagg.errors import ConfigurationError


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a positive finite number, not {value!r}")
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise ConfigurationError(f"{name} must be a positive finite number, not {value!r}")
    return x


def _sample_rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"sample_rate must be a number in (0, 1], not {value!r}")
    q = float(value)
    if not 0 < q <= 1:  # also refuses NaN
        raise ConfigurationError(
            f"sample_rate must lie in (0, 1] (1 = every client every round), not {value!r}"
        )
    return q


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, not {value!r}")
    if value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _delta(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"delta must be a number in (0, 1), not {value!r}")
    d = float(value)
    if not 0 < d < 1:
        raise ConfigurationError(
            f"delta must lie strictly between 0 and 1 (well below 1/population), not {value!r}"
        )
    return d
