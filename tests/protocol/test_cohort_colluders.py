"""The colluders of a cohort, packed into a round drawn from it, against the client's t.

Review of colluders (2026-12-07, open: docs/protocol.md, "expected_clients"):
``ClientPolicy.colluders`` takes the corrupt fraction of the round the server announces.
``ClientPolicy(expected_clients=100)`` (5 % corrupt: 5 colluders in its cohort) accepts
an active SecAgg+ round of 20 at k = 8, t = 6, sized for the round's 2; but the server
chooses who is in the round, so all 5 can be, and with 5 the minimum t is 8. At t = 6
the 5 colluders and one honest holder meet t for each of two conflicting survivor lists:
the server collects t shares of the victim's self-mask and t of its mask key, its input.
These tests pin the attack and the workaround the docs name (``min_colluders`` set to
the cohort's colluders); the client-side fix waits for the
server's plan to size sampled rounds for the population's colluders.
"""

from __future__ import annotations

import pytest
from _harness import SteppedRound, wire

from secagg.errors import PolicyRefused
from secagg.protocol import ServerPhase, common
from secagg.protocol.client import Client
from secagg.protocol.config import ClientPolicy
from secagg.protocol.graph_params import minimum_threshold
from secagg.protocol.messages import (
    ConsistencyRequest,
    PartySignature,
    UnmaskingRequest,
)

COHORT, N, K, T = 100, 20, 8, 6


def _split_view_round(policy: ClientPolicy) -> SteppedRound:
    """The active round of 20 at k = 8, t = 6, every client under ``policy``."""
    r = SteppedRound(N, 4, active=True, graph="harary", k=K, threshold=T)
    public = {p: key.verify_key for p, key in r.identity.items()}
    r.clients = [
        Client(p, r.inputs[p], signing_key=r.identity[p], identity_keys=public, policy=policy)
        for p in range(N)
    ]
    return r


def test_the_cohort_s_colluders_in_a_round_of_20_recover_an_honest_input_at_t_6() -> None:
    """What t = 6 allows against 5 colluders (each client's parameter check off: a
    client counting the round's 2 colluders passes this setup, so the check would not
    stop it either, and off it keeps the test about the protocol). On the ring, the
    victim sits at place 0 and the server's 5 colluders at places -2, -1, 1, 2, 3.
    Honest clients at places 4 to 10 are shown a survivor list without the victim, the
    others (the victim included) the full list; the colluders sign both. Every owner
    held by the holder at 4 then has t signers of the short list among its holders, and
    every owner held by the one at -3 t of the full list: the first reveals the victim's
    mask-key share, the second its self-mask share, and with the colluders' the server
    holds t of each."""
    r = _split_view_round(ClientPolicy(expected_clients=COHORT, check_parameters=False))
    while r.server.phase != ServerPhase.CONSISTENCY_CHECK:
        r.step()
    order, _ = r.server.graph._ring  # order[place] = party

    def at(place: int) -> int:
        return int(order[place % N])

    victim, sees_all, sees_without = at(0), at(-3), at(4)
    colluders = [at(place) for place in (-2, -1, 1, 2, 3)]
    short_side = {at(place) for place in range(4, 11)}
    rid = r.server.round_id
    everyone = tuple(range(N))
    without = tuple(p for p in everyone if p != victim)
    signatures: dict[tuple[int, ...], list[PartySignature]] = {everyone: [], without: []}
    for listed, group in signatures.items():
        group += [
            PartySignature(c, r.identity[c].sign(common.consistency_payload(rid, listed)))
            for c in colluders
        ]
    for p in everyone:
        if p in colluders:
            continue
        listed = without if p in short_side else everyone
        (answer,) = r.clients[p].handle(wire(ConsistencyRequest(rid, p, listed)))
        signatures[listed].append(PartySignature(p, answer.signature))
    seeds, keys = set(colluders), set(colluders)  # colluders hold both shares of it
    for p, listed in ((sees_all, everyone), (sees_without, without)):
        dropped = () if listed == everyone else (victim,)
        sigs = tuple(sorted(signatures[listed], key=lambda s: s.party))
        (shares,) = r.clients[p].handle(wire(UnmaskingRequest(rid, p, listed, dropped, sigs)))
        seeds |= {p for s in shares.self_mask_shares if s.owner == victim}
        keys |= {p for s in shares.mask_key_shares if s.owner == victim}
    assert len(seeds) >= T and len(keys) >= T  # the victim's input is the server's
    assert r.clients[0].setup is not None
    workaround = ClientPolicy(expected_clients=COHORT, min_colluders=5)
    assert not workaround.accepts_parameters(r.clients[0].setup)


def test_a_client_with_min_colluders_5_refuses_that_round_of_20() -> None:
    """The workaround the docs name: the same round, each client counting the cohort's 5
    colluders itself, is refused by every client before anything is generated."""
    assert minimum_threshold(N, K, semi_malicious=True, min_colluders=5) == 8
    r = _split_view_round(ClientPolicy(expected_clients=COHORT, min_colluders=5))
    for message in r.to_clients:
        with pytest.raises(PolicyRefused) as refused:
            r.clients[message.recipient].handle(wire(message))
        assert refused.value.setting == "min_colluders"
        assert "5 colluding clients" in str(refused.value)
