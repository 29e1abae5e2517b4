"""The one-shot canary audit (Andrew et al., ICLR 2024): its statistics and its verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps.audit.empirical import estimate_from_cosines, gdp_epsilon, run_canary_audit
from secagg.apps.cli import main
from secagg.dp.accounting import epsilon as accountant_epsilon


@pytest.mark.parametrize(("z", "rounds"), [(1.0, 1), (2.0, 10), (5.0, 10), (0.8, 3)])
def test_gdp_conversion_agrees_with_the_accountant_for_the_gaussian_mechanism(
    z: float, rounds: int
) -> None:
    """T full-participation Gaussian rounds are sqrt(T)/z-GDP: two routes, one epsilon."""
    ours = gdp_epsilon(math.sqrt(rounds) / z, 1e-5)
    theirs = accountant_epsilon(z, 1.0, rounds, 1e-5)
    assert ours == pytest.approx(theirs, rel=0.01)


def test_gdp_epsilon_edges() -> None:
    assert gdp_epsilon(0.0, 1e-5) == 0.0
    assert gdp_epsilon(-1.0, 1e-5) == 0.0
    assert gdp_epsilon(1.0, 1e-5) < gdp_epsilon(2.0, 1e-5) < gdp_epsilon(2.0, 1e-9)


def test_the_estimator_recovers_a_known_shift_and_its_lower_bound_holds() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for trial in range(40):
        held = rng.normal(0.0, 0.02, 500)
        inserted = rng.normal(0.02 * 1.5, 0.02, 500)  # mu = 1.5
        mu, mu_low, eps, eps_low = estimate_from_cosines(inserted, held, 1e-5)
        assert mu == pytest.approx(1.5, abs=0.3)
        assert eps_low <= eps
        hits += mu_low <= 1.5
        del trial
    assert hits >= 34  # a 95 % lower bound: misses about 2 in 40


def test_without_noise_the_estimate_is_large() -> None:
    result = run_canary_audit(noise_multiplier=0.0, rounds=6, canaries=200, train_rows=3000)
    assert result.epsilon_accountant == math.inf
    assert result.epsilon_lower_95 > 5.0
    assert result.inserted_cosine_mean > 2 * result.held_out_cosine_std


def test_with_strong_noise_the_estimate_is_small_and_below_the_accountant() -> None:
    result = run_canary_audit(noise_multiplier=10.0, rounds=6, canaries=400, train_rows=3000)
    assert result.epsilon_estimate < 2.0
    assert result.epsilon_lower_95 < result.epsilon_accountant
    assert "95 %" in result.confidence


def test_cli_prints_estimate_bound_and_confidence() -> None:
    out = CliRunner().invoke(
        main,
        ["audit", "empirical", "-z", "4", "--rounds", "2", "--canaries", "50", "--seed", "3"],
    )
    assert out.exit_code == 0, out.output
    assert "empirical lower bound" in out.output and "one-sided 95 %" in out.output
    assert "accountant's upper bound" in out.output
