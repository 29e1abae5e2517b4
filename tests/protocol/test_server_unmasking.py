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


def test_an_unmask_callable_replaces_the_threads_and_gives_the_same_sum() -> None:
    """``unmask=``: the server hands the seeds to the callable (here slices computed
    apart and added in, as remote workers would) and the round's sum is exact."""
    from secagg.crypto import prg

    calls: list[tuple[int, int]] = []

    def by_slices(acc: np.ndarray, add: object, subtract: object) -> np.ndarray:
        calls.append((len(add), len(subtract)))  # type: ignore[arg-type]
        for a, b in prg.slice_bounds(len(acc), acc.itemsize, 3):
            part = prg.mask_slice(b - a, acc.dtype, add, subtract, offset=a)  # type: ignore[arg-type]
            np.add(acc[a:b], part, out=acc[a:b])
        return acc

    r = SteppedRound(8, 2 * 65_536 + 3, graph="harary", k=6, threshold=3)
    r.server = Server(r.config, unmask=by_slices)
    r.to_clients = r.server.start()
    phase = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step(skip=frozenset({3}) if phase >= 2 else frozenset())
        phase += 1
    assert r.server.phase == ServerPhase.COMPLETE
    assert len(calls) == 1 and calls[0][0] + calls[0][1] > 7  # 7 self masks + pair masks
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


def test_unmask_must_be_callable() -> None:
    r = SteppedRound(4, 8)
    with pytest.raises(ConfigurationError, match="unmask"):
        Server(r.config, unmask=42)  # type: ignore[arg-type]
