"""A Harary graph built directly names the degrees it accepts, as :class:`RoundConfig`
does (``harary_degree_rule``): "an even degree in [2, 9]" for 10 clients named an odd
top its own "even" excludes (review, 2026-12-06; the round config's message was
mended, the graph's kept the old wording)."""

from __future__ import annotations

import os
import re

import pytest

from secagg.errors import ConfigurationError
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import GRAPH_SEED_BYTES, GraphKind

SEED = os.urandom(GRAPH_SEED_BYTES)


@pytest.mark.parametrize("clients", [4, 5, 10, 11])
def test_the_named_top_is_the_largest_even_degree_the_graph_builds(clients: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        NeighbourGraph(clients, GraphKind.HARARY, 3, SEED)
    match = re.search(r"an even degree in \[2, (\d+)\]", str(refused.value))
    assert match, str(refused.value)
    top = int(match.group(1))
    assert top % 2 == 0
    NeighbourGraph(clients, GraphKind.HARARY, top, SEED)  # the top is built
    with pytest.raises(ConfigurationError):
        NeighbourGraph(clients, GraphKind.HARARY, top + 1, SEED)  # and nothing above it


def test_two_clients_are_told_to_use_the_complete_graph() -> None:
    with pytest.raises(ConfigurationError, match="use the complete graph"):
        NeighbourGraph(2, GraphKind.HARARY, 2, SEED)
