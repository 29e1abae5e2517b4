"""The canary audit run through the federation runtime (DP review M4).

The audit drives FederationServer and FederationClient over the in-process hub,
so a server whose mechanism forgets its noise is caught: the lower bound then
exceeds the epsilon the runtime's accountant claims, and the command FAILS.
The bound's coverage is checked in tests/apps/test_empirical_bound.py.
"""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from secagg.apps.audit.empirical import gdp_epsilon, run_canary_audit
from secagg.apps.cli import main
from secagg.dp.accounting import epsilon as accountant_epsilon
from secagg.dp.central import CentralGaussian


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


def _forget_noise(server: object) -> None:
    """A server whose mechanism adds no noise but whose accountant still charges z:
    the deployment bug the audit exists to catch."""
    mechanism = server.mechanism  # type: ignore[attr-defined]
    gaussian = mechanism._gaussian
    mechanism._gaussian = CentralGaussian(gaussian.clip, 0.0, gaussian.expected_clients)


def _audit(backend: str, canaries: int, **kwargs: object) -> object:
    return run_canary_audit(
        noise_multiplier=2.0,
        rounds=5,
        canaries=canaries,
        branches=4,
        branch_model="linear",
        dimension=2000,
        backend=backend,
        seed=1,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_noised_federation_is_consistent_with_its_accountant() -> None:
    result = _audit("plain", 100)
    assert result.consistent
    assert 0 < result.epsilon_lower <= result.accountant_epsilon == result.claimed_epsilon
    assert result.accountant_epsilon == pytest.approx(accountant_epsilon(2.0, 1.0, 5, 1e-5))
    assert result.null_check_p > 1e-3 and "Clopper-Pearson" in result.method


@pytest.mark.parametrize(("backend", "canaries"), [("plain", 100), ("secagg+", 30)])
def test_a_server_that_forgot_its_noise_is_caught(backend: str, canaries: int) -> None:
    result = _audit(backend, canaries, tamper=_forget_noise)
    assert not result.consistent
    assert result.epsilon_lower > 2 * result.accountant_epsilon
    assert result.null_check_p > 1e-3  # the held-out canaries still follow the null


def test_cli_reports_bound_method_confidence_and_verdict() -> None:
    out = CliRunner().invoke(
        main,
        "audit empirical -z 4 --rounds 2 --canaries 40 --branches 2 --seed 3".split(),
    )
    assert out.exit_code == 0, out.output
    assert "empirical lower bound" in out.output and "one-sided 95 %" in out.output
    assert "Clopper-Pearson" in out.output and "accountant's upper bound" in out.output
    assert "CONSISTENT" in out.output


def test_cli_fails_a_run_that_leaks_more_than_it_claims() -> None:
    """No noise at all, held to a claim of epsilon = 3: FAIL, exit 1."""
    out = CliRunner().invoke(
        main,
        "audit empirical -z 0 --rounds 2 --canaries 40 --branches 2 --seed 3 "
        "--claimed-epsilon 3".split(),
    )
    assert out.exit_code == 1, out.output
    assert "FAIL" in out.output
