"""Dropouts that cut the SecAgg+ ring must abort the round, never unmask partial sums.

At unmasking the server learns every survivor's self-mask and every dropped client's
mask key; only the pair masks between two survivors stay secret. When the survivors
fall apart into pieces with no survivor-to-survivor edge between them, each piece's
pair masks cancel inside it and the server can sum each piece alone. On a Harary
ring two runs of k/2 dropped neighbours do it: before the fix a round of 30 clients
(k = 6, t = 3) with 6 dropouts at masked input completed, and the server could sum
each arc of 12 survivors on its own. The server now aborts such a round before asking
for any share, and a client refuses to sign or unmask a survivor set in pieces.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Iterable

import numpy as np
import pytest
from _harness import SteppedRound, random_inputs, refused_call, wire
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from secagg.crypto.stream import derive
from secagg.errors import ConfigurationError, PrivacyViolation, RoundAborted
from secagg.protocol import ServerPhase
from secagg.protocol.config import RoundConfig
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import (
    ConsistencyRequest,
    GraphKind,
    RoundAbort,
    UnmaskingRequest,
)
from secagg.protocol.simulation import run_round


def searched_connected(graph: NeighbourGraph, parties: Iterable[int]) -> bool:
    """Connectivity of ``parties`` by a breadth-first search over the neighbourhoods:
    the definition, against which the ring arithmetic of ``connects`` is checked."""
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


def ring_runs(graph: NeighbourGraph, runs: Iterable[tuple[int, int]]) -> set[int]:
    """The clients at ``length`` consecutive ring positions from each ``start``."""
    order, _ = graph._ring
    n = graph.num_clients
    return {int(order[(start + i) % n]) for start, length in runs for i in range(length)}


@st.composite
def graphs_and_parties(draw: st.DrawFn) -> tuple[NeighbourGraph, set[int]]:
    n = draw(st.integers(3, 40))
    kind = draw(st.sampled_from([GraphKind.HARARY, GraphKind.HARARY, GraphKind.COMPLETE]))
    if kind == GraphKind.COMPLETE:
        degree = n - 1
    else:
        degree = 2 * draw(st.integers(1, (n - 1) // 2))
    graph = NeighbourGraph(n, kind, degree, draw(st.binary(min_size=32, max_size=32)))
    if draw(st.booleans()):  # runs on the ring: cuts it often
        count = draw(st.integers(0, 4))
        runs = [(draw(st.integers(0, n - 1)), draw(st.integers(1, n))) for _ in range(count)]
        parties = set(range(n)) - ring_runs(graph, runs)
    else:
        parties = draw(st.sets(st.integers(0, n - 1)))
    return graph, parties


@settings(max_examples=300, deadline=None)
@given(graphs_and_parties())
def test_connects_agrees_with_a_search_of_the_graph(case):
    graph, parties = case
    expected = searched_connected(graph, parties)
    event(f"connected: {expected}")
    assert graph.connects(parties) is expected


def test_connects_refuses_a_party_outside_the_round():
    graph = NeighbourGraph(10, GraphKind.HARARY, 4, bytes(32))
    with pytest.raises(ConfigurationError, match=r"0\.\.9"):
        graph.connects([0, 10])


def cut_round() -> tuple[SteppedRound, set[int], list[int]]:
    """A passive SecAgg+ round of 30 (k = 6, t = 3) stepped to its masked inputs, the six
    clients whose dropping cuts its ring into two arcs of 12, and one of those arcs."""
    r = SteppedRound(30, 4, graph="harary")
    assert (r.config.graph, r.config.degree, r.config.threshold) == (GraphKind.HARARY, 6, 3)
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    cut = ring_runs(r.server.graph, [(0, 3), (15, 3)])
    order, _ = r.server.graph._ring
    arc = [int(order[p]) for p in range(3, 15)]
    return r, cut, arc


def test_server_aborts_when_dropouts_cut_the_ring_instead_of_unmasking():
    r, cut, _ = cut_round()
    r.step(skip=cut)
    assert r.server.phase == ServerPhase.ABORTED
    assert "not connected" in (r.server.report.abort_reason or "")
    assert all(isinstance(m, RoundAbort) for m in r.to_clients)  # no share asked for
    with pytest.raises(RoundAborted):
        r.server.result()


def test_one_run_of_dropouts_leaves_an_arc_and_the_round_completes():
    """k/2 dropouts in a row (one of the two runs above) leave the survivors one arc:
    connected, so the round completes with their exact sum."""
    r = SteppedRound(30, 4, graph="harary")
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    r.step(skip=ring_runs(r.server.graph, [(0, 3)]))
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert r.server.phase == ServerPhase.COMPLETE
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


def test_client_refuses_to_unmask_a_survivor_set_in_pieces():
    """A server that claims the cut clients dropped (they did not) is refused: the
    client's share would let it sum each arc alone. Nothing changes; the genuine
    request is then answered."""
    r, cut, arc = cut_round()
    r.step()  # everyone's masked input arrives
    assert r.server.phase == ServerPhase.UNMASKING
    victim = arc[len(arc) // 2]
    honest = r.message_for(victim)
    assert isinstance(honest, UnmaskingRequest)
    lying = dataclasses.replace(
        honest,
        survivors=tuple(p for p in honest.survivors if p not in cut),
        dropped=tuple(sorted(cut)),
    )
    caught = refused_call(
        r.clients[victim], PrivacyViolation, r.clients[victim].handle, wire(lying)
    )
    assert "not connected" in str(caught.value)
    assert r.clients[victim].handle(wire(honest))


def test_active_client_refuses_to_sign_a_survivor_set_in_pieces():
    """In the active variant the refusal comes before the signature: a client signs no
    survivor set whose unmasking would reveal partial sums."""
    r = SteppedRound(30, 4, graph="harary", active=True)
    k = r.config.degree
    while r.server.phase != ServerPhase.CONSISTENCY_CHECK:
        r.step()
    cut = ring_runs(r.server.graph, [(0, k // 2), (15, k // 2)])
    order, _ = r.server.graph._ring
    victim = int(order[(k // 2 + 15) // 2])  # mid first arc: enough holders survive
    assert victim not in cut
    honest = r.message_for(victim)
    assert isinstance(honest, ConsistencyRequest)
    lying = dataclasses.replace(
        honest, survivors=tuple(p for p in honest.survivors if p not in cut)
    )
    holders = r.server.graph.holders(victim) & set(lying.survivors)
    assert len(holders) >= r.config.threshold  # only the new check stands in the way
    refused_call(r.clients[victim], PrivacyViolation, r.clients[victim].handle, wire(lying))
    assert r.clients[victim].handle(wire(honest))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_random_dropout_runs_either_abort_or_sum_a_connected_survivor_set(data):
    """Dropouts in random runs on the ring, at a random phase: a completed round's
    included clients are always one connected piece, and its sum is theirs exactly."""
    n = data.draw(st.integers(10, 36), label="n")
    inputs = random_inputs(n, 3)
    seed = data.draw(st.binary(min_size=8, max_size=8), label="seed")
    config = RoundConfig.create(n, 3)  # what run_round chooses
    graph = NeighbourGraph(n, config.graph, config.degree, _graph_seed(seed))
    half = config.degree // 2  # a run of k/2 dropouts is what cuts the ring: drawn often
    lengths = st.one_of(st.just(half), st.integers(1, half + 2))
    runs = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), lengths), min_size=1, max_size=3),
        label="runs",
    )
    phase = data.draw(st.sampled_from(["share_keys", "masked_input", "unmasking"]), label="phase")
    dropped = ring_runs(graph, runs)
    try:
        outcome = run_round(inputs, seed=seed, dropped={phase: dropped})
    except RoundAborted as exc:
        event("aborted: not connected" if "not connected" in exc.reason else "aborted: other")
        return
    event("completed")
    included = outcome.report.included
    assert searched_connected(graph, included)
    np.testing.assert_array_equal(
        outcome.total, inputs[list(included)].sum(axis=0, dtype=inputs.dtype)
    )


def _graph_seed(seed: bytes) -> bytes:
    """The graph seed ``run_round`` derives from its ``seed``."""
    return hashlib.sha256(derive(b"secagg/v1/simulation", seed, size=32)).digest()
