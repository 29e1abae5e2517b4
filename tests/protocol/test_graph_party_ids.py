"""``NeighbourGraph`` answers only for party ids: integers in the round.

Review (2026-12-06), before this change: ``neighbours(True)`` raised numpy's
broadcasting ValueError (or, once party 1's neighbourhood was cached, returned it),
``neighbours(1.5)`` a bare IndexError and ``neighbours("1")`` a bare TypeError;
``connects([0, 1.5, 2])``, ``connects([True, 2])`` and ``connects(["1", 2])`` answered
for parties 1 and 2 (numpy read each as 1), and ``connects([2**70])`` was a bare
OverflowError. Now each is a ConfigurationError; numpy integer ids are answered as
Python's.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import GRAPH_SEED_BYTES, GraphKind

GRAPH = NeighbourGraph(10, GraphKind.HARARY, 4, os.urandom(GRAPH_SEED_BYTES))


@pytest.mark.parametrize("party", [True, 1.5, 1.0, "1", None, -1, 10])
def test_a_neighbourhood_is_only_of_a_party_id(party: object) -> None:
    for ask in (GRAPH.neighbours, GRAPH.holders):
        with pytest.raises(ConfigurationError, match="party"):
            ask(party)  # type: ignore[arg-type]


@pytest.mark.parametrize("stranger", [1.5, True, "1", 2**70, -1, 10])
def test_connectivity_is_only_of_party_ids(stranger: object) -> None:
    with pytest.raises(ConfigurationError, match="part"):
        GRAPH.connects([0, stranger, 2])  # type: ignore[list-item]


def test_numpy_ids_are_answered_as_python_ids() -> None:
    everyone = range(10)
    assert GRAPH.neighbours(np.int64(3)) == GRAPH.neighbours(3)
    assert GRAPH.holders(np.uint8(3)) == GRAPH.holders(3)
    assert all(type(p) is int for p in GRAPH.neighbours(np.int64(4)))
    for parties in ([0, 1, 2], list(everyone), [0, 5], list(GRAPH.neighbours(0))):
        as_numpy = [np.int32(p) for p in parties]
        assert GRAPH.connects(as_numpy) == GRAPH.connects(parties)
        assert GRAPH.connects(np.array(parties)) == GRAPH.connects(parties)
