"""One entry point for "the epsilon of this z": :func:`plan_epsilon` and its charge."""

from __future__ import annotations

import pytest

from secagg.dp import accounting
from secagg.errors import ConfigurationError


@pytest.mark.parametrize(("rate", "rounds", "population"), [(0.3, 10, 1000), (1.0, 5, 10)])
def test_the_federation_figure_is_plan_epsilon_with_a_population(
    rate: float, rounds: int, population: int
) -> None:
    """federation_epsilon and plan_epsilon are one computation, charged as plan_charge says."""
    charge = accounting.plan_charge(rate, rounds, population)
    figure = accounting.plan_epsilon(1.0, rate, rounds, 1e-5, population)
    assert figure == accounting.federation_epsilon(1.0, rate, rounds, 1e-5, population)
    assert figure == accounting.epsilon(1.0, charge.sample_rate, charge.rounds, 1e-5)
    assert (charge.most_rounds is None) is (rate == 1.0)


def test_without_a_population_the_figure_is_the_amplified_one() -> None:
    assert accounting.plan_charge(0.01, 100) == accounting.PlanCharge(0.01, 100)
    assert accounting.plan_epsilon(1.0, 0.01, 100, 1e-5, accountant="rdp") == accounting.epsilon(
        1.0, 0.01, 100, 1e-5, "rdp"
    )


def test_a_rare_sample_still_charges_one_round() -> None:
    """q = 1e-9: the most sampled client is likely in no round, yet a round that runs
    charges its members, so the plan is charged one (as federation_epsilon was)."""
    assert accounting.plan_charge(1e-9, 10, 10) == accounting.PlanCharge(1.0, 1, 1)


def test_delta_at_one_over_the_population_is_refused() -> None:
    """At delta >= 1/N the guarantee allows releasing one client's data outright."""
    with pytest.raises(ConfigurationError, match="1 / population"):
        accounting.plan_epsilon(1.0, 0.5, 10, delta=0.1, population=10)
    with pytest.raises(ConfigurationError, match="1 / population"):
        accounting.noise_for_budget(1.0, delta=0.1, sample_rate=0.5, rounds=10, population=10)


def test_noise_for_budget_returns_the_printed_z_and_its_own_epsilon() -> None:
    found = accounting.noise_for_budget(3.0, 1e-5, 1.0, 10, accountant="rdp")
    assert found.noise_multiplier == float(found.text)
    assert found.noise_multiplier >= accounting.noise_multiplier_for(3.0, 1e-5, 1.0, 10, "rdp")
    assert found.epsilon == accounting.epsilon(found.noise_multiplier, 1.0, 10, 1e-5, "rdp")
    assert found.epsilon <= 3.0
