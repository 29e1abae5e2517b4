"""Adaptive clipping's noise split at a noise multiplier whose ``z**-2`` overflows.

:func:`~secagg.dp.accounting.adaptive_noise_split` computed ``(z**-2 - m**-2) ** -0.5``
and the round's one equivalent Gaussian ``(z_delta**-2 + m**-2) ** -0.5``; below about
z = 1e-154 Python's ``**`` raised OverflowError "Numerical result out of range", out of
the split, :class:`~secagg.dp.adaptive.AdaptiveClipping` and the accountants' step, for
a multiplier every check had accepted. Now the same quantities with ``z`` factored out
answer there (no noise to speak of: epsilon inf), and every other ``z`` keeps the
formula as it was, float for float, so recorded rounds replay unchanged.
"""

from __future__ import annotations

import math
import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import PerClientAccountant
from secagg.dp.accounting import PrivacyAccountant, adaptive_noise_split
from secagg.dp.adaptive import AdaptiveClipping

COUNT_STDDEV = 5.0  # a count multiplier of 10


@given(z=st.floats(min_value=5e-324, max_value=1e-155))
@settings(max_examples=30, deadline=None)
def test_the_split_of_a_tiny_multiplier_is_that_multiplier(z: float) -> None:
    assert adaptive_noise_split(z, COUNT_STDDEV) == z  # the count's share is nothing beside it


@given(z=st.floats(min_value=1e-3, max_value=9.9))
@settings(max_examples=30, deadline=None)
def test_every_other_multiplier_splits_as_before(z: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the clip estimate takes most of the budget"
        assert adaptive_noise_split(z, COUNT_STDDEV) == (z**-2 - 10.0**-2) ** -0.5


def test_the_clipping_and_every_accountant_take_it_and_say_inf() -> None:
    clipping = AdaptiveClipping(noise_multiplier=1e-200, expected_clients=100.0)
    assert clipping.update_noise_multiplier == 1e-200
    for name in ("pld", "rdp"):
        running = PrivacyAccountant(1e-5, name)
        running.step(1e-200, 1.0, count_noise_stddev=COUNT_STDDEV)
        assert running.epsilon() == math.inf
    charged = PerClientAccountant(1e-5)
    charged.step(1e-200, ["branch-01"], count_noise_stddev=COUNT_STDDEV)
    assert charged.epsilon() == math.inf
