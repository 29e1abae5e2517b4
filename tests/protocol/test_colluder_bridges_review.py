"""Second review of the colluder-bridge rule (da37b7f): ``connects_despite`` against the
definition on more graphs, the honest dropouts it must never refuse, and its cost.

``test_colluder_bridges.py`` compares ``connects_despite`` with every set of at most 3
parties left out, on random survivor sets of at least n - 6. Here the colluders go up to
n - 2 (a policy may assume that many), the survivors include whole runs of dropouts that
wrap around the ring's end, everyone, and n = k + 2; and the liveness claim of the docs
("the tolerated dropouts come nowhere near k - c in two runs") is checked where it is a
certainty: at the active defaults up to n = 200, ``floor(delta * n)`` dropouts placed
worst (packed into two windows of k/2) never make the check refuse.
"""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from _harness import SteppedRound
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.protocol import ServerPhase, graph_params
from secagg.protocol.config import RoundConfig
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import GraphKind


def stays_connected(graph: NeighbourGraph, parties: set[int], colluders: int) -> bool:
    """The definition: a search of what is left after leaving out each set of at most
    ``colluders`` parties (every subset tried)."""

    def connected(members: set[int]) -> bool:
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

    ordered = sorted(parties)
    return all(
        connected(parties - set(left_out))
        for size in range(min(colluders, len(ordered)) + 1)
        for left_out in itertools.combinations(ordered, size)
    )


@st.composite
def rings_with_runs(draw: st.DrawFn) -> tuple[NeighbourGraph, set[int], int]:
    """A Harary ring of up to 12 (any even k, n = k + 2 included), survivors with runs of
    dropouts that may wrap around position 0, and up to n - 2 colluders."""
    n = draw(st.integers(4, 12))
    degree = 2 * draw(st.integers(1, (n - 2) // 2))
    graph = NeighbourGraph(n, GraphKind.HARARY, degree, draw(st.binary(min_size=32, max_size=32)))
    order = graph._ring[0]
    survivors = set(range(n))
    for _ in range(draw(st.integers(0, 3))):
        start, length = draw(st.integers(0, n - 1)), draw(st.integers(1, degree))
        survivors -= {int(order[(start + i) % n]) for i in range(length)}
    return graph, survivors, draw(st.integers(0, n - 2))


@settings(max_examples=40, deadline=None)
@given(rings_with_runs())
def test_connects_despite_agrees_with_the_definition_up_to_n_minus_2_colluders(case):
    graph, survivors, colluders = case
    assert graph.connects_despite(survivors, colluders) is stays_connected(
        graph, survivors, colluders
    )


@pytest.mark.parametrize("n", [5, 7, 9, 11])
def test_a_harary_degree_of_n_minus_1_is_complete_whatever_is_left_out(n):
    """n = k + 1: every party reaches every other, so no c cuts any survivor set."""
    graph = NeighbourGraph(n, GraphKind.HARARY, n - 1, bytes(32))
    assert all(graph.connects_despite(set(range(0, n, step)), n) for step in (1, 2, 3))


def worst_dropouts(graph: NeighbourGraph, dropouts: int, split: int) -> set[int]:
    """``dropouts`` parties packed into two windows of k/2 half a ring apart, ``split``
    of them in the first (the placement closest to a colluder cut)."""
    n, half = graph.num_clients, graph.degree // 2
    order = graph._ring[0]
    first = [int(order[i % n]) for i in range(split)]
    second = [int(order[(n // 2 + i) % n]) for i in range(min(dropouts - split, half))]
    return set(first + second)


@pytest.mark.parametrize("n", [*range(6, 60), 80, 100, 150, 200])
def test_tolerated_dropouts_placed_worst_never_make_an_honest_round_refuse(n):
    """At the active defaults below n = 500, ``floor(delta * n) < k - c``: two windows
    of k/2 keep more than c survivors whatever the tolerated dropouts, so neither an
    honest server aborts nor an honest client refuses (each with the same c here), and
    every client still keeps t holders."""
    config = RoundConfig.create(n, 1, active=True)
    if config.graph == GraphKind.COMPLETE:
        pytest.skip("the complete graph always connects")
    c = graph_params.tolerated_colluders(n, config.corrupt_fraction, config.min_colluders)
    tolerated = graph_params.tolerated_dropouts(n, config.dropout_fraction)
    graph = NeighbourGraph(n, GraphKind.HARARY, config.degree, bytes(range(32)))
    everyone = set(range(n))
    for split in range(min(tolerated, graph.degree // 2) + 1):
        survivors = everyone - worst_dropouts(graph, tolerated, split)
        assert graph.connects_despite(survivors, c), (n, split)


def test_an_active_client_checks_the_survivors_connectivity_once_a_round():
    """The unmasking request carries the list the client signed, which passed the
    survivor checks when signed; before, both O(n) connectivity checks ran again
    (at n = 100 000 the client's two calls cost about 0.5 s each then)."""
    r = SteppedRound(10, 2, graph="harary", active=True)
    calls: list[int] = []
    r.step()  # the keys advertised: every client has built its graph
    for client in r.clients:
        graph = client._graph
        original = graph.connects_despite

        def counted(parties, colluders, _original=original, _party=client.party):
            calls.append(_party)
            return _original(parties, colluders)

        graph.connects_despite = counted  # type: ignore[method-assign]
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert r.server.phase == ServerPhase.COMPLETE
    assert sorted(calls) == list(range(10))  # one call per client: at the signature
