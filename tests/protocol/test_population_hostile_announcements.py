"""A hostile server's announced population never buys it a round the branch's own
colluders can break (second review of colluders, 2026-12-07).

The server draws each round and names the population it was drawn from
(``RoundSetup.population``); each client counts its colluders over the largest of the
round, its own ``expected_clients`` and the announcement. Whatever the server announces
(0, "the whole federation", for a round smaller than the branch expects; a population
between the round and the branch's expectation; one far larger), a setup the client
accepts is safe for the colluders the branch itself assumes: ``c = max(floor(gamma *
max(n, expected)), min(min_colluders, n - 2))``, checked by an oracle that knows nothing
of populations (a policy of ``corrupt_fraction = 0`` and ``min_colluders = c``), and by
the bare inequalities of the active variant (``k > c``, ``2t > k + 1 + c``). A population
shown to one client and not to the others splits the round: its digest differs, so the
active variant's signed keys and the passive variant's sealed shares do not open.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from _harness import SteppedRound, fingerprint, refused_call, wire
from hypothesis import event, given, settings
from hypothesis import strategies as st

from secagg.crypto.signing import SigningKey
from secagg.errors import PolicyRefused, SignatureError
from secagg.protocol import Client, NeighbourGraph, ServerPhase
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    MAX_POPULATION,
    AdvertiseKeys,
    GraphKind,
    KeyDirectory,
    KeyEntry,
    RoundSetup,
)

_SIGNER = SigningKey.generate()


def _own_colluders(n: int, expected: int | None, gamma: float, min_colluders: int) -> int:
    """The colluders a branch assumes in a round of ``n`` from what it knows itself:
    its fraction of the federation it was told about, at least its floor."""
    packed = math.floor((gamma + 1e-14) * max(n, expected or 0))
    return max(packed, min(min_colluders, n - 2))


@st.composite
def _hostile_setups(draw: st.DrawFn) -> tuple[ClientPolicy, RoundSetup]:
    n = draw(st.integers(3, 120), label="n")
    expected = draw(st.one_of(st.none(), st.integers(n, 2000)), label="expected_clients")
    gamma = draw(st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.33]), label="corrupt")
    delta = draw(st.sampled_from([0.0, 0.05, 0.1]), label="dropout")
    floor = draw(st.integers(0, 4), label="min_colluders")
    active = draw(st.booleans(), label="active")
    evens = list(range(2, n - 1, 2))
    if evens and draw(st.booleans(), label="harary"):
        graph, k = GraphKind.HARARY, draw(st.sampled_from(evens), label="k")
    else:
        graph, k = GraphKind.COMPLETE, n - 1
    t = draw(st.integers(max(1, k // 2), k + 1), label="t")
    told = expected or n
    announced = draw(
        st.one_of(
            st.just(0),  # "the round is the whole federation"
            st.just(n),
            st.integers(n, max(n, told - 1)),  # between the round and the expectation
            st.just(told),
            st.integers(n, MAX_POPULATION),
        ),
        label="announced population",
    )
    policy = ClientPolicy(
        corrupt_fraction=gamma,
        dropout_fraction=delta,
        min_colluders=floor,
        expected_clients=expected,
    )
    setup = RoundSetup(bytes(16), 0, n, 4, 32, t, graph, k, bytes(32), active, announced)
    return policy, setup


@settings(max_examples=150, deadline=None)
@given(case=_hostile_setups())
def test_an_accepted_setup_is_safe_for_the_branch_s_own_colluders(
    case: tuple[ClientPolicy, RoundSetup],
) -> None:
    policy, setup = case
    n, k, t = setup.num_clients, setup.degree, setup.threshold
    own = _own_colluders(n, policy.expected_clients, policy.corrupt_fraction, policy.min_colluders)
    try:
        policy.check(setup, keys_configured=setup.active)
    except PolicyRefused as refused:
        event(f"refused: {refused.setting}")
        return
    event("accepted, announced " + ("0" if setup.population == 0 else "a population"))
    # accepted: the branch's colluders leave an honest pair, and the round holds
    # against them by an oracle that never heard of populations
    assert own <= n - 2, (own, n)
    assert policy.colluders(n, setup.population) >= own
    oracle = ClientPolicy(
        corrupt_fraction=0.0,
        dropout_fraction=policy.dropout_fraction,
        min_colluders=own,
    )
    assert oracle.accepts_parameters(dataclasses.replace(setup, population=0))
    if setup.active:
        assert 2 * t > k + 1 + own
        assert k > own or setup.graph == GraphKind.COMPLETE
    else:
        assert t > own or setup.graph == GraphKind.HARARY  # random placement on a ring


@settings(max_examples=40, deadline=None)
@given(case=_hostile_setups())
def test_the_client_state_machine_takes_exactly_what_its_policy_takes(
    case: tuple[ClientPolicy, RoundSetup],
) -> None:
    """The real client, not the policy alone: a setup refused leaves it unchanged, and
    one accepted is one the property above holds for."""
    policy, setup = case
    identities = {p: _SIGNER.verify_key for p in range(setup.num_clients)}
    client = Client(
        0,
        np.zeros(4, dtype=np.uint32),
        policy=policy,
        signing_key=_SIGNER if setup.active else None,
        identity_keys=identities if setup.active else None,
    )
    try:
        policy.check(setup, keys_configured=setup.active)
    except PolicyRefused:
        refused_call(client, PolicyRefused, client.handle, wire(setup))
        return
    (reply,) = client.handle(wire(setup))
    assert isinstance(reply, AdvertiseKeys)


@pytest.mark.parametrize("announced", [0, 20, 60])
def test_a_round_of_20_from_an_expected_100_refused_whatever_population_is_announced(
    announced: int,
) -> None:
    """The attack of the first review (5 colluders of 100 put in a round of 20 at k = 8,
    t = 6), with the server announcing the round itself, or a population between the
    round and the branch's 100: refused, the client unchanged."""
    setup = RoundSetup(bytes(16), 0, 20, 4, 32, 6, GraphKind.HARARY, 8, bytes(32), True, announced)
    policy = ClientPolicy(expected_clients=100)
    identities = {p: _SIGNER.verify_key for p in range(20)}
    client = Client(0, None, policy=policy, signing_key=_SIGNER, identity_keys=identities)
    before = fingerprint(client)
    with pytest.raises(PolicyRefused):
        client.handle(wire(setup))
    assert fingerprint(client) == before


def _other_population(setup: RoundSetup) -> RoundSetup:
    """The setup with another population the client's default policy accepts alike:
    the round itself named explicitly (0 <-> n), the colluders counted the same."""
    other = setup.num_clients if setup.population == 0 else 0
    return dataclasses.replace(setup, population=other)


def test_a_population_shown_to_one_active_client_only_splits_nothing() -> None:
    """Active: client 0 is shown the genuine setup with another population (one its
    policy accepts); its keys, signed over another digest, verify neither at the server
    nor at any neighbour, and it refuses theirs."""
    n = 10
    r = SteppedRound(n, 4, active=True, graph="harary")
    public = {p: key.verify_key for p, key in r.identity.items()}
    genuine = {m.recipient: m for m in r.to_clients}
    shown = _other_population(genuine[0])
    assert ClientPolicy().accepts_parameters(shown)
    victim = Client(0, None, signing_key=r.identity[0], identity_keys=public)
    (advert,) = victim.handle(wire(shown))
    refused_call(r.server, SignatureError, r.server.handle, wire(advert))
    graph = NeighbourGraph(n, shown.graph, shown.degree, shown.graph_seed)
    adverts = {0: advert}
    for p in range(1, n):
        (adverts[p],) = r.clients[p].handle(wire(genuine[p]))
    for p in sorted(graph.neighbours(0)):
        entries = tuple(
            KeyEntry(q, adverts[q].channel_key, adverts[q].mask_key, adverts[q].signature)
            for q in sorted(graph.neighbours(p))
        )
        directory = KeyDirectory(genuine[p].round_id, p, entries)
        refused_call(r.clients[p], SignatureError, r.clients[p].handle, wire(directory))


def test_a_population_shown_to_one_passive_client_only_aborts_the_round_naming_it() -> None:
    """Passive: nothing is signed, but every sealed share carries the digest of its
    sender's setup, so client 0's shares (population shown otherwise) open for nobody,
    its neighbours accuse it, and the server aborts before any share is revealed."""
    r = SteppedRound(10, 4, graph="complete")
    genuine = r.message_for(0)
    assert isinstance(genuine, RoundSetup)
    shown = _other_population(genuine)
    assert ClientPolicy().accepts_parameters(shown)
    r.to_clients = [shown if m.recipient == 0 else m for m in r.to_clients]
    for _ in range(3):  # setup, key directory, share delivery
        r.step()
    assert r.server.phase == ServerPhase.ABORTED, "the round went on with client 0"
    assert r.server.report.accused[0] == set(range(1, 10))
    assert "party 0" in (r.server.report.abort_reason or "")
