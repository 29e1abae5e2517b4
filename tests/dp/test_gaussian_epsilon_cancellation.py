"""The Gaussian mechanism's closed-form epsilon is rounded up against the exact delta, not
the floats' one.

Balle and Wang's delta is a difference of two terms that nearly cancel where the noise is
large and delta tiny (at z = 10^7, delta = 1e-300 each is 3.7e8 times delta): their float
error (3e-13 relative) was 1e-4 of delta, so the epsilon whose *float* delta met the target
had an exact delta above it, an epsilon below the exact one (and below what the running
accountant's ``q == 1`` rounds, a plan's figure and the ledger's replay all quote). The
exact delta is computed here at 60 digits (mpmath).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.gaussian_closed_form import gaussian_epsilon

mpmath = pytest.importorskip("mpmath")


def _exact_delta(noise_multiplier: float, epsilon: float) -> object:
    """Balle and Wang's Theorem 8 at 60 digits: the exact delta of one Gaussian at ``epsilon``."""
    with mpmath.workdps(60):
        mu = 1 / mpmath.mpf(noise_multiplier)
        eps = mpmath.mpf(epsilon)
        return +(mpmath.ncdf(mu / 2 - eps / mu) - mpmath.exp(eps) * mpmath.ncdf(-mu / 2 - eps / mu))


@pytest.mark.parametrize(
    ("noise_multiplier", "delta"),
    [
        (9076.705755349078, 9.253910098392025e-290),  # before: 7e-8 of delta above it
        (1e4, 1e-300),
        (1e4, 1e-100),
        (3000.0, 1e-200),
        (1e7, 1e-300),  # beyond the configs' largest z, reachable through gaussian_epsilon
        (1e5, 1e-15),
    ],
)
def test_the_exact_delta_at_the_epsilon_returned_is_within_delta(
    noise_multiplier: float, delta: float
) -> None:
    eps = gaussian_epsilon(noise_multiplier, delta)
    assert _exact_delta(noise_multiplier, eps) <= delta


@settings(max_examples=40, deadline=None)
@given(
    log_z=st.floats(-1.0, 4.0),  # z from 0.1 to MAX_NOISE_MULTIPLIER
    log_delta=st.floats(-300.0, -1.0),
)
def test_the_epsilon_returned_is_never_below_the_exact_one(log_z: float, log_delta: float) -> None:
    """Before: 1271 of 3000 random points of this range had an exact delta above the
    target (by up to 7e-8 of it)."""
    noise_multiplier, delta = 10.0**log_z, 10.0**log_delta
    eps = gaussian_epsilon(noise_multiplier, delta)
    assert _exact_delta(noise_multiplier, eps) <= delta


@pytest.mark.parametrize(
    ("noise_multiplier", "delta"), [(1.0, 1e-5), (0.5, 1e-6), (3.6845820706799755, 1e-5)]
)
def test_the_margin_costs_nothing_a_figure_shows(noise_multiplier: float, delta: float) -> None:
    """At the noise runs use, the bound on the floats' error moves epsilon by far less than
    the 4 significant digits a figure is shown with: the exact epsilon (60 digits, by
    bisection on the exact delta) is within 1e-12 of it, relatively, and not above it."""
    eps = gaussian_epsilon(noise_multiplier, delta)
    with mpmath.workdps(60):
        low, high = mpmath.mpf(0), mpmath.mpf(eps) * 2
        for _ in range(200):
            middle = (low + high) / 2
            if _exact_delta(noise_multiplier, middle) > delta:
                low = middle
            else:
                high = middle
        exact = float(high)
    assert exact <= eps <= exact * (1 + 1e-12)


@pytest.mark.parametrize(("noise_multiplier", "rounds"), [(1e-6, 10**9), (1e-9, 10**9), (1e-12, 1)])
def test_so_little_noise_gets_a_safe_figure_not_an_overflow(
    noise_multiplier: float, rounds: int
) -> None:
    """Before: OverflowError ("math range error") from math.exp, out of the plan's figure
    and DPConfig (a config with z mistyped as 1e-6 over 10^9 rounds). Now the privacy
    loss's tail bound, which meets delta exactly (checked at 80 digits)."""
    from secagg.dp.plan_figures import epsilon

    eps = epsilon(noise_multiplier, 1.0, rounds, 1e-5)
    z_eff = noise_multiplier / rounds**0.5
    assert 0 < eps < float("inf")
    with mpmath.workdps(80):
        assert _exact_delta(z_eff, eps) <= 1e-5


def test_a_config_with_a_mistyped_noise_multiplier_is_built_not_a_traceback() -> None:
    import warnings

    from secagg.dp.config import DPConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = DPConfig(
            unit="client",
            mechanism="central",
            noise_multiplier=1e-6,
            clip=1.0,
            delta=1e-5,
            num_clients=100,
            rounds=10**9,
            dimension=100,
        )
    assert config.planned_epsilon() > 1e20
