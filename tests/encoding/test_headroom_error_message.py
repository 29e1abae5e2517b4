"""The headroom refusal states the rule it applies and suggests only widths that exist.

``HeadroomError`` said "3 clients need at least 65 bits" (or 33, or 1998 for a bound of
1e300 at scale 1e300): widths no ring offers, the engine has 32 and 64. It now names
the narrowest supported width that fits, or says that none does. And it stated no rule,
only "(N units each)": it now gives the one it applies,
``clients x (floor(bound x scale) + 1) <= 2^(b-1) - 1``.

That rule is conservative by design, and the last tests here pin why it is safe and by
how much: stochastic rounding reaches at most ``ceil(P)`` units for ``P = fl(C *
scale)``, which ``floor(P) + 1`` equals unless ``P`` is an integer, where it is one unit
above what any client can reach (kept: it is the masking planner's rule too).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import KeyedStream
from secagg.encoding import FixedPoint
from secagg.encoding.fixed_point import SUPPORTED_BITS, stochastic_round
from secagg.errors import HeadroomError


def _refusal(bits: int, clients: int, bound: float, scale: float) -> HeadroomError:
    with pytest.raises(HeadroomError) as info:
        FixedPoint(scale, bits).check_headroom(clients, bound)
    return info.value


@pytest.mark.parametrize(
    ("bits", "clients", "bound", "scale", "suggested"),
    [
        (32, 1000, 1.0, 2.0**22, 64),  # needed 33 bits: "at least 33 bits"
        (32, 3, 1.0, 2.0**31, 64),  # 34
        (64, 3, 1.0, 2.0**62, None),  # 65
        (64, 10, 1e300, 1e300, None),  # 1998
    ],
)
def test_the_refusal_suggests_only_a_supported_width(
    bits: int, clients: int, bound: float, scale: float, suggested: int | None
) -> None:
    error = _refusal(bits, clients, bound, scale)
    assert error.suggested_bits == suggested
    named = {int(width) for width in re.findall(r"(\d+)(?:-bit| bits)", str(error))}
    assert named <= set(SUPPORTED_BITS), str(error)
    if suggested is None:
        assert "no supported width (32 or 64 bits)" in str(error)
    else:
        assert f"{clients} clients fit in {suggested} bits" in str(error)


@settings(max_examples=50, deadline=None)
@given(
    bits=st.sampled_from(SUPPORTED_BITS),
    clients=st.integers(1, 10**6),
    scale_exponent=st.integers(0, 70),
    bound=st.floats(1e-3, 1e3),
)
def test_any_refusal_names_supported_widths_and_its_suggestion_fits(
    bits: int, clients: int, scale_exponent: int, bound: float
) -> None:
    fixed = FixedPoint(2.0**scale_exponent, bits)
    try:
        fixed.check_headroom(clients, bound)
    except HeadroomError as error:
        named = {int(width) for width in re.findall(r"(\d+)(?:-bit| bits)", str(error))}
        assert named <= set(SUPPORTED_BITS), str(error)
        if error.suggested_bits is not None:  # the suggestion passes the same check
            FixedPoint(fixed.scale, error.suggested_bits).check_headroom(clients, bound)
        else:
            with pytest.raises(HeadroomError):
                FixedPoint(fixed.scale, max(SUPPORTED_BITS)).check_headroom(clients, bound)


def test_the_refusal_states_the_rule_it_applies() -> None:
    error = _refusal(32, 1000, 1.0, 2.0**22)
    assert "clients x (floor(bound x scale) + 1) <= 2^31 - 1" in str(error)
    assert f"1000 x {2**22 + 1} units" in str(error)
    assert "\n" not in str(error)


@settings(max_examples=40, deadline=None)
@given(
    scale_exponent=st.integers(-4, 40),
    bound=st.floats(1e-3, 1e3),
    key=st.binary(min_size=16, max_size=16),
)
@example(scale_exponent=20, bound=1.0, key=bytes(16))  # P integral: a margin of one unit
@example(scale_exponent=20, bound=0.7, key=bytes(16))  # P fractional: no margin
def test_rounding_reaches_ceil_of_the_product_and_the_check_counts_one_above_it_at_most(
    scale_exponent: int, bound: float, key: bytes
) -> None:
    """Coordinates at and inside the bound, both signs, many draws (the encoder's own
    rounding, read as int64 before any ring): every magnitude is at most ceil(P), and
    the check's floor(P) + 1 is ceil(P), or ceil(P) + 1 exactly when P is an integer
    (then the bound itself rounds to P, never to P + 1)."""
    scale = 2.0**scale_exponent
    product = bound * scale  # a power-of-two scale: exact
    values = np.concatenate(
        [np.full(64, bound), np.full(64, -bound), np.linspace(-bound, bound, 129)]
    )
    reached = int(np.abs(stochastic_round(values, KeyedStream(key), scale=scale)).max())
    assert reached <= math.ceil(product)
    counted = FixedPoint(scale, 64).integer_bound(bound)
    assert counted == (math.ceil(product) + 1 if product.is_integer() else math.ceil(product))
    if product.is_integer():
        assert reached == product  # the bound rounds to itself: the + 1 is never reached
