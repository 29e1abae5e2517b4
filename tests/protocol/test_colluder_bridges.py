"""Active SecAgg+: colluding survivors must not be what keeps the survivors connected.

The unmasking reveals every survivor's self-mask and every dropped client's mask key,
so the only masks the server cannot remove are the pair masks between two *honest*
survivors: a colluder knows its own pair seeds and hands them over. A survivor set held
together only by colluders is therefore, for the server, several pieces, and it can sum
each piece alone.

Before, the connectivity check (server and client alike, ``NeighbourGraph.connects``)
counted the colluders as bridges. At the active defaults for n = 20 (k = 8, t = 6, sized
for c = 2 colluders) a malicious server placed one colluder in each of two runs of k/2 = 4
ring positions and claimed the other 3 clients of each run dropped (it withheld their
shares). Every honest client's checks passed: its holders kept t = 6 survivors (5 honest
ones and the colluder next door), the survivors were connected (through the colluders),
and all signed the same list. The unmasking then gave the server the sum of each arc of 6
honest inputs alone. The seed needs no grinding for this: the server picks the runs
around wherever its colluders sit. ``worst_case_threshold`` (2t > k + 1 + c) keeps a
*single* input from being isolated this way, but not a group of t - c or more.

Now, in the active variant, a client refuses to sign or unmask unless the survivors stay
connected however ``c`` of them (its own policy's colluders) are left out
(``NeighbourGraph.connects_despite``), and the server, with its config's ``c``, aborts
such a round itself before asking for any signature.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable

import numpy as np
import pytest
from _harness import SteppedRound, refused_call, wire
from hypothesis import event, given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.crypto.prg import accumulate_masks
from secagg.errors import ConfigurationError, PrivacyViolation, RoundAborted, SecAggError
from secagg.protocol import ServerPhase, common
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import (
    ConsistencyRequest,
    GraphKind,
    MaskedInput,
    PartySignature,
    UnmaskingRequest,
    UnmaskingShares,
)

N, D = 20, 4
# ring positions: a colluder at 3 and at 13, the server "drops" the rest of two runs of
# k/2 = 4 (0..3 and 10..13): arcs 4..9 and 14..19 of six honest clients each remain
COLLUDER_PLACES = (3, 13)
DROPPED_PLACES = (0, 1, 2, 10, 11, 12)
ARC_PLACES = tuple(range(4, 10))


def searched_connected(graph: NeighbourGraph, parties: Iterable[int]) -> bool:
    """Connectivity by a breadth-first search over the neighbourhoods (the definition)."""
    members = set(parties)
    if not members:
        return True
    start = next(iter(members))
    seen, queue = {start}, deque([start])
    while queue:
        for peer in graph.neighbours(queue.popleft()) & members:
            if peer not in seen:
                seen.add(peer)
                queue.append(peer)
    return seen == members


class BridgedRound:
    """An active round of 20 at its defaults, stepped to the masked inputs with the
    server's choice of "dropouts" made: one colluder left in each of two runs of k/2."""

    def __init__(self) -> None:
        r = SteppedRound(N, D, graph="harary", active=True)
        assert (r.config.graph, r.config.degree, r.config.threshold) == (GraphKind.HARARY, 8, 6)
        self.round = r
        order = r.server.graph._ring[0]
        self.colluders = {int(order[p]) for p in COLLUDER_PLACES}
        self.dropped = {int(order[p]) for p in DROPPED_PLACES}
        self.arc = sorted(int(order[p]) for p in ARC_PLACES)
        r.step()  # keys advertised; the key directories are out
        r.step(skip=self.dropped)  # the server withholds the shares of the "dropped"
        assert r.server.phase == ServerPhase.MASKED_INPUT
        self.masked = {m.sender: m for m in r.clients_reply() if isinstance(m, MaskedInput)}
        self.survivors = tuple(sorted(set(range(N)) - self.dropped))
        self.honest = [p for p in self.survivors if p not in self.colluders]

    def run_attack(self) -> np.ndarray | None:
        """The malicious server's rest of the round, skipping its own checks: every
        honest survivor is asked to sign the survivor list and to unmask against it.
        Returns the sum of the arc's six inputs if the haul unmasks it, else None."""
        r, rid = self.round, self.round.server.round_id
        signatures: dict[int, bytes] = {}
        for party in self.honest:
            try:
                (reply,) = r.clients[party].handle(
                    wire(ConsistencyRequest(rid, party, self.survivors))
                )
            except SecAggError:
                continue
            signatures[party] = reply.signature  # type: ignore[attr-defined]
        payload = common.consistency_payload(rid, self.survivors)
        for colluder in self.colluders:
            signatures[colluder] = r.identity[colluder].sign(payload)
        proofs = tuple(PartySignature(p, s) for p, s in sorted(signatures.items()))
        dropped = tuple(sorted(self.dropped))
        shares: dict[int, list[shamir.Share]] = {}
        for party in self.honest:
            if party not in signatures:
                continue
            request = UnmaskingRequest(rid, party, self.survivors, dropped, proofs)
            try:
                (reply,) = r.clients[party].handle(wire(request))
            except SecAggError:
                continue
            assert isinstance(reply, UnmaskingShares)
            for item in reply.self_mask_shares:
                shares.setdefault(item.owner, []).append(
                    shamir.Share.from_bytes(common.share_point(party), item.share)
                )
        for colluder in self.colluders:  # and the colluders hand theirs over
            for owner, held in r.clients[colluder]._held.items():
                shares.setdefault(owner, []).append(
                    shamir.Share.from_bytes(common.share_point(colluder), held.self_mask)
                )
        t = r.config.threshold
        partial = np.zeros(D, dtype=np.uint32)
        for member in self.arc:
            if len(shares.get(member, [])) < t:
                return None
            seed = shamir.reconstruct(shares[member], t, common.SELF_MASK_SEED_BYTES)
            # what the member added: its self-mask and the pair masks with colluders
            # (all other pair masks of the arc cancel inside it); the colluders tell
            add, subtract = [], [seed]
            for colluder in self.colluders & r.server.graph.neighbours(member):
                pair_seed = r.clients[colluder]._pair_seeds[member]
                (subtract if colluder < member else add).append(pair_seed)
            term = self.masked[member].vector.copy()
            accumulate_masks(term, add, subtract)
            partial += term
        return partial


def test_active_client_refuses_to_sign_survivors_held_together_by_colluders():
    """Each honest survivor still has t of its holders among the survivors (so only the
    new rule stands in its way) and the survivors are connected through the colluders;
    every one of them refuses the list, its state unchanged."""
    b = BridgedRound()
    r, rid = b.round, b.round.server.round_id
    graph = r.server.graph
    assert graph.connects(b.survivors)
    assert not graph.connects(set(b.survivors) - b.colluders)
    for party in b.honest:
        assert len(graph.holders(party) & set(b.survivors)) >= r.config.threshold
        request = wire(ConsistencyRequest(rid, party, b.survivors))
        caught = refused_call(r.clients[party], PrivacyViolation, r.clients[party].handle, request)
        assert "colluding" in str(caught.value)


def test_malicious_server_gets_no_partial_sum_of_an_arc():
    """Before, every honest client signed and unmasked, and the server summed the six
    inputs of one arc exactly (it holds the colluders' pair seeds)."""
    b = BridgedRound()
    recovered = b.run_attack()
    expected = b.round.inputs[b.arc].sum(axis=0, dtype=np.uint32)
    assert recovered is None, (
        f"the server summed {len(b.arc)} honest inputs alone "
        f"(exact: {recovered is not None and np.array_equal(recovered, expected)})"
    )


def test_active_server_aborts_when_only_colluders_could_bridge_the_survivors():
    """An honest server holds itself to the same rule with its config's colluders: it
    aborts at the masked inputs, before asking for any signature."""
    b = BridgedRound()
    r = b.round
    r.server_receives(list(b.masked.values()))
    assert r.server.phase == ServerPhase.ABORTED
    assert "colluding" in (r.server.report.abort_reason or "")
    with pytest.raises(RoundAborted):
        r.server.result()


def test_an_active_round_with_a_run_of_dropouts_still_completes():
    """k/2 - 1 dropouts in a row (as many as leave t holders to their neighbours): no c
    colluders cut the ring with them, and the round completes with the exact sum."""
    r = SteppedRound(N, D, graph="harary", active=True)
    order = r.server.graph._ring[0]
    r.step()
    r.step(skip={int(order[p]) for p in range(r.config.degree // 2 - 1)})
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert r.server.phase == ServerPhase.COMPLETE
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


@st.composite
def graphs_parties_colluders(draw: st.DrawFn) -> tuple[NeighbourGraph, set[int], int]:
    n = draw(st.integers(3, 16))
    kind = draw(st.sampled_from([GraphKind.HARARY, GraphKind.HARARY, GraphKind.COMPLETE]))
    degree = n - 1 if kind == GraphKind.COMPLETE else 2 * draw(st.integers(1, (n - 1) // 2))
    graph = NeighbourGraph(n, kind, degree, draw(st.binary(min_size=32, max_size=32)))
    parties = draw(st.sets(st.integers(0, n - 1), min_size=max(0, n - 6)))
    return graph, parties, draw(st.integers(0, 3))


@settings(max_examples=50, deadline=None)
@given(graphs_parties_colluders())
def test_connects_despite_agrees_with_removing_every_small_set(case):
    """The ring arithmetic against the definition: connected after leaving out any set
    of at most ``colluders`` parties (every such set tried, a search each)."""
    graph, parties, colluders = case
    expected = all(
        searched_connected(graph, parties - set(left_out))
        for size in range(colluders + 1)
        for left_out in itertools.combinations(sorted(parties), size)
    )
    event(f"stays connected: {expected}")
    assert graph.connects_despite(parties, colluders) is expected


@pytest.mark.parametrize("colluders", [-1, 1.5, True, "2"])
def test_connects_despite_refuses_a_colluder_count_that_is_not_a_count(colluders):
    graph = NeighbourGraph(10, GraphKind.HARARY, 4, bytes(32))
    with pytest.raises(ConfigurationError, match="colluders"):
        graph.connects_despite(range(10), colluders)


def test_passive_round_keeps_the_plain_connectivity_rule():
    """The passive variant trusts the server's dropout list and its random seed (fcp's
    random-placement analysis), so a survivor list bridged the same way (one survivor
    left in each of two runs of k/2) is still unmasked there."""
    r = SteppedRound(N, D, graph="harary")
    half = r.config.degree // 2
    order = r.server.graph._ring[0]
    dropped = {int(order[p]) for start in (0, 10) for p in range(start, start + half - 1)}
    r.step()
    r.step(skip=dropped)
    r.step()
    assert r.server.phase == ServerPhase.UNMASKING
    assert r.clients[int(order[5])].handle(wire(r.message_for(int(order[5]))))
