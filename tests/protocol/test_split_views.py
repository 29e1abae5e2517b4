"""A server that shows different clients different survivor lists learns no input.

The never-both rule (a holder reveals either the self-mask share or the mask-key
share of a neighbour, never both) protects one holder. Across holders it is the
consistency check of the active variant that protects an owner: a server that tells
some holders "v survived" and others "v dropped" would get ``b_v`` from the first and
``s_v`` from the second, hence ``x_v``. tests/protocol/test_adversarial.py refuses one
such lie to one client; here the server lies at random to every client at once: each
gets a survivor list drawn from a few candidates (sometimes one that omits it), then
one or two unmasking requests with any candidate list, any dropout list (sometimes
overlapping the survivors) and every signature the server holds over that list,
including those of colluding clients, which sign every candidate. Whatever the
schedule, for every honest client the server ends up with fewer than ``t`` shares of
its self-mask or fewer than ``t`` of its mask key, counting the shares its colluders
hold; no honest holder ever reveals both kinds of one owner; and every refusal is a
typed error that changes nothing (an abort only moves the client to ABORTED).
"""

from __future__ import annotations

import pytest
from _harness import SteppedRound, fingerprint, wire
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from secagg.errors import RoundAborted, SecAggError
from secagg.protocol import ServerPhase, common
from secagg.protocol.client import Client, ClientPhase
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    ConsistencyRequest,
    ConsistencySignature,
    GraphKind,
    PartySignature,
    UnmaskingRequest,
    UnmaskingShares,
)


def _ask(client: Client, message: object) -> list | None:
    """The client's replies, or None if it refused: then with a typed error and, unless
    it aborted, no change at all."""
    before = fingerprint(client)
    try:
        return client.handle(wire(message))  # type: ignore[arg-type]
    except RoundAborted:
        assert client.phase == ClientPhase.ABORTED
        event("a client aborted")
    except SecAggError as exc:
        assert fingerprint(client) == before
        event(f"refused: {type(exc).__name__}")
    return None


@st.composite
def _lists(draw: st.DrawFn, n: int) -> tuple[int, ...]:
    """A plausible survivor list: everyone but a few (a lie must look like a dropout)."""
    gone = draw(st.sets(st.integers(0, n - 1), max_size=2))
    return tuple(p for p in range(n) if p not in gone)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_split_survivor_lists_never_give_the_server_both_secrets_of_an_honest_client(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(5, 10), label="n")
    active = data.draw(st.booleans(), label="active")
    harary = n >= 8 and data.draw(st.booleans(), label="harary")
    k = data.draw(st.sampled_from(range(4, n - 1, 2)), label="k") if harary else None
    degree = n - 1 if k is None else k
    graph = GraphKind.HARARY if harary else GraphKind.COMPLETE
    policy = ClientPolicy()
    lowest = policy.minimum_threshold(n, graph, degree, active=active)
    assume(lowest is not None)
    assert lowest is not None
    t = data.draw(st.integers(lowest, degree + 1), label="t")
    r = SteppedRound(n, 4, active=active, graph=graph.name.lower(), k=k, threshold=t)
    # the colluders the clients' policy is sized for (active), or none (passive: a
    # lying server is outside that model, but each holder's own rule still holds)
    most = policy.colluders(n) if active else 0
    colluders = data.draw(st.sets(st.integers(0, n - 1), max_size=most), label="colluders")
    honest = [p for p in range(n) if p not in colluders]
    while r.server.phase not in (ServerPhase.CONSISTENCY_CHECK, ServerPhase.UNMASKING):
        r.step()
    rid = r.server.round_id
    candidates = data.draw(st.lists(_lists(n), min_size=1, max_size=3), label="lists")
    signatures: dict[tuple[int, ...], dict[int, bytes]] = {c: {} for c in candidates}
    if active:
        for listed in candidates:  # colluders sign whatever the server asks
            for p in colluders:
                payload = common.consistency_payload(rid, listed)
                signatures[listed][p] = r.identity[p].sign(payload)
        for p in honest:
            listed = data.draw(st.sampled_from(candidates), label=f"list shown to {p}")
            replies = _ask(r.clients[p], ConsistencyRequest(rid, p, listed))
            if replies:
                (answer,) = replies
                assert isinstance(answer, ConsistencySignature)
                signatures[listed][p] = answer.signature
    seeds: dict[int, set[int]] = {v: set() for v in range(n)}  # owner -> holders revealing
    keys: dict[int, set[int]] = {v: set() for v in range(n)}
    for p in honest:
        survivors = data.draw(st.sampled_from(candidates), label="survivors")
        for _ in range(data.draw(st.integers(1, 3), label=f"requests to {p}")):
            others = [v for v in survivors if v != p]
            if others and data.draw(st.booleans(), label="now say one survivor dropped"):
                # the classic lie: the self-mask share of q was asked for (or will be,
                # by another holder); now its mask-key share, as if q had dropped
                q = data.draw(st.sampled_from(others), label="said to have dropped")
                survivors = tuple(v for v in survivors if v != q)
            else:
                survivors = data.draw(st.sampled_from(candidates), label="survivors")
            rest = [v for v in range(n) if v not in survivors]
            dropped = set(rest)
            if rest and data.draw(st.integers(0, 4), label="partial dropout list") == 0:
                dropped = data.draw(st.sets(st.sampled_from(rest)), label="dropped")
            if survivors and data.draw(st.integers(0, 4), label="overlap") == 0:
                dropped.add(data.draw(st.sampled_from(survivors), label="in both lists"))
            signed = signatures.get(survivors, {})
            sigs = tuple(PartySignature(q, s) for q, s in sorted(signed.items()))
            request = UnmaskingRequest(rid, p, survivors, tuple(sorted(dropped)), sigs)
            replies = _ask(r.clients[p], request)
            if not replies:
                continue
            event("a client revealed shares")
            (shares,) = replies
            assert isinstance(shares, UnmaskingShares)
            for item in shares.self_mask_shares:
                seeds[item.owner].add(p)
            for item in shares.mask_key_shares:
                keys[item.owner].add(p)
    for v in honest:
        assert not seeds[v] & keys[v], f"holders {seeds[v] & keys[v]} revealed both of {v}"
        if active:
            colluding = r.server.graph.holders(v) & colluders
            both = len(seeds[v] | colluding) >= t and len(keys[v] | colluding) >= t
            assert not both, f"the server holds t shares of both secrets of party {v}"
        if seeds[v] and keys[v]:
            event("both kinds of one owner revealed, by different holders")


@pytest.mark.parametrize(("t", "leaks"), [(3, True), (5, False)])
def test_the_same_split_view_gets_both_secrets_only_below_the_policys_threshold(
    t: int, leaks: bool
) -> None:
    """Why the property above holds: n = 6, two colluders (the policy's floor), victim 0.
    The server shows the full list to 0 and 1 and a list without 0 to 2 and 3; the
    colluders sign both. At t = 3 (what a client with its parameter check switched off
    accepts) both lists carry t signatures and the server collects t shares of 0's
    self-mask and t of its mask key: its input. At t = 5, the least the default policy
    accepts (2t > n + c), the same lies leave it short of one kind."""
    n, victim, colluders = 6, 0, (4, 5)
    r = SteppedRound(n, 4, active=True, threshold=t)
    public = {p: key.verify_key for p, key in r.identity.items()}
    lax = ClientPolicy(check_parameters=False)
    r.clients = [
        Client(p, r.inputs[p], signing_key=r.identity[p], identity_keys=public, policy=lax)
        for p in range(n)
    ]
    while r.server.phase != ServerPhase.CONSISTENCY_CHECK:
        r.step()
    rid = r.server.round_id
    everyone, without = tuple(range(n)), tuple(range(1, n))
    shown = {0: everyone, 1: everyone, 2: without, 3: without}
    signatures: dict[tuple[int, ...], list[PartySignature]] = {everyone: [], without: []}
    for listed, group in signatures.items():
        group += [
            PartySignature(c, r.identity[c].sign(common.consistency_payload(rid, listed)))
            for c in colluders
        ]
    for p, listed in shown.items():
        (answer,) = r.clients[p].handle(wire(ConsistencyRequest(rid, p, listed)))
        signatures[listed].append(PartySignature(p, answer.signature))
    seeds, keys = set(colluders), set(colluders)  # colluders hold both shares of 0
    for p, listed in shown.items():
        dropped = () if listed == everyone else (victim,)
        sigs = tuple(sorted(signatures[listed], key=lambda s: s.party))
        try:
            (shares,) = r.clients[p].handle(wire(UnmaskingRequest(rid, p, listed, dropped, sigs)))
        except SecAggError:
            continue
        seeds |= {p for s in shares.self_mask_shares if s.owner == victim}
        keys |= {p for s in shares.mask_key_shares if s.owner == victim}
    assert (len(seeds) >= t and len(keys) >= t) is leaks
    assert ClientPolicy().minimum_threshold(n, GraphKind.COMPLETE, n - 1, active=True) == 5
