"""The message helpers at the bottom of the layers (secagg/errors.py).

:func:`~secagg.errors.decimal_digits` replaced the bit length's estimate
``floor(bits * log10(2)) + 1``, written three times (the federation config, the branch
policy, the key holder's table), which is one too many for every integer below the
power of ten its bit length reaches: ``10**400 - 1`` was "an integer of about 401
digits". The federation config also decides by the count whether a value is printed
at all (``repr`` of an integer past 4 300 digits raises ValueError), so the count must
never fall short: here it is checked against ``len(str(abs(n)))`` far past that limit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.errors import decimal_digits

#: integers of up to 20 000 digits (bit lengths to 66 000), either sign
HUGE = st.integers(min_value=0, max_value=20_000).flatmap(
    lambda digits: st.integers(min_value=-(10**digits), max_value=10**digits)
)


@contextmanager
def _str_of_any_int() -> Iterator[None]:
    """``str`` of any integer, for the oracle (Python refuses past 4 300 digits)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


@settings(max_examples=300, deadline=None)
@given(value=HUGE)
@example(value=10**400 - 1)  # 400 digits: the old estimate said 401
@example(value=8)  # 4 bits, 1 digit: the old estimate said 2
@example(value=0)
@example(value=-(10**4300))  # one past what str() prints by default
def test_it_counts_what_str_prints(value: int) -> None:
    with _str_of_any_int():
        expected = len(str(abs(value)))
    assert decimal_digits(value) == expected


@settings(max_examples=200, deadline=None)
@given(digits=st.integers(min_value=1, max_value=30_000), sign=st.sampled_from((1, -1)))
def test_it_is_exact_on_each_side_of_a_power_of_ten(digits: int, sign: int) -> None:
    """The places an estimate from the bit length gets wrong: 10^k - 1 has k digits
    and 10^k has k + 1, whatever float the product ``bits * log10(2)`` rounds to."""
    power = 10**digits
    assert decimal_digits(sign * (power - 1)) == digits
    assert decimal_digits(sign * power) == digits + 1
    assert decimal_digits(sign * (power + 1)) == digits + 1


@settings(max_examples=200, deadline=None)
@given(bits=st.integers(min_value=1, max_value=100_000))
def test_it_is_exact_on_each_side_of_a_power_of_two(bits: int) -> None:
    power = 2**bits
    with _str_of_any_int():
        below, at = len(str(power - 1)), len(str(power))
    assert decimal_digits(power - 1) == below
    assert decimal_digits(power) == at


def test_every_single_digit_and_the_first_powers_of_ten() -> None:
    assert [decimal_digits(n) for n in range(-9, 10)] == [1] * 19
    for k in range(1, 400):
        assert decimal_digits(10**k - 1) == k and decimal_digits(10**k) == k + 1


@pytest.mark.parametrize("value", [1.0, "12", True, None])
def test_only_an_int_is_counted(value: object) -> None:
    """A float has no digit count (1e300 would be counted as its int), True is not 1."""
    with pytest.raises(TypeError, match="digits of an int"):
        decimal_digits(value)  # type: ignore[arg-type]
