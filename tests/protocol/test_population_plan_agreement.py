"""The honest server's plan of a sampled round against an honest client's own check.

Review of colluders (2026-12-07): a round drawn from a larger population must be sized
for the population's colluders (the server that draws it may put all of them in it),
and each client counts them itself. The two counts must agree, or a client holding the
federation's own policy would refuse honest rounds mid-protocol (26 planned settings
did before the plan counted them, e.g. 25 % corrupt, a population of 100, a round of
20). The property: for any population, round size, fractions and variant, the server's
plan is either refused at planning with a ``ConfigurationError`` naming the numbers, or
its setup passes the check of a client with the same fractions and ``expected_clients``
the population, and the colluders the server leaves out of its survivors' connectivity
check are the client's: no honest round is refused after the setup.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocol import Server
from secagg.protocol.config import ClientPolicy, RoundConfig
from secagg.protocol.graph import NeighbourGraph


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 60),
    extra=st.integers(0, 400),
    corrupt=st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.25]),
    dropout=st.sampled_from([0.0, 0.05, 0.1, 0.2]),
    active=st.booleans(),
    graph=st.sampled_from(["harary", "complete"]),
)
def test_the_plan_of_a_sampled_round_passes_the_clients_check_or_is_refused_at_once(
    n: int, extra: int, corrupt: float, dropout: float, active: bool, graph: str
) -> None:
    population = n + extra
    try:
        config = RoundConfig.create(
            n,
            3,
            graph=graph,  # type: ignore[arg-type]
            active=active,
            corrupt_fraction=corrupt,
            dropout_fraction=dropout,
            population=population,
        )
    except ConfigurationError as refused:
        text = str(refused)
        # the only refusals: fcp's fraction limits, an active round of 2, or a
        # population whose colluders may fill the round but one (named in numbers)
        assert (
            "SecAgg+ needs" in text
            or "no complete-graph threshold is private" in text
            or f"a round of {n} clients drawn from a population of {population}" in text
        ), text
        return
    server = Server(config, identity_keys=_stand_in_keys(n) if active else None)
    (setup, *_) = server.start()
    assert setup.population == population
    policy = ClientPolicy(
        corrupt_fraction=corrupt, dropout_fraction=dropout, expected_clients=population
    )
    policy.check(setup, keys_configured=active)  # the setup passes
    colluders = policy.colluders(n, setup.population)
    assert colluders == config.colluders
    assert colluders <= n - 2  # a plannable round leaves an honest pair
    if active:
        # the server leaves the same colluders out of its connectivity check, and a
        # round without dropouts passes the client's: no honest round refused later
        assert server._bridging_colluders == colluders
        graph_ = NeighbourGraph(n, setup.graph, setup.degree, setup.graph_seed)
        assert graph_.connects_despite(tuple(range(n)), colluders)


def test_a_round_too_small_for_its_population_s_colluders_is_refused_naming_them() -> None:
    """20 from 1 000 at 5 %: 50 colluders may fill the round; no k or t is private."""
    with pytest.raises(ConfigurationError) as refused:
        RoundConfig.create(20, 3, population=1000, active=True)
    text = str(refused.value)
    assert "a round of 20 clients drawn from a population of 1000" in text
    assert "50 colluders" in text and "at least 52 clients" in text
    # the same population, a round of 52: sized for its 50, an honest pair left
    assert RoundConfig.create(52, 3, population=1000).colluders == 50


def test_a_config_s_population_is_bounded() -> None:
    with pytest.raises(ConfigurationError, match="population must lie in"):
        RoundConfig.create(20, 3, population=19)
    with pytest.raises(ConfigurationError, match="population must be an integer"):
        RoundConfig.create(20, 3, population=True)  # type: ignore[arg-type]


def _stand_in_keys(n: int) -> dict[int, object]:
    from secagg.crypto.signing import SigningKey

    return {p: SigningKey.generate().verify_key for p in range(n)}
