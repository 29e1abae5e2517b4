"""Privacy figures as text: never below what ran (a lower bound: never above), and off by
less than one unit in the last place shown."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.display import shown
from secagg.errors import ConfigurationError

_FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _unit(text: str) -> Decimal:
    """One unit in the last place of ``text`` (a trailing zero counts as a place)."""
    exponent = Decimal(text).as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(exponent)


@settings(max_examples=2000)
@given(value=_FINITE, places=st.integers(1, 8), significant=st.booleans())
def test_a_figure_is_shown_at_or_above_its_value_by_less_than_one_unit(
    value: float, places: int, significant: bool
) -> None:
    text = shown(value, places, significant=significant)
    assert float(text) >= value  # what a reader types back is never less
    if text == "inf":  # rounded up past the largest float (1e308 to 1 digit: 2e308)
        return
    gap = Decimal(text) - Decimal(repr(value))
    assert Decimal(0) <= gap < _unit(text)


@settings(max_examples=1000)
@given(value=_FINITE, places=st.integers(1, 8), significant=st.booleans())
def test_a_lower_bound_is_shown_at_or_below_its_value_by_less_than_one_unit(
    value: float, places: int, significant: bool
) -> None:
    text = shown(value, places, significant=significant, lower=True)
    assert float(text) <= value
    if text == "-inf":
        return
    gap = Decimal(repr(value)) - Decimal(text)
    assert Decimal(0) <= gap < _unit(text)


@settings(max_examples=500)
@given(value=st.floats(1e-300, 1e6), places=st.integers(1, 8))
def test_the_precision_is_the_one_the_format_would_show(value: float, places: int) -> None:
    """Same digits as f"{value:.{places}f}" / f"{value:.{places}g}" where those round up
    already, and at most one unit more where they rounded down. (Up to 1e6: with more
    digits than repr's 17 the f format prints the float's binary digits beyond it.)"""
    fixed = shown(value, places)
    if value >= 0.1:  # below it, `places` significant digits are finer, and shown
        assert len(fixed.split(".")[1]) == places
        assert Decimal(fixed) - Decimal(f"{value:.{places}f}") in (0, _unit(fixed))
    general = shown(value, places, significant=True)
    nearest = f"{value:.{places}g}"
    assert float(general) >= float(nearest)
    assert ("e" in general) == ("e" in nearest) or general.startswith("1")  # 9.9e+05 -> 1e+06


@pytest.mark.parametrize(
    ("value", "places", "significant", "text"),
    [
        (3.00004, 4, False, "3.0001"),  # to the nearest: 3.0000, below what ran
        (2.99996, 4, False, "3.0000"),
        (3.0, 4, False, "3.0000"),
        (0.1, 4, False, "0.1000"),  # from repr: not 0.1001 for 0.1000000000000000055...
        (0.0, 4, False, "0.0000"),
        (1e-7, 4, False, "0.0000001000"),  # 4 significant digits, not "0.0001"
        (0.0625, 4, False, "0.06250"),  # below 0.1 too
        (0.29004, 4, False, "0.2901"),  # the privacy noise case (copied back as z)
        (1e-5, 6, True, "1e-05"),
        (1.2345641e-5, 6, True, "1.23457e-05"),  # to the nearest: 1.23456e-05
        (3.0000004, 6, True, "3.00001"),  # to the nearest: "3", an overspend read as none
        (9.9999996, 6, True, "10"),
        (5e-324, 2, True, "5e-324"),  # a subnormal: through a float it printed 4.9e-324
        (123456.7, 6, True, "123457"),
        (1234567.0, 6, True, "1.23457e+06"),
        (0.0, 3, True, "0"),
        (math.inf, 4, False, "inf"),
        (math.nan, 4, True, "nan"),
        (-0.000041, 4, False, "-0.00004100"),  # toward +inf; small: 4 significant digits
    ],
)
def test_known_figures(value: float, places: int, significant: bool, text: str) -> None:
    assert shown(value, places, significant=significant) == text


def test_a_lower_bound_rounds_down() -> None:
    assert shown(0.5329, 3, lower=True) == "0.532"
    assert shown(1.0, 3, lower=True) == "1.000"


@pytest.mark.parametrize(
    ("value", "places"), [("3", 4), (None, 4), (True, 4), (1.0, 0), (1.0, 2.5)]
)
def test_arguments_of_the_wrong_kind_are_refused_by_name(value: object, places: object) -> None:
    with pytest.raises(ConfigurationError, match="value" if places == 4 else "places"):
        shown(value, places)  # type: ignore[arg-type]
