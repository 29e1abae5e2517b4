"""The colluders of a cohort, packed into a round drawn from it, against the client's t.

Review of colluders (2026-12-07): ``ClientPolicy.colluders`` took the corrupt fraction
of the round the server announces. ``ClientPolicy(expected_clients=100)`` (5 % corrupt:
5 colluders in its cohort) accepted an active SecAgg+ round of 20 at k = 8, t = 6, sized
for the round's 2; but the server chooses who is in the round, so all 5 can be, and with
5 the minimum t is 8. At t = 6 the 5 colluders and one honest holder meet t for each of
two conflicting survivor lists: the server collects t shares of the victim's self-mask
and t of its mask key, its input. Now the server's plan names the population a round is
drawn from (``RoundSetup.population``) and sizes k and t for its colluders, and each
client counts the colluders of the largest of the round, its ``expected_clients`` and
the population announced: the round above is refused, the honest plan of a round of 20
from 100 runs.
"""

from __future__ import annotations

from dataclasses import replace

from _harness import SteppedRound, refused_call, wire

from secagg.errors import PolicyRefused
from secagg.protocol import ServerPhase, common
from secagg.protocol.client import Client
from secagg.protocol.config import ClientPolicy
from secagg.protocol.graph_params import minimum_threshold
from secagg.protocol.messages import (
    ConsistencyRequest,
    PartySignature,
    RoundSetup,
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
    r = _split_view_round(ClientPolicy(check_parameters=False))
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
    # a client counting the cohort's colluders does not accept the setup
    assert not ClientPolicy(expected_clients=COHORT).accepts_parameters(r.clients[0].setup)


def test_a_client_expecting_100_refuses_that_round_of_20_state_unchanged() -> None:
    """The fix: the same round (a setup naming no population), each client holding only
    its ``expected_clients`` of 100 (min_colluders left at 2), is refused by every client
    before anything is generated (before: accepted, the round above). The refusal names
    ``expected_clients`` and both colluder counts."""
    r = _split_view_round(ClientPolicy(expected_clients=COHORT))
    for message in r.to_clients:
        refusal = refused_call(
            r.clients[message.recipient],
            PolicyRefused,
            r.clients[message.recipient].handle,
            wire(message),
        )
        assert refusal.value.setting == "expected_clients"
        assert "population of 20 (2 colluders" in str(refusal.value)
        assert "expects 100 clients, 5 colluders" in str(refusal.value)


def test_a_setup_naming_the_population_but_t_6_is_refused_for_the_5_colluders() -> None:
    """A server that names the population of 100 but keeps t = 6: every client counts the
    population's 5 colluders and needs t = 8 (the minimum for 5 at k = 8)."""
    assert minimum_threshold(N, K, semi_malicious=True, min_colluders=5) == 8
    r = _split_view_round(ClientPolicy(expected_clients=COHORT))
    for message in r.to_clients:
        assert isinstance(message, RoundSetup)
        named = replace(message, population=COHORT)
        client = r.clients[message.recipient]
        refusal = refused_call(client, PolicyRefused, client.handle, wire(named))
        assert "below the 8 this client requires" in str(refusal.value)
        assert "drawn from a population of 100" in str(refusal.value)
        assert "5 colluding clients" in str(refusal.value)


def test_the_honest_plan_of_a_round_of_20_from_100_runs_for_clients_expecting_100() -> None:
    """The honest server's plan: k and t sized for the population's 5 colluders (2t > k +
    1 + 5, k > 5), the population named in the setup, and every client counting the same
    5 takes part; the round completes with the exact sum."""
    r = SteppedRound(N, 4, active=True, graph="harary", population=COHORT)
    config = r.config
    assert config.colluders == 5 and config.population == COHORT
    assert config.degree > 5 and 2 * config.threshold > config.degree + 1 + 5
    public = {p: key.verify_key for p, key in r.identity.items()}
    policy = ClientPolicy(expected_clients=COHORT)
    r.clients = [
        Client(p, r.inputs[p], signing_key=r.identity[p], identity_keys=public, policy=policy)
        for p in range(N)
    ]
    assert all(m.population == COHORT for m in r.to_clients)  # type: ignore[attr-defined]
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert r.server.phase == ServerPhase.COMPLETE
    assert (r.server.result() == r.expected_sum()).all()
