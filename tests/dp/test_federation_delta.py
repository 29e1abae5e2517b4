"""A federation's epsilon is only a guarantee for delta below 1 / N (docs/privacy.md).

Why: ``federation_epsilon(1, 0.1, 100, 0.05, 50)`` returned 16.5 and
``federation_noise_multiplier(3, 0.05, 0.1, 100, 50)`` a noise multiplier, both at a
delta that lets the mechanism publish one of the 50 clients' data outright; the CLI
(``secagg privacy ... --clients``) and ``DPConfig`` refused it, the library helpers the
privacy page teaches did not.
"""

from __future__ import annotations

import pytest

from secagg.dp import federation_epsilon, federation_noise_multiplier
from secagg.errors import ConfigurationError


@pytest.mark.parametrize("delta", [0.02, 0.05, 0.5])
def test_federation_epsilon_refuses_a_delta_not_below_one_over_the_population(
    delta: float,
) -> None:
    with pytest.raises(ConfigurationError, match=r"not below 1 / population = 1/50"):
        federation_epsilon(1.0, 0.1, 100, delta, 50)


@pytest.mark.parametrize("delta", [0.02, 0.05, 0.5])
def test_federation_noise_multiplier_refuses_a_delta_not_below_one_over_the_population(
    delta: float,
) -> None:
    with pytest.raises(ConfigurationError, match=r"not below 1 / population = 1/50"):
        federation_noise_multiplier(3.0, delta, 0.1, 100, 50)


def test_a_delta_just_below_one_over_the_population_is_accounted() -> None:
    """The bound is strict and nothing else moves: just below 1 / N both answer, and
    the plan's noise meets its budget."""
    eps = federation_epsilon(1.0, 0.1, 100, 0.0199, 50)
    assert 0 < eps < float("inf")
    z = federation_noise_multiplier(3.0, 0.0199, 0.1, 100, 50)
    assert federation_epsilon(z, 0.1, 100, 0.0199, 50) <= 3.0


@pytest.mark.parametrize("population", [0, -3, 2.5, "50", None, True])
def test_a_population_that_is_no_count_is_refused(population: object) -> None:
    with pytest.raises(ConfigurationError, match="population"):
        federation_epsilon(1.0, 0.1, 100, 1e-5, population)  # type: ignore[arg-type]
