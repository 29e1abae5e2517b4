"""Passive variant: a share opens only between clients shown the same setup.

The active variant binds the setup through the signed key advertisement
(tests/protocol/test_setup_binding.py). The passive variant signs nothing, and a
server that showed each client its own graph seed chose every neighbourhood on its
own: it split the survivors into groups that masked and shared only within
themselves while each client's own graph showed them all connected, and the
unmasking gave it each group's sum, every client check passing. The passive server
can swap keys anyway (outside its threat model), but a cheap binding makes the split
visible: every sealed share carries the digest of the setup its sender was shown in
its associated data (``common.share_context``), so shares between clients shown
different setups do not open, each such neighbour is accused in the masked input,
and no group's secrets can be rebuilt.

Before the fix, ``test_per_client_graph_seeds_give_no_partial_sum_passive`` recovered
both group sums exactly (n = 20 passive defaults: k = 6, t = 3, two groups of 4) and
``test_a_client_shown_another_setup_is_named_and_the_round_aborts`` completed the round
with the other setup's client included, nobody accused, and hypothesis found the same
for ``test_a_client_shown_another_setup_is_never_summed_in`` (a changed graph seed).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from _harness import SteppedRound, random_inputs, wire
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.crypto.prg import accumulate_masks
from secagg.protocol import Client, NeighbourGraph, RoundConfig, ServerPhase, common
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    AdvertiseKeys,
    GraphKind,
    KeyDirectory,
    KeyEntry,
    MaskedInput,
    RoundSetup,
    SealedShare,
    ShareDelivery,
    ShareKeys,
    UnmaskingRequest,
    UnmaskingShares,
)


def _seed_with_neighbourhood(
    n: int, k: int, party: int, within: set[int], required: set[int], survivors: list[int]
) -> bytes:
    """A graph seed (searched in a fixed order: the same cost every run) in which
    ``party``'s survivor neighbours are exactly ``required`` and the survivors are
    connected: what a server grinds for each client of the attack."""
    for attempt in range(10**6):
        seed = hashlib.sha256(b"ground seed %d %d" % (party, attempt)).digest()
        graph = NeighbourGraph(n, GraphKind.HARARY, k, seed)
        if graph.neighbours(party) & within == required and graph.connects(survivors):
            return seed
    raise AssertionError("no seed found")  # pragma: no cover


def _group_sums_the_server_recovers(
    groups: list[list[int]],
    masked: dict[int, MaskedInput],
    revealed: dict[int, list[shamir.Share]],
    round_id: bytes,
    commitments: dict[int, bytes],
    t: int,
) -> dict[int, np.ndarray]:
    """Each group whose every self-mask the server can rebuild (t shares that open the
    commitment), with the sum it then unmasks: the group's masked inputs minus the
    rebuilt self-masks (pair masks cancel within a group that masked only within
    itself)."""
    out: dict[int, np.ndarray] = {}
    for index, group in enumerate(groups):
        seeds: list[bytes] = []
        for owner in group:
            shares = revealed.get(owner, [])
            if len(shares) < t:
                break
            seed = shamir.reconstruct(shares, t, common.SELF_MASK_SEED_BYTES)
            if common.self_mask_commitment(round_id, owner, seed) != commitments[owner]:
                break
            seeds.append(seed)
        else:
            total = np.zeros_like(masked[group[0]].vector)
            for owner in group:
                total += masked[owner].vector
            accumulate_masks(total, [], seeds)
            out[index] = total
    return out


def test_per_client_graph_seeds_give_no_partial_sum_passive() -> None:
    """The split at the n = 20 passive defaults: groups A and B of 4 clients each, the
    other 12 said to have dropped before advertising; each client's own graph seed
    makes its survivor neighbours exactly its group, with all 8 survivors connected in
    its graph. Before: every share opened, each group masked only within itself and
    the unmasking gave both group sums. Now: no share between two clients opens (each
    was shown its own setup), every client accuses every neighbour, and no holder
    reveals a share of another client's self-mask: fewer than t of each."""
    n, d = 20, 4
    config = RoundConfig.create(n, d)
    k, t = config.degree, config.threshold
    assert (config.active, config.graph, k, t) == (False, GraphKind.HARARY, 6, 3)
    groups = [list(range(4)), list(range(4, 8))]
    survivors = sorted(groups[0] + groups[1])
    inputs = random_inputs(n, d)
    round_id = hashlib.sha256(b"the passive round").digest()[:16]
    clients: dict[int, Client] = {}
    adverts: dict[int, AdvertiseKeys] = {}
    graphs: dict[int, NeighbourGraph] = {}
    for group in groups:
        for p in group:
            seed = _seed_with_neighbourhood(n, k, p, set(survivors), set(group) - {p}, survivors)
            setup = RoundSetup(round_id, p, n, d, 32, t, GraphKind.HARARY, k, seed, False)
            assert ClientPolicy().accepts_parameters(setup), "each setup passes the policy"
            clients[p] = Client(p, inputs[p])
            (advert,) = clients[p].handle(wire(setup))
            assert isinstance(advert, AdvertiseKeys)
            adverts[p] = advert
            graphs[p] = NeighbourGraph(n, GraphKind.HARARY, k, seed)
    peers = {p: sorted(graphs[p].neighbours(p) & set(survivors)) for p in survivors}
    inbox: dict[int, list[SealedShare]] = {p: [] for p in survivors}
    commitments: dict[int, bytes] = {}
    for p in survivors:
        entries = tuple(
            KeyEntry(q, adverts[q].channel_key, adverts[q].mask_key, b"") for q in peers[p]
        )
        (shares,) = clients[p].handle(wire(KeyDirectory(round_id, p, entries)))
        assert isinstance(shares, ShareKeys)
        commitments[p] = shares.self_mask_commitment
        for sealed in shares.shares:
            inbox[sealed.peer].append(SealedShare(p, sealed.ciphertext))
    masked: dict[int, MaskedInput] = {}
    for p in survivors:
        (reply,) = clients[p].handle(wire(ShareDelivery(round_id, p, tuple(inbox[p]))))
        assert isinstance(reply, MaskedInput)
        masked[p] = reply
    revealed: dict[int, list[shamir.Share]] = {}
    for p in survivors:
        request = UnmaskingRequest(round_id, p, tuple(survivors), ())
        (reply,) = clients[p].handle(wire(request))
        assert isinstance(reply, UnmaskingShares)
        for item in reply.self_mask_shares:
            share = shamir.Share.from_bytes(common.share_point(p), item.share)
            revealed.setdefault(item.owner, []).append(share)
    recovered = _group_sums_the_server_recovers(groups, masked, revealed, round_id, commitments, t)
    for index, total in recovered.items():  # before the fix: both, each exact
        expected = inputs[groups[index]].sum(axis=0, dtype=np.uint32)
        assert np.array_equal(total, expected), "a recovered sum is exact"
    assert recovered == {}, f"the server recovered the sums of groups {sorted(recovered)}"
    for p in survivors:  # the split is visible: each client accuses all it was shown
        assert [a.party for a in masked[p].accusations] == peers[p]
        assert len(revealed.get(p, [])) < t


def test_a_client_shown_another_setup_is_named_and_the_round_aborts() -> None:
    """An honest server's round, but client 0 is shown a setup with another graph seed
    (complete graph: the same neighbours, nothing else to notice). Before: its shares
    opened for everyone, and the round completed with it included. Now: its neighbours
    accuse it, it accuses them, and the server aborts at the masked-input close naming
    it, before any share is revealed."""
    r = SteppedRound(10, 4, graph="complete")
    genuine = r.message_for(0)
    assert isinstance(genuine, RoundSetup)
    other_seed = hashlib.sha256(b"another graph seed" + genuine.graph_seed).digest()
    shown = dataclasses.replace(genuine, graph_seed=other_seed)
    assert ClientPolicy().accepts_parameters(shown)
    r.to_clients = [shown if m.recipient == 0 else m for m in r.to_clients]
    for _ in range(3):  # setup, key directory, share delivery
        r.step()
    assert r.server.phase == ServerPhase.ABORTED, "the round went on with client 0"
    assert r.server.report.accused[0] == set(range(1, 10))
    assert "party 0" in (r.server.report.abort_reason or "")


def test_an_honest_round_accuses_nobody_and_sums_exactly() -> None:
    """The binding changes nothing for a round whose clients all got the same setup."""
    r = SteppedRound(20, 4, graph="harary")
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert r.server.phase == ServerPhase.COMPLETE
    assert r.server.report.accused == {}
    assert np.array_equal(r.server.result(), r.expected_sum())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_client_shown_another_setup_is_never_summed_in(data: st.DataObject) -> None:
    """Property: an honest relay, client 0 shown a setup changed in one field (one its
    own policy accepts, so it cannot tell); whatever the field, a round that completes
    does not include client 0, and its sum is exact for those it includes. Before the
    binding, a changed graph seed (complete graph: the same neighbours) completed with
    client 0 summed in."""
    n = data.draw(st.integers(4, 7), label="n")
    r = SteppedRound(n, 3, graph="complete")
    genuine = r.message_for(0)
    assert isinstance(genuine, RoundSetup)
    field = data.draw(st.sampled_from(["graph_seed", "threshold", "bits"]), label="field")
    if field == "graph_seed":
        value: object = data.draw(st.binary(min_size=32, max_size=32), label="seed")
    elif field == "threshold":
        value = data.draw(st.integers(1, genuine.degree + 1), label="threshold")
    else:
        value = 64
    shown = dataclasses.replace(genuine, **{field: value})
    assume(shown != genuine and ClientPolicy().accepts_parameters(shown))
    r.to_clients = [shown if m.recipient == 0 else m for m in r.to_clients]
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step(refusal_is_dropout=True)
    if r.server.phase == ServerPhase.COMPLETE:
        assert 0 not in r.server.report.included, f"client 0 summed in ({field})"
        assert np.array_equal(r.server.result(), r.expected_sum())
