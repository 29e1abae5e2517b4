"""A masking round drawn from a federation names its population; branches count its colluders.

Review of colluders (2026-12-07): the server's plan sized a sampled round's k and t for
the round's own colluders, so a branch counting its federation's (``expected_clients``)
would have refused honest rounds, and one counting the round's accepted rounds a server
packed with all of them. Now ``MaskingBackend(max_clients=...)`` (a federation config
sets it to its clients, as for CKKS) plans every smaller round for the colluders of that
population and names it in the spec (spec version 2) and in the protocol's setup; the
branch holds both to its own count.
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.aggregation import get_backend
from secagg.aggregation.base import ToParty
from secagg.aggregation.masking import MaskingSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.registry import decode_spec
from secagg.aggregation.spec import encode_spec
from secagg.errors import ConfigurationError, MalformedMessage, PolicyRefused
from secagg.protocol.messages import RoundSetup, decode, encode


def _spec(population: int | None = 100, n: int = 20) -> MaskingSpec:
    backend = get_backend("secagg+", max_clients=population, value_bound=1.0)
    spec = backend.plan(n, 4)
    assert isinstance(spec, MaskingSpec)
    return spec


def test_a_round_of_20_from_100_is_planned_for_the_population_s_colluders() -> None:
    spec = _spec()
    assert spec.population == 100
    assert decode_spec(encode_spec(spec)) == spec
    config = spec.round_config()
    assert config.population == 100 and config.colluders == 5
    assert _spec(population=20).population == 0  # the whole federation: not sampled
    assert _spec(population=None).population == 0


def test_a_branch_expecting_100_takes_the_plan_and_refuses_one_naming_no_population() -> None:
    policy = BranchPolicy(expected_clients=100)
    _spec().check_policy(policy)  # the honest plan passes
    with pytest.raises(PolicyRefused) as refused:
        _spec(population=None).check_policy(policy)  # a server that hides the population
    assert refused.value.setting == "branch.expected_clients"
    assert "expects 100 clients, 5 colluders" in str(refused.value)


def test_a_setup_naming_another_population_than_the_spec_is_refused() -> None:
    """The setup must carry the spec's population: a server that approved a spec for 100
    and then announces the round as its own population is refused (round_setup)."""
    spec = _spec()
    backend = get_backend("secagg+", max_clients=100)
    server = backend.server(spec)
    setups = [o for o in server.start() if isinstance(o, ToParty)]
    setup = decode(setups[0].payload)
    assert isinstance(setup, RoundSetup) and setup.population == 100
    client = backend.open_client(
        spec, setup.recipient, rounding=None, policy=BranchPolicy(expected_clients=100)
    )
    forged = RoundSetup(**{**setup.__dict__, "population": 0})
    with pytest.raises(PolicyRefused) as refused:
        client.handle(encode(forged))
    assert refused.value.setting == "round_setup" and "population = 0" in str(refused.value)
    client.set_input(np.zeros(4))
    assert client.handle(setups[0].payload)  # the honest setup: keys advertised


def test_a_spec_of_version_1_is_refused_by_name_and_the_population_bounded() -> None:
    raw = encode_spec(_spec())
    with pytest.raises(MalformedMessage, match="version 1; this build reads version 2"):
        decode_spec(raw[:4] + b"\x01" + raw[5:])
    with pytest.raises(MalformedMessage, match="population"):
        decode_spec(raw[:-4] + (19).to_bytes(4, "little"))
    with pytest.raises(ConfigurationError, match="max_clients"):
        get_backend("secagg+", max_clients=1)


def test_a_round_too_small_for_the_federation_s_colluders_is_not_planned() -> None:
    """20 from 1 000 at 5 %: the 50 colluders may fill the round but one."""
    with pytest.raises(ConfigurationError, match="drawn from a population of 1000"):
        _spec(population=1000)
    assert _spec(population=1000, n=52).round_config().colluders == 50
