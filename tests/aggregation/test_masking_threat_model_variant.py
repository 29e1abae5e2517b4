"""The masking report's threat model states the variant the round ran (2026-12-07).

Every masking report said "honest-but-curious server", the active variant's too, whose
signed keys and survivor sets and whose threshold, sized for colluders placed anywhere,
hold against a server that deviates (lies about who dropped out, chooses the graph seed
and the setup): docs/protocol.md ("Threat model") and docs/deployment.md ("What the
server can and cannot see") state it so. A passive round still says honest-but-curious,
and that a server which deviates is outside it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

import secagg
from secagg.aggregation import Announce, ToParty, decode_spec
from secagg.aggregation.base import AggregationReport, RoundIdentity
from secagg.aggregation.masking import MaskingBackend
from secagg.crypto.signing import SigningKey

#: the smallest round the active variant keeps private (2 clients have no such threshold)
CLIENTS = 3


def _active_round_report() -> AggregationReport:
    """An active round of :data:`CLIENTS` run in process, each client with its own
    Ed25519 key and the others' verify keys (the identities a raw key may be)."""
    keys = [SigningKey.generate() for _ in range(CLIENTS)]
    verify = {party: key.verify_key for party, key in enumerate(keys)}
    backend = MaskingBackend(graph="complete", value_bound=1.0, active=True)
    spec = backend.plan(CLIENTS, 2, identities=tuple(k.verify_key.raw for k in keys))
    server = backend.server(spec)
    clients = {}
    inbox: deque[tuple[int, bytes]] = deque()

    def deliver(events: list[object]) -> None:
        for event in events:
            if isinstance(event, Announce):
                announced = decode_spec(event.spec)
                for party in range(CLIENTS):
                    identity = RoundIdentity(keys[party], verify)
                    clients[party] = backend.client(announced, party, identity=identity)
                    sent = clients[party].set_input(np.full(2, 0.25))
                    inbox.extend((party, payload) for payload in sent)
            elif isinstance(event, ToParty):
                replies = clients[event.party].handle(event.payload)
                inbox.extend((event.party, payload) for payload in replies)

    deliver(server.start())
    while not server.done:
        if inbox:
            deliver(server.handle(*inbox.popleft()))
        else:
            deliver(server.close_phase())
    total, report = server.finish()
    assert np.allclose(total, 0.75, atol=report.error_bound)  # the round ran
    return report


def test_an_active_round_does_not_call_its_server_honest_but_curious() -> None:
    text = _active_round_report().threat_model
    assert "honest-but-curious" not in text, text
    assert text.startswith("active variant: a server that deviates"), text
    assert "learns only the sum of the contributions it received" in text
    # what the signatures rest on (docs/deployment.md): identities the server cannot issue
    assert "a CA that is not the server operator's" in text
    # a round of 3 is sized for 1 colluder (min_colluders capped at n - 2): it read
    # "1 colluders"
    assert "(1 colluder of its 3 clients), placed anywhere" in text


def test_a_passive_round_says_honest_but_curious_and_what_is_outside_it() -> None:
    _, report = secagg.aggregate(np.zeros((CLIENTS, 2)), backend=MaskingBackend())
    text = report.threat_model
    assert text.startswith("passive variant: honest-but-curious server learns only the sum")
    assert "a server that deviates" in text and "outside" in text, text
