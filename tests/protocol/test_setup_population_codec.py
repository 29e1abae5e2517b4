"""``RoundSetup.population`` on the wire (message version 4): strict, bounded, bound.

The population a round is drawn from decides the colluders each client counts (review
of colluders, 2026-12-07), so its field is held to what a population can be (0: not
sampled, else from the round's size to the search's limit) at encode, decode and in a
client's hands; it is in the setup digest the active variant signs, so two clients shown
different populations do not exchange keys; and a version 3 peer, which has no such
field, is refused by name rather than misread.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from _harness import refused_call

from secagg.errors import InvalidMessage, MalformedMessage
from secagg.protocol import common
from secagg.protocol import messages as m
from secagg.protocol.client import Client
from secagg.protocol.messages import GraphKind, RoundSetup


def _setup(n: int = 20, population: int = 100) -> RoundSetup:
    return RoundSetup(
        os.urandom(16),
        0,
        n,
        4,
        32,
        n - 1,
        GraphKind.COMPLETE,
        n - 1,
        os.urandom(32),
        False,
        population,
    )


def test_the_population_round_trips() -> None:
    for population in (0, 20, 100, m.MAX_POPULATION):
        setup = _setup(population=population)
        assert m.decode(m.encode(setup)) == setup


@pytest.mark.parametrize("population", [1, 19, m.MAX_POPULATION + 1, 2**32 - 1])
def test_a_population_below_the_round_or_past_the_limit_is_refused_both_ways(
    population: int,
) -> None:
    with pytest.raises(MalformedMessage, match="population"):
        m.encode(_setup(population=population))
    raw = bytearray(m.encode(_setup(population=100)))
    raw[-4:] = population.to_bytes(4, "big")
    with pytest.raises(MalformedMessage, match="population"):
        m.decode(bytes(raw))


def test_a_client_refuses_a_setup_object_with_an_impossible_population_unchanged() -> None:
    client = Client(0, np.zeros(4, dtype=np.uint32))
    bad = _setup(population=5)  # built in code, never through the codec
    caught = refused_call(client, InvalidMessage, client.handle, bad)
    assert "population of 5" in str(caught.value)


def test_a_version_3_setup_is_refused_by_name() -> None:
    raw = m.encode(_setup(population=100))
    old = raw[:2] + bytes([3]) + raw[3:-4]  # the version 3 layout: no population
    with pytest.raises(MalformedMessage, match="unsupported message version 3"):
        m.decode(old)


def test_the_setup_digest_binds_the_population() -> None:
    """Active clients sign their keys over the digest: a neighbour shown another
    population (so counting other colluders) signs another digest."""
    setup = _setup(population=100)
    assert common.setup_digest(setup) != common.setup_digest(replace(setup, population=20))
    assert common.setup_digest(setup) != common.setup_digest(replace(setup, population=0))
