"""A branch's policy holds its numbers as floats and ints, whatever real type it was given.

Hostile review of the branch's own policy (2026-12-06): the type check took any real
number (``numbers.Real``, ``numbers.Integral``) and kept it as given. A program computing
its settings with numpy or fractions got a policy that broke in the middle of a round:
``corrupt_fraction = np.float32(0.3)`` or ``dropout_fraction = Fraction(1, 10)`` made
every masking round's check raise a ConfigurationError from the protocol's own policy
(which takes ints and floats only) instead of deciding, and ``min_noise_multiplier =
Fraction(1, 2)`` a bare TypeError where a refusal formats it. Now each is stored as a
float (a fraction no float holds rounded to the policy's safe side) or an int.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import get_backend
from secagg.aggregation.policy import STRICTER_WHEN_LARGER, BranchPolicy
from secagg.errors import ConfigurationError, PolicyRefused

#: two masking rounds (no noise share; sparse and complete graph) each policy decides on
SPECS = [get_backend("secagg+").plan(10, 4), get_backend("secagg").plan(5, 4)]


def _decides(policy: BranchPolicy) -> None:
    """Each spec is taken or refused by the policy (PolicyRefused), nothing else."""
    for spec in SPECS:
        try:
            spec.check_policy(policy)
        except PolicyRefused:
            pass


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("corrupt_fraction", np.float32(0.3)),
        ("dropout_fraction", Fraction(1, 10)),
        ("corrupt_fraction", Fraction(1, 20)),
        ("min_noise_multiplier", Fraction(1, 2)),
        ("record_sensitivity", np.float32(0.25)),
        ("max_clip", Fraction(3, 2)),
        ("min_colluders", np.int64(2)),
        ("expected_clients", np.int32(20)),
        ("max_clients", np.uint16(50)),
    ],
)
def test_a_number_of_any_real_type_is_held_as_a_float_or_an_int(key: str, value: Any) -> None:
    policy = BranchPolicy(**{key: value})
    held = getattr(policy, key)
    assert type(held) in (float, int), type(held)
    assert held == pytest.approx(float(value))
    _decides(policy)


@given(
    key=st.sampled_from(
        [*STRICTER_WHEN_LARGER, "max_clip", "epsilon_budget"],
    ),
    numerator=st.integers(1, 10**6),
    denominator=st.integers(1, 10**6),
)
@settings(max_examples=50, deadline=None)
def test_a_fraction_is_held_on_the_policys_safe_side(
    key: str, numerator: int, denominator: int
) -> None:
    """A floor (noise, sensitivity) or an assumption (colluders, dropouts) never below
    the fraction given, a cap (clip, budget) never above it."""
    value = Fraction(numerator, denominator)
    if key in ("corrupt_fraction", "dropout_fraction"):
        value = value / (value + 1)  # in (0, 1)
        if key == "corrupt_fraction":
            # at most 0.999: from 0.99999 on, no threshold keeps the default largest
            # round (max_clients 100 000) private, a refusal of its own
            # (ContradictoryPolicy; the fresh-clone CI of 7597fe38 drew 100000/100001)
            value = min(value, Fraction(999, 1000))
    elif key == "min_noise_multiplier":
        value = min(value, Fraction(10**4))
    elif key in ("max_clip", "record_sensitivity"):
        value = min(value, Fraction(10**6))
    extra = {"delta": 1e-6} if key == "epsilon_budget" else {}
    policy = BranchPolicy(**{key: value}, **extra)
    held = Fraction(getattr(policy, key))
    if key in STRICTER_WHEN_LARGER:
        assert held >= value
    else:
        assert held <= value
    _decides(policy)


#: numpy's extended float, where the platform has one finer than float64 (x86's 80 bits)
EXTENDED = np.longdouble
HAS_EXTENDED = np.finfo(EXTENDED).eps < np.finfo(np.float64).eps


@pytest.mark.skipif(not HAS_EXTENDED, reason="np.longdouble is float64 on this platform")
@pytest.mark.parametrize(
    "key",
    [*STRICTER_WHEN_LARGER, "max_clip", "epsilon_budget", "delta"],
)
def test_an_extended_float_is_held_on_the_policys_safe_side(key: str) -> None:
    """An ``np.longdouble`` one of its own units past a float, on the weak side, is held
    at the next float on the strict side (second review, 2026-12-06).

    Why: the safe-side rounding of 7459c06 looked at ``numbers.Rational`` values only,
    and a longdouble is a Real that is not Rational: ``float()`` rounds it to nearest,
    so ``min_noise_multiplier = 1 + 2^-63`` was held as 1.0 and ``max_clip = 1 - 2^-64``
    as 1.0, a weaker policy than the one given (before 7459c06 the value was kept and
    compared exactly: a round of z = 1 or clip 1 was refused)."""
    one = EXTENDED(1) if key not in ("corrupt_fraction", "dropout_fraction") else EXTENDED(0.25)
    unit = np.spacing(one)
    value = one + unit if key in STRICTER_WHEN_LARGER else one - unit
    extra = {"delta": 1e-6} if key == "epsilon_budget" else {}
    if key == "delta":
        value, extra = EXTENDED(1e-6) - np.spacing(EXTENDED(1e-6)), {"epsilon_budget": 1.0}
    policy = BranchPolicy(**{key: value}, **extra)
    held = getattr(policy, key)
    assert type(held) is float
    if key in STRICTER_WHEN_LARGER:
        assert EXTENDED(held) >= value, (held, value)
    else:
        assert EXTENDED(held) <= value, (held, value)


@pytest.mark.skipif(not HAS_EXTENDED, reason="np.longdouble is float64 on this platform")
def test_a_round_at_the_float_next_to_an_extended_bound_is_refused() -> None:
    """The rounds the weaker policy took: a noise multiplier of 1 against a floor of
    ``1 + 2^-63``, a clip of 1 against a cap of ``1 - 2^-64``."""
    floor = EXTENDED(1) + np.spacing(EXTENDED(1))
    with pytest.raises(PolicyRefused, match="min_noise_multiplier"):
        BranchPolicy(min_noise_multiplier=floor).check_noise_share(
            noise_multiplier=1.0, clip=1.0, expected_clients=10, num_clients=10
        )
    cap = EXTENDED(1) - np.spacing(EXTENDED(1)) / 2
    with pytest.raises(PolicyRefused, match="max_clip"):
        BranchPolicy(max_clip=cap).check_clip(1.0)


@pytest.mark.parametrize("key", ["corrupt_fraction", "dropout_fraction"])
@pytest.mark.parametrize(
    "below_one", [1 - Fraction(1, 10**30), np.longdouble(1) - np.longdouble(2) ** -60]
)
def test_a_fraction_closer_to_1_than_any_float_is_refused_saying_why(
    key: str, below_one: Any
) -> None:
    """``1 - 1e-30`` is held as 1.0 (the stricter side), which no fraction may be: it was
    refused as "must lie in [0, 1)", a value that does (review of 2026-12-07); the line
    now names the number and why it is held as 1."""
    with pytest.raises(ConfigurationError, match=f"branch.{key} = .* closer to 1 .* held as 1.0"):
        BranchPolicy(**{key: below_one})
    # the float below 1 holds this one exactly (CKKS serves where no masking round would)
    held = BranchPolicy(**{key: 1 - Fraction(1, 2**53)}, key_holder_fingerprint=bytes(32))
    assert getattr(held, key) == 1 - 2**-53
