"""Neighbour graphs and the SecAgg+ choice of k and t.

The expected (k, t) pairs are the outputs of Google's production parameter
finder (fcp/secagg/server/graph_parameter_finder.cc) for the same inputs; the
tail checks recompute the guarantees with exact integer hypergeometric sums,
independently of the floating-point code under test.
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocol import NeighbourGraph, RoundConfig, Server
from secagg.protocol import graph_params as gp
from secagg.protocol.graph_params import (
    check_complete_graph_threshold,
    complete_graph_threshold,
    harary_parameters,
)
from secagg.protocol.messages import GraphKind

# (n, corrupt, dropout, semi_malicious) -> (k, t), from fcp's finder.
FCP_VECTORS = [
    ((1000, 0.05, 0.05, False), (30, 17)),
    ((1000, 0.05, 0.05, True), (52, 37)),
    ((10000, 0.05, 0.05, False), (34, 20)),
    ((1000, 0.05, 0.33, False), (72, 24)),
    ((1000, 0.33, 0.05, False), (78, 60)),
    ((1000, 0.05, 0.10, False), (36, 19)),
    ((1000, 0.0, 0.10, False), (18, 2)),
    ((1000, 0.10, 0.10, False), (48, 27)),
]


@pytest.mark.parametrize(("args", "expected"), FCP_VECTORS)
def test_harary_parameters_match_the_reference_finder(args, expected):
    n, gamma, delta, semi_malicious = args
    found = harary_parameters(
        n, corrupt_fraction=gamma, dropout_fraction=delta, semi_malicious=semi_malicious
    )
    assert found is not None
    assert (found.k, found.threshold) == expected
    assert found.fcp_graph_degree == expected[0] + 1


def _upper_tail(total: int, marked: int, draws: int, at_least: int) -> float:
    """P[X >= at_least] for X hypergeometric, by exact integer arithmetic."""
    num = sum(
        math.comb(marked, x) * math.comb(total - marked, draws - x)
        for x in range(at_least, min(marked, draws) + 1)
    )
    return num / math.comb(total, draws)


def _lower_tail(total: int, marked: int, draws: int, below: int) -> float:
    """P[X < below]."""
    num = sum(math.comb(marked, x) * math.comb(total - marked, draws - x) for x in range(0, below))
    return num / math.comb(total, draws)


@pytest.mark.parametrize("n", [100, 500, 1000, 5000])
@pytest.mark.parametrize(("gamma", "delta"), [(0.05, 0.10), (0.10, 0.05), (0.05, 0.30)])
def test_chosen_threshold_meets_the_stated_bounds_exactly(n, gamma, delta):
    found = harary_parameters(n, corrupt_fraction=gamma, dropout_fraction=delta)
    assert found is not None
    k, t = found.k, found.threshold
    corrupt = math.floor(gamma * n + 1e-9)
    surviving = math.ceil((1 - delta) * n - 1e-9)
    # privacy: t or more corrupt neighbours with probability below 2^-41 / n
    assert _upper_tail(n, corrupt, k, t) <= 2.0**-41 / n
    # correctness: fewer than t surviving neighbours with probability below 2^-20 / n
    assert _lower_tail(n, surviving, k, t) <= 2.0**-20 / n
    # minimality: every smaller even degree fails privacy, correctness or connectivity
    for smaller in range(2, k, 2):
        best_t = next(
            (
                s
                for s in range(1, smaller + 2)
                if _upper_tail(n, corrupt, smaller, s) <= 2.0**-41 / n
            ),
            None,
        )
        tails_pass = (
            best_t is not None and _lower_tail(n, surviving, smaller, best_t) <= 2.0**-20 / n
        )
        removed = corrupt + math.floor(delta * n + 1e-9)
        # union bound on two gaps of k/2 removed clients cutting the ring
        p_cut = n * (n - smaller - 1) / 2 * math.comb(removed, smaller) / math.comb(n, smaller)
        assert not tails_pass or p_cut >= 2.0**-41, (n, smaller)


def test_small_cohorts_fall_back_to_the_complete_graph():
    assert harary_parameters(3) is None
    config = RoundConfig.create(3, 10)
    assert config.graph == GraphKind.COMPLETE and config.degree == 2
    assert config.threshold == complete_graph_threshold(3)


def test_default_round_config_at_scale_is_the_published_secagg_plus_choice():
    config = RoundConfig.create(1000, 10)
    assert (config.graph, config.degree, config.threshold) == (GraphKind.HARARY, 36, 19)
    active = RoundConfig.create(1000, 10, active=True)
    assert active.threshold > (active.degree + 1) / 2  # semi-malicious: a strict majority


@pytest.mark.parametrize(
    "kwargs",
    [
        {"corrupt_fraction": -0.1},
        {"dropout_fraction": 1.0},
        {"corrupt_fraction": float("nan")},
        {"corrupt_fraction": 0.5, "dropout_fraction": 0.5},
        {"dropout_fraction": 0.45, "semi_malicious": True},
    ],
)
def test_impossible_fractions_are_refused(kwargs):
    with pytest.raises(ConfigurationError):
        harary_parameters(1000, **kwargs)


def test_complete_graph_threshold_rules():
    assert complete_graph_threshold(100) == 90
    assert complete_graph_threshold(100, semi_malicious=True) == 90
    assert complete_graph_threshold(100, dropout_fraction=0.5, semi_malicious=True) == 54
    check_complete_graph_threshold(100, 90)
    with pytest.raises(ConfigurationError, match="at least"):
        check_complete_graph_threshold(100, 50)
    with pytest.raises(ConfigurationError):
        check_complete_graph_threshold(100, 101)
    with pytest.raises(ConfigurationError):
        complete_graph_threshold(1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 300),
    half=st.integers(1, 20),
    seed=st.binary(min_size=32, max_size=32),
)
def test_harary_graph_is_symmetric_regular_and_seeded(n, half, seed):
    k = min(2 * half, n - 1 - (n - 1) % 2)
    if k < 2:
        return
    graph = NeighbourGraph(n, GraphKind.HARARY, k, seed)
    for party in range(n):
        mine = graph.neighbours(party)
        assert party not in mine
        assert len(mine) == k
        assert all(party in graph.neighbours(v) for v in mine)
        assert graph.holders(party) == mine | {party}
    again = NeighbourGraph(n, GraphKind.HARARY, k, seed)
    assert all(graph.neighbours(p) == again.neighbours(p) for p in range(n))


def test_harary_graph_differs_between_seeds_and_is_not_the_identity_ring():
    n, k = 200, 6
    a = NeighbourGraph(n, GraphKind.HARARY, k, os.urandom(32))
    b = NeighbourGraph(n, GraphKind.HARARY, k, os.urandom(32))
    assert any(a.neighbours(p) != b.neighbours(p) for p in range(n))
    # the ring order is a random permutation, not the order of the party ids
    in_id_order = sum(
        a.neighbours(p) == frozenset((p + o) % n for o in (1, 2, 3, -1, -2, -3)) for p in range(n)
    )
    assert in_id_order < n // 10


def test_graph_refuses_bad_parameters():
    with pytest.raises(ConfigurationError):
        NeighbourGraph(10, GraphKind.HARARY, 3, bytes(32))
    with pytest.raises(ConfigurationError):
        NeighbourGraph(10, GraphKind.COMPLETE, 5, bytes(32))
    with pytest.raises(ConfigurationError):
        NeighbourGraph(10, GraphKind.HARARY, 4, bytes(31))
    with pytest.raises(ConfigurationError):
        NeighbourGraph(10, GraphKind.HARARY, 4, bytes(32)).neighbours(10)


@pytest.mark.parametrize("bad", ["4", None, 2.5, float("nan"), True])
def test_graph_parameter_functions_refuse_a_degree_or_count_that_is_not_an_int(bad) -> None:
    """``minimum_threshold(100, "4")`` took the string, ``2.5`` was truncated to a
    degree of 2 (another graph than the caller named), None and NaN raised TypeError
    or ValueError, and ``worst_case_threshold`` failed on any of them (hostile-input
    audit 2026-12-05). Each is now a ConfigurationError naming the argument."""
    calls = {
        "degree": lambda: gp.minimum_threshold(100, bad, semi_malicious=False),
        "threshold": lambda: gp.colluders_tolerated_by(100, 40, bad, semi_malicious=False),
        "k": lambda: gp.worst_case_threshold(bad, 2),
        "colluders": lambda: gp.worst_case_threshold(10, bad),
    }
    for name, call in calls.items():
        with pytest.raises(ConfigurationError, match=rf"^{name} must be an int"):
            call()
    with pytest.raises(ConfigurationError, match=r"^degree must be an int"):
        gp.colluders_tolerated_by(100, bad, 3, semi_malicious=False)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((4, GraphKind.COMPLETE, 3, "s" * 32), "graph seed must be bytes"),
        ((4, GraphKind.COMPLETE, 3, bytearray(32)), "graph seed must be bytes"),
        (("4", GraphKind.COMPLETE, 3, bytes(32)), "num_clients must be an integer"),
        ((4, GraphKind.HARARY, 2.0, bytes(32)), "degree must be an integer"),
        ((4, "harary", 2, bytes(32)), "graph kind must be a GraphKind"),
    ],
)
def test_a_graph_of_wrongly_typed_parameters_is_refused_at_construction(args, named) -> None:
    """A 32-character str seed passed the length check and failed as a TypeError at the
    first neighbourhood (a server built with it failed mid-round); ``"4"`` clients
    failed in a comparison, and a str kind was taken for a Harary graph."""
    with pytest.raises(ConfigurationError, match=named):
        NeighbourGraph(*args)


def test_a_server_with_a_str_graph_seed_is_refused_before_it_starts() -> None:
    with pytest.raises(ConfigurationError, match="graph seed must be bytes"):
        Server(RoundConfig.create(10, 2), graph_seed="s" * 32)  # type: ignore[arg-type]
