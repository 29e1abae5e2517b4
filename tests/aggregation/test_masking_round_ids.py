"""A masking round's protocol id follows from the caller's round context and the spec
(``bind_round``), on both sides; a bound client refuses a setup of any other id with the
state unchanged. Backends without a protocol round id accept a context and bind nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import Announce, ToParty
from secagg.aggregation.masking import MaskingBackend, MaskingClient, protocol_round_id
from secagg.aggregation.plain import PlainBackend
from secagg.errors import ConfigurationError, UnexpectedMessage, WrongRound
from secagg.protocol import decode
from secagg.protocol.client import ClientPhase
from secagg.protocol.messages import ROUND_ID_BYTES, AdvertiseKeys, RoundSetup

D = 6


def round_context(number: int) -> bytes:
    """A caller's round context (a federation's is :func:`secagg.runtime.wire.round_context`)."""
    return b"test/round/" + number.to_bytes(8, "big")


def _setup_for(server_events: list[object], party: int) -> bytes:
    (payload,) = [
        e.payload
        for e in server_events
        if isinstance(e, ToParty) and isinstance(decode(e.payload), RoundSetup) and e.party == party
    ]
    return payload


def _run(
    backend: MaskingBackend, n: int, server_context: bytes, client_context: bytes
) -> np.ndarray:
    """One round with every party bound; the sum (or the refusal of the first setup)."""
    spec = backend.plan(n, D)
    server = backend.server(spec)
    server.bind_round(server_context)
    clients = [backend.client(spec, p) for p in range(n)]
    for client in clients:
        client.bind_round(client_context)
    inbox: list[tuple[int, bytes]] = []
    rows = np.arange(n * D, dtype=np.float64).reshape(n, D) / (n * D)

    def deliver(events: list[object]) -> None:
        for event in events:
            if isinstance(event, Announce):
                for p, client in enumerate(clients):
                    inbox.extend((p, m) for m in client.set_input(rows[p]))
            elif isinstance(event, ToParty):
                inbox.extend((event.party, m) for m in clients[event.party].handle(event.payload))

    deliver(server.start())
    while not server.done:
        if inbox:
            party, payload = inbox.pop(0)
            deliver(server.handle(party, payload))
        else:
            deliver(server.close_phase())
    total = server.finish().total
    assert np.allclose(total, rows.sum(axis=0), atol=1e-6)
    return total


def test_a_round_bound_on_both_sides_completes_under_the_derived_id() -> None:
    backend = MaskingBackend(graph="complete", value_bound=1.0)
    _run(backend, 3, round_context(7), round_context(7))
    spec = backend.plan(3, D)
    server = backend.server(spec)
    server.bind_round(round_context(7))
    (setup,) = [decode(_setup_for(server.start(), 0))]
    assert setup.round_id == protocol_round_id(round_context(7), spec)


def test_a_bound_client_refuses_a_setup_of_another_round_and_changes_nothing() -> None:
    backend = MaskingBackend(graph="complete", value_bound=1.0)
    spec = backend.plan(3, D)
    client = backend.client(spec, 0)
    assert isinstance(client, MaskingClient)
    client.bind_round(round_context(2))
    assert client.set_input(np.zeros(D)) == []  # the input waits for the setup
    stale = backend.server(spec)
    stale.bind_round(round_context(1))  # a server reusing round 1's id in round 2
    with pytest.raises(WrongRound):
        client.handle(_setup_for(stale.start(), 0))
    assert client._protocol.phase == ClientPhase.AWAIT_SETUP
    assert client._protocol.setup is None
    honest = backend.server(spec)
    honest.bind_round(round_context(2))
    (reply,) = client.handle(_setup_for(honest.start(), 0))
    assert isinstance(decode(reply), AdvertiseKeys)


def test_an_unbound_server_is_refused_by_a_bound_client() -> None:
    """A server that draws its round id itself (the old behaviour) is refused."""
    backend = MaskingBackend(graph="complete", value_bound=1.0)
    spec = backend.plan(3, D)
    client = backend.client(spec, 1)
    client.bind_round(round_context(1))
    with pytest.raises(WrongRound):
        client.handle(_setup_for(backend.server(spec).start(), 1))


def test_the_id_names_the_spec_too() -> None:
    """The same round number under another spec (another cohort, size or variant) is
    another id: a signature made for one verifies under no other."""
    backend = MaskingBackend(graph="complete", value_bound=1.0)
    ids = {
        protocol_round_id(round_context(1), backend.plan(3, D)),
        protocol_round_id(round_context(1), backend.plan(4, D)),
        protocol_round_id(round_context(1), backend.plan(3, D + 1)),
        protocol_round_id(round_context(2), backend.plan(3, D)),
    }
    assert len(ids) == 4 and all(len(i) == ROUND_ID_BYTES for i in ids)


def test_binding_is_refused_once_the_round_is_under_way_or_with_a_bad_context() -> None:
    backend = MaskingBackend(graph="complete", value_bound=1.0)
    spec = backend.plan(3, D)
    server = backend.server(spec)
    server.bind_round(round_context(1))
    events = server.start()
    with pytest.raises(UnexpectedMessage):
        server.bind_round(round_context(2))
    client = backend.client(spec, 0)
    client.bind_round(round_context(1))
    client.handle(_setup_for(events, 0))
    with pytest.raises(UnexpectedMessage):
        client.bind_round(round_context(1))
    fresh = backend.client(spec, 0)
    fresh.bind_round(round_context(1))
    with pytest.raises(ConfigurationError):  # one client is one round
        fresh.bind_round(round_context(2))
    for bad in (b"", "round 1", 1, b"x" * 1025):
        with pytest.raises(ConfigurationError):
            backend.server(spec).bind_round(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            backend.client(spec, 0).bind_round(bad)  # type: ignore[arg-type]


def test_a_backend_without_a_round_id_takes_a_context_and_checks_its_type() -> None:
    backend = PlainBackend()
    spec = backend.plan(2, D)
    backend.server(spec).bind_round(round_context(1))
    backend.client(spec, 0).bind_round(round_context(1))
    with pytest.raises(ConfigurationError):
        backend.client(spec, 0).bind_round("1")  # type: ignore[arg-type]


@settings(max_examples=40)
@given(
    mine=st.integers(min_value=0, max_value=2**64 - 1),
    theirs=st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1)),
    n=st.integers(min_value=2, max_value=5),
    party=st.integers(min_value=0, max_value=4),
    graph=st.sampled_from(["complete", "harary"]),
)
def test_a_bound_client_takes_exactly_its_own_rounds_setup(
    mine: int, theirs: int | None, n: int, party: int, graph: str
) -> None:
    """Whatever two round numbers: a client bound to ``mine`` refuses the setup of a
    server bound to ``theirs`` unless they are equal (None: the same), unchanged, then
    takes its own."""
    party %= n
    theirs = mine if theirs is None else theirs
    backend = MaskingBackend(graph=graph, value_bound=1.0)
    spec = backend.plan(n, D)
    client = backend.client(spec, party)
    client.bind_round(round_context(mine))
    other = backend.server(spec)
    other.bind_round(round_context(theirs))
    setup = _setup_for(other.start(), party)
    if mine != theirs:
        with pytest.raises(WrongRound):
            client.handle(setup)
        assert client._protocol.setup is None  # type: ignore[attr-defined]
        own = backend.server(spec)
        own.bind_round(round_context(mine))
        setup = _setup_for(own.start(), party)
    (reply,) = client.handle(setup)
    assert decode(reply).round_id == protocol_round_id(round_context(mine), spec)
