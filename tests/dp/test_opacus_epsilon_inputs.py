"""``opacus_epsilon`` (and :class:`RecordLevelAccountant`, which the trainers' and the
verifier's record-level figures go through) refuses what would state an epsilon for
something that did not run, with a ConfigurationError naming it.

Before: steps were passed through ``int()`` (100.9 steps read as 100: the epsilon of
fewer steps), a negative step count subtracted privacy loss (-50 steps after 100 gave
epsilon -29.99), a delta of 1.5 gave epsilon -7.40, and Opacus's "gdp" accountant
(a CLT approximation that underestimates: 2.54 where PRV says 2.69) was accepted by
name; a negative noise multiplier came back as Opacus's bare ValueError."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.dp.accountants import RecordLevelAccountant, opacus_epsilon
from secagg.errors import ConfigurationError

DELTA = 1e-5
RUN = (1.1, 0.01, 100)


@pytest.mark.parametrize(
    ("history", "named"),
    [
        ([RUN, (1.1, 0.02, -50)], "steps"),
        ([(1.1, 0.01, 100.9)], "steps"),
        ([(1.1, 0.01, 100.0)], "steps"),  # a count, not a float that happens to be whole
        ([(1.1, 0.01, True)], "steps"),
        ([(-1.1, 0.01, 100)], "noise multiplier"),
        ([(math.nan, 0.01, 100)], "noise multiplier"),
        ([(math.inf, 0.01, 100)], "noise multiplier"),
        ([("1.1", 0.01, 100)], "noise multiplier"),
        ([(1.1, 1.5, 100)], "sample rate"),
        ([(1.1, -0.01, 100)], "sample rate"),
        ([(1.1, math.nan, 100)], "sample rate"),
        ([(1.1, 0.01)], "(noise multiplier, sample rate, steps)"),
        ([RUN, 7], "(noise multiplier, sample rate, steps)"),
    ],
)
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_a_history_that_did_not_run_is_refused_naming_what(
    accountant: str, history: list, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"DP-SGD history entry \d") as raised:
        opacus_epsilon(accountant, history, DELTA)
    assert named in str(raised.value)


@pytest.mark.parametrize("delta", [0, 1, 1.5, -1e-5, math.nan, True])
def test_a_delta_outside_0_1_is_refused(delta: float) -> None:
    with pytest.raises(ConfigurationError, match="delta"):
        opacus_epsilon("rdp", [RUN], delta)


@pytest.mark.parametrize("name", ["gdp", "pld", "ddg-kls21", "PRV"])
def test_only_opacus_accountants_the_engine_offers_are_accepted(name: str) -> None:
    with pytest.raises(ConfigurationError, match=repr(name)):
        opacus_epsilon(name, [RUN], DELTA)


def test_numbers_of_any_real_type_give_the_same_epsilon() -> None:
    plain = opacus_epsilon("rdp", [RUN, (0.9, 1.0, 1)], DELTA)
    typed = [(np.float64(1.1), np.float64(0.01), np.int64(100)), (0.9, 1, 1)]
    assert opacus_epsilon("rdp", typed, np.float64(DELTA)) == plain
    assert opacus_epsilon("rdp", [RUN, (0.9, 1.0, 0)], DELTA) == opacus_epsilon(
        "rdp", [RUN], DELTA
    )  # no steps spend nothing


def test_the_record_level_accountant_refuses_before_it_changes() -> None:
    with pytest.raises(ConfigurationError, match="steps"):
        RecordLevelAccountant("rdp", DELTA, [(1.1, 0.01, 2.5)])
    with pytest.raises(ConfigurationError, match="delta"):
        RecordLevelAccountant("rdp", 1.5, [RUN])
    accountant = RecordLevelAccountant("rdp", DELTA, [RUN])
    before = accountant.epsilon()
    with pytest.raises(ConfigurationError, match="steps"):
        accountant.step(1.1, 0.01, -5)
    assert accountant.history == [RUN] and accountant.epsilon() == before
