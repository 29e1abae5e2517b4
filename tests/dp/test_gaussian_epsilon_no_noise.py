"""A noise multiplier too small for a float's ``1/z^2`` has epsilon +inf, not a traceback.

Below about z = 7.5e-155 the exact Gaussian's epsilon (about ``1 / (2 z^2)``) lies past
the largest float: :func:`~secagg.dp.gaussian_closed_form.gaussian_epsilon` handed brentq
an infinite bracket and raised scipy's ValueError ("The function value at x=inf is NaN;
solver cannot continue"), and the running PLD accountant's ``q == 1`` precision
(``count / z**2``) divided by an underflowed 0 (ZeroDivisionError) or took ``inf ** -0.5``
as a noise multiplier of 0. Honest numbers: a round without representable noise has an
infinite epsilon, the only upward rounding of one past the floats (as the RDP accountant
and the per-client accountant already said).
"""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import PerClientAccountant
from secagg.dp.accounting import PrivacyAccountant, federation_epsilon, gaussian_epsilon
from secagg.dp.config import DPConfig

DELTA = 1e-5


@pytest.mark.parametrize("z", [1e-155, 1e-160, 1e-200, 1e-300, 5e-324])
def test_the_closed_form_is_infinite_below_the_floats(z: float) -> None:
    assert gaussian_epsilon(z, DELTA) == math.inf


@given(exponent=st.floats(min_value=-153.0, max_value=-150.0))
@settings(max_examples=25, deadline=None)
def test_just_above_the_edge_it_is_still_finite_and_about_half_mu_squared(
    exponent: float,
) -> None:
    z = 10.0**exponent
    value = gaussian_epsilon(z, DELTA)
    assert math.isfinite(value)
    assert value >= 0.5 / (z * z)  # the privacy loss's mean alone: never below


@pytest.mark.parametrize("z", [1.3439e-153, 7.6e-155, 1e-120, 1e-60, 1e-20, 1e-10, 9.9e-10])
def test_far_below_the_solvers_reach_it_is_never_below_the_mean(z: float) -> None:
    """z = 1.3439e-153 (hypothesis, 2026-12-07): Balle and Wang's solve, whose arguments
    ``mu / 2 - eps / mu`` keep no digit there, answered 1 ulp below ``mu^2 / 2``; the
    exact epsilon at delta 1e-5 is above the privacy loss's mean."""
    value = gaussian_epsilon(z, DELTA)
    assert math.isfinite(value)
    assert value >= 0.5 / (z * z)
    assert value >= (1.0 / z) ** 2 / 2


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_the_running_accountant_says_inf(accountant: str) -> None:
    running = PrivacyAccountant(DELTA, accountant)
    running.step(1e-200, 1.0)
    assert running.epsilon() == math.inf


def test_a_mixed_history_with_such_a_round_says_inf() -> None:
    running = PrivacyAccountant(DELTA, "pld")
    running.step(1e-160, 1.0)  # 1/z^2 overflows: the precision is inf
    running.step(1.0, 0.5)
    assert running.epsilon() == math.inf


def test_a_plan_and_the_per_client_claim_agree_on_inf() -> None:
    assert federation_epsilon(1e-200, 1.0, 3, DELTA, 10) == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = DPConfig(
            unit="client", noise_multiplier=1e-200, clip=1.0, delta=DELTA, num_clients=10
        )
    assert config.planned_epsilon() == math.inf
    charged = PerClientAccountant(DELTA)
    charged.step(1e-200, ["branch-01"])
    assert charged.epsilon() == math.inf
