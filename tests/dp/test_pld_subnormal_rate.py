"""PLD accounting at a subnormal sampling rate gives an epsilon, not dp_accounting's error.

Below the least normal float (about 2.2e-308), ``1 / q`` overflows for rates under
about 5.6e-309, and dp_accounting's subsampled Gaussian privacy loss failed inside the
library: ``ValueError: a must be greater than b. Got a=inf and b=inf`` from
``common._log_sub`` (``pld_composition._build_sampled_pld``), a library caller's raw
exception from a dependency, where the rounds composed fine at 2.2e-308.

A correct epsilon is computable: the subsampled Gaussian's privacy profile grows with
the rate (sampling at ``q`` is sampling at ``q / q'`` first, then a round at ``q'``,
and subsampling never adds privacy loss), so the figure at the least rate the library
evaluates is an upper bound on the one at any rate below it. The accountant charges a
round at a rate below it at that rate: the safe side, and at any delta above the
rounds' rates the figure is 0, as it is at 2.2e-308.
"""

from __future__ import annotations

import functools
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import GaussianAccountant
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.pld_composition import check_pld_rounds

DELTA = 1e-5
#: the least rate dp_accounting's PLD evaluates (1 / q is finite): the least normal float
EVALUATED = sys.float_info.min
SUBNORMAL = [5e-324, 1e-310, 5.5e-309]


def _pld(rounds: list[tuple[float, float]]) -> float:
    """The PLD accountant's epsilon after ``rounds`` (noise multiplier, sample rate)."""
    return _pld_of(tuple(rounds))


@functools.lru_cache(maxsize=64)
def _pld_of(rounds: tuple[tuple[float, float], ...]) -> float:
    """:func:`_pld`, remembered: the references at the least evaluated rate (and the
    rounds around a subnormal one) are the same for every subnormal rate, and were
    computed again for each. A rate is part of the key, so no subnormal round is ever
    answered by another rate's figure."""
    accountant = GaussianAccountant(DELTA, "pld")
    for z, q in rounds:
        accountant.step(z, q)
    return accountant.epsilon()


@pytest.mark.parametrize("rate", SUBNORMAL)
@pytest.mark.parametrize("noise_multiplier", [0.5, 1.0, 4.0])
def test_a_subnormal_rate_is_charged_as_the_least_evaluated_rate(
    rate: float, noise_multiplier: float
) -> None:
    charged = _pld([(noise_multiplier, rate)] * 3)
    assert charged == _pld([(noise_multiplier, EVALUATED)] * 3)
    assert charged == 0.0  # 3 rounds of total variation at most 3 q << delta


@pytest.mark.parametrize("rate", SUBNORMAL)
def test_a_subnormal_round_composes_with_sampled_and_unsampled_ones(rate: float) -> None:
    before = [(1.0, 0.5), (1.0, 0.5)]
    after = [(2.0, 1.0)]
    composed = _pld([*before, (1.0, rate), *after])
    assert composed == _pld([*before, (1.0, EVALUATED), *after])
    assert composed >= _pld([*before, *after]) > 0


@pytest.mark.parametrize("rate", SUBNORMAL)
def test_the_running_accountant_and_its_from_scratch_reference_agree(rate: float) -> None:
    accountant = PrivacyAccountant(DELTA, "pld")
    accountant.step(1.0, 0.5)
    accountant.step(1.0, rate)
    incremental = accountant.epsilon()
    assert incremental == pytest.approx(accountant.reference_epsilon(), rel=1e-6)
    # the history records the rate that ran, not the one it was charged at
    assert [entry["sample_rate"] for entry in accountant.history][-1] == rate


@pytest.mark.parametrize("rate", SUBNORMAL)
def test_a_plans_size_check_at_a_subnormal_rate_answers(rate: float) -> None:
    """A plan's check that PLD can compose its rounds builds one round's PLD at the
    rate: it raised the library's ValueError; it takes them, as at 2.2e-308."""
    check_pld_rounds(EVALUATED, 1000)
    check_pld_rounds(rate, 1000)


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(min_value=5e-324, max_value=EVALUATED, exclude_max=True),
    noise_multiplier=st.floats(min_value=0.3, max_value=20.0),
    rounds=st.integers(min_value=1, max_value=50),
)
def test_no_subnormal_rate_escapes_as_a_dependencys_error(
    rate: float, noise_multiplier: float, rounds: int
) -> None:
    """Every rate below the least normal float gives the figure at it, which bounds the
    rates below it, and no error (the library failed under about 5.6e-309)."""
    charged = _pld([(noise_multiplier, rate)] * rounds)
    assert charged == _pld([(noise_multiplier, EVALUATED)] * rounds)
