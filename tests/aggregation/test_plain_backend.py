"""The plain backend fails closed as the others do: a refused contribution (malformed, or
beyond the round's value bound) raises a typed error, changes no state, and leaves the
party's one slot free for its honest contribution."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import refused_call

from secagg.aggregation.base import Announce
from secagg.aggregation.plain import (
    PlainBackend,
    PlainClient,
    PlainServer,
    encode_contribution,
)
from secagg.errors import ConfigurationError, InvalidMessage, MalformedMessage

N, D, BOUND = 3, 4, 2.0


def _round(bound: float = BOUND) -> tuple[PlainBackend, PlainServer]:
    backend = PlainBackend(value_bound=bound)
    spec = backend.plan(N, D)
    server = backend.server(spec)
    assert all(isinstance(event, Announce) for event in server.start())
    return backend, server


def _honest(server: PlainServer, party: int, value: float = 0.5) -> np.ndarray:
    x = np.full(D, value)
    server.handle(party, encode_contribution(party, x))
    return x


@pytest.mark.parametrize(
    "payload",
    [
        encode_contribution(0, np.zeros(D))[:-1],  # short
        b"XXXX" + encode_contribution(0, np.zeros(D))[4:],  # not plain
        encode_contribution(1, np.zeros(D)),  # another party's header
        encode_contribution(0, np.array([0.0, np.nan, 0.0, 0.0])),
        "text",
    ],
    ids=["short", "magic", "sender", "nan", "str"],
)
def test_a_malformed_contribution_changes_nothing_and_keeps_the_slot(payload: object) -> None:
    _, server = _round()
    refused_call(server, MalformedMessage, server.handle, 0, payload)
    x = _honest(server, 0)  # the party's slot is still free
    for party in (1, 2):
        _honest(server, party)
    np.testing.assert_array_equal(server.finish().total, 3 * x)


@pytest.mark.parametrize("coordinate", [BOUND * (1 + 2**-50), -3 * BOUND, 1e308])
def test_the_server_refuses_a_contribution_beyond_the_value_bound(coordinate: float) -> None:
    """The client checks the bound (check_bound) but the server did not: a client that
    skipped the check (or crafted its bytes) had any finite value summed, where the
    round's bound is what its error bound and every backend's arithmetic are sized for
    (the masking backend's ring, CKKS's scale)."""
    _, server = _round()
    crafted = np.zeros(D)
    crafted[2] = coordinate
    caught = refused_call(server, InvalidMessage, server.handle, 0, encode_contribution(0, crafted))
    assert "client 0" in str(caught.value) and "value bound 2" in str(caught.value)
    _honest(server, 0)  # the slot is still free: the honest contribution is summed
    assert server.waiting_for == frozenset({1, 2})


def test_the_bound_itself_is_accepted_and_an_unbounded_round_takes_any_finite_value() -> None:
    _, server = _round()
    edge = np.array([BOUND, -BOUND, 0.0, 1.0])
    server.handle(0, encode_contribution(0, edge))
    assert 0 not in server.waiting_for
    _, unbounded = _round(float("inf"))
    unbounded.handle(0, encode_contribution(0, np.full(D, 1e308)))
    assert 0 not in unbounded.waiting_for


def test_a_client_update_refused_for_its_bound_keeps_the_client_unsent() -> None:
    backend, _ = _round()
    client = backend.open_client(backend.plan(N, D), 1, rounding=None, policy=None)
    assert isinstance(client, PlainClient)
    refused_call(client, ConfigurationError, client.set_input, np.full(D, 2 * BOUND))
    refused_call(client, ConfigurationError, client.set_input, np.full(D + 1, 0.0))
    assert client.set_input(np.full(D, BOUND)) == [encode_contribution(1, np.full(D, BOUND))]
