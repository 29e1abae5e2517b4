"""The server's local execution choices: masks removed by several threads, same round."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import SteppedRound

from secagg.errors import ConfigurationError
from secagg.protocol import Server, ServerPhase


@pytest.mark.parametrize(
    ("graph", "dropped", "bits"),
    [("harary", {2, 5}, 32), ("complete", {4}, 32), ("harary", {1}, 64)],
)
def test_masks_removed_by_several_threads_give_the_same_sum(
    graph: str, dropped: set[int], bits: int
) -> None:
    """Three coordinate slices (d spans 7 PRG chunks of 32-bit words, 13 of 64-bit ones),
    dropouts at the masked input."""
    k = 6 if graph == "harary" else None
    r = SteppedRound(8, 3 * 65_536 + 1, bits=bits, graph=graph, k=k, threshold=3)
    r.server = Server(r.config, mask_workers=3)
    r.to_clients = r.server.start()
    phase = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step(skip=frozenset(dropped) if phase >= 2 else frozenset())
        phase += 1
    assert r.server.phase == ServerPhase.COMPLETE
    assert set(r.server.report.included) == set(range(8)) - dropped
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


@pytest.mark.parametrize("workers", [0, -2, 2.0, True, None])
def test_mask_workers_must_be_a_positive_integer(workers: object) -> None:
    r = SteppedRound(4, 8)
    with pytest.raises(ConfigurationError, match="mask_workers"):
        Server(r.config, mask_workers=workers)  # type: ignore[arg-type]
