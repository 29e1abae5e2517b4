"""A round refused because its population's colluders may fill it but one says what
would pass, and only what would (2026-12-07).

Before, the refusal always said "draw rounds of at least {c + 2} clients": 11 for a
population of 10 at 90 % (no round of 10 clients has 11), 1 000 002 for a population
of 2 000 000 (beyond the 10^6 a population may have; that population was never named
as the mistake), and "lower the corrupt fraction" without saying how far. Now a round
size is hinted only where one can be drawn from the population, and the fraction is
the largest the refused round takes, rounded down."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocol import graph_params
from secagg.protocol.config import RoundConfig


def _refusal(n: int, population: int, corrupt_fraction: float) -> str:
    with pytest.raises(ConfigurationError) as caught:
        RoundConfig.create(n, 4, population=population, corrupt_fraction=corrupt_fraction)
    return str(caught.value)


def _passes_the_population_check(n: int, population: int, corrupt_fraction: float) -> bool:
    """Whether a round of ``n`` drawn from ``population`` has a private threshold at
    ``corrupt_fraction`` (the check the refusal is about, not the rest of the plan)."""
    floor = graph_params.colluder_floor(n, population, corrupt_fraction)
    return floor is not None and n <= population <= graph_params.MAX_NUM_CLIENTS


@pytest.mark.parametrize(("n", "population", "fraction"), [(5, 10, 0.9), (9, 10, 0.8)])
def test_no_round_size_is_hinted_where_no_round_of_the_population_has_one(
    n: int, population: int, fraction: float
) -> None:
    """90 % of 10 is 9 colluders: every round of it, the whole population too, has one
    honest client at most (it said "draw rounds of at least 11 clients"); 80 % of 10 is
    8, and only the whole population is left (it said "at least 10" without that)."""
    text = _refusal(n, population, fraction)
    if population - graph_params.population_colluders(n, population, fraction) < 2:
        assert "draw rounds" not in text
        assert "no round drawn from it" in text
    else:
        assert f"draw rounds of {population} clients (the whole population)" in text


def test_a_population_beyond_the_limit_is_named_not_a_round_beyond_it() -> None:
    """It said "draw rounds of at least 1000002 clients", more than any round or
    population may have; the population is the mistake."""
    text = _refusal(3, 2_000_000, 0.5)
    assert "population must lie in [num_clients = 3, 1000000]" in text
    assert "draw rounds" not in text


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(2, 200),
    extra=st.integers(1, 10**6),
    fraction=st.floats(0.0, 0.95, allow_nan=False),
)
def test_what_the_refusal_hints_passes(n: int, extra: int, fraction: float) -> None:
    """Every round size and corrupt fraction the refusal names passes the check it
    failed: a round of that size drawn from the same population, or the refused round
    at that fraction; and no size is named that the population cannot hold."""
    population = min(n + extra, graph_params.MAX_NUM_CLIENTS)
    if _passes_the_population_check(n, population, fraction):
        return  # no refusal of this kind (others may refuse the plan; not checked)
    text = _refusal(n, population, fraction)
    assert "has no private threshold" in text, text
    sizes = [int(s) for s in re.findall(r"draw rounds of (?:at least )?(\d+) clients", text)]
    for size in sizes:
        assert n < size <= population
        assert _passes_the_population_check(size, population, fraction)
    (lowered,) = re.findall(r"lower the corrupt fraction to at most ([0-9.e+-]+)", text)
    assert float(lowered) < fraction
    assert _passes_the_population_check(n, population, float(lowered))
