"""The parameter search refuses a fraction it cannot compute with, in one typed line.

Hostile policy review (2026-12-07): the range check compared the caller's number exactly
and every use then computed with ``float(value)``. ``Fraction`` 1 - 1e-30 passed the check
(it is below 1) and failed inside as "corrupt_fraction must lie in [0, 1), got 1.0", a
number the caller never gave (or, in ``harary_parameters``, as a sum of fractions over
0.9); ``10**400`` raised a bare OverflowError from ``math.isfinite``. Both are now refused
at the check, naming the caller's number.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.protocol.graph_params import (
    complete_graph_threshold,
    harary_parameters,
    minimum_threshold,
    tolerated_colluders,
    tolerated_dropouts,
)

BELOW_ONE = [1 - Fraction(1, 10**30), np.longdouble(1) - np.longdouble(2) ** -60]


def _searches(fraction: Any) -> list[Any]:
    """Each public entry point given ``fraction`` as its corrupt or dropout fraction."""
    return [
        lambda: minimum_threshold(10, 9, semi_malicious=False, corrupt_fraction=fraction),
        lambda: minimum_threshold(10, 9, semi_malicious=True, dropout_fraction=fraction),
        lambda: harary_parameters(50, corrupt_fraction=fraction),
        lambda: complete_graph_threshold(10, dropout_fraction=fraction),
        lambda: tolerated_colluders(10, fraction),
        lambda: tolerated_dropouts(10, fraction),
    ]


@pytest.mark.parametrize("fraction", BELOW_ONE, ids=["fraction", "longdouble"])
def test_a_fraction_closer_to_1_than_any_float_is_named(fraction: Any) -> None:
    for search in _searches(fraction):
        with pytest.raises(ConfigurationError, match="closer to it than any float below 1"):
            search()


def test_an_integer_past_the_floats_is_a_typed_error() -> None:
    for search in _searches(10**400):
        with pytest.raises(ConfigurationError, match="integer of 401 digits"):
            search()


def test_the_largest_float_below_1_is_still_a_fraction() -> None:
    assert tolerated_dropouts(10, 1 - 2**-53) == 10
    assert tolerated_colluders(10, Fraction(1, 3)) == 3
