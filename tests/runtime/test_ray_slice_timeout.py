"""A stuck Ray unmasking worker aborts the round after the unmasker's timeout, naming
its slice, instead of holding the server past every deadline (review, 2026-12-05:
``ray.get`` had no timeout). Needs the ``ray`` extra."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _harness import SteppedRound
from _ray import local_ray

pytest.importorskip("ray", reason="the Ray unmasker needs the ray extra: pip install 'secagg[ray]'")

from secagg.crypto import prg
from secagg.protocol import Server, ServerPhase
from secagg.runtime import ray_slices
from secagg.runtime.ray_slices import RayUnmasker

#: how long a stuck worker sleeps: far past the unmasker's bound in these tests
STUCK_SECONDS = 300.0
#: the unmasker's bound in these tests
BOUND_SECONDS = 2.0


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    with local_ray(num_cpus=2) as module:
        yield module


def _stuck_on_the_first_slice(ray: Any, unmasker: RayUnmasker) -> None:
    """The worker of the slice starting at 0 hangs (alive, not dead); the others work."""
    work = ray_slices._slice_of_masks
    stuck_for = STUCK_SECONDS

    def stuck_or_working(start: int, stop: int, dtype: str, seeds: Any) -> Any:
        if start == 0:
            time.sleep(stuck_for)  # a stuck worker, in its own Ray process
        return work(start, stop, dtype, seeds)

    unmasker._task = ray.remote(num_cpus=1)(stuck_or_working)


def test_a_stuck_worker_raises_after_the_bound_and_leaves_the_sum_untouched(ray: Any) -> None:
    unmasker = RayUnmasker(2, timeout=BOUND_SECONDS)
    _stuck_on_the_first_slice(ray, unmasker)
    start = prg.expand_into(os.urandom(16), np.empty(3 * 65_536, dtype=np.uint32))
    acc = start.copy()
    began = time.monotonic()
    with pytest.raises(ray_slices.SliceTimeout, match=r"slice 0\.\.\d+ \(task [0-9a-f]+\)"):
        unmasker(acc, [os.urandom(16)], [os.urandom(16)])
    assert time.monotonic() - began < STUCK_SECONDS / 2  # the bound, not the worker, ended it
    assert np.array_equal(acc, start)  # no slice added: not partly unmasked


def test_a_round_with_a_stuck_unmasking_worker_aborts_and_names_it(ray: Any) -> None:
    unmasker = RayUnmasker(2, timeout=BOUND_SECONDS)
    _stuck_on_the_first_slice(ray, unmasker)
    r = SteppedRound(6, 2 * 65_536 + 5, bits=32, graph="complete", threshold=3)
    r.server = Server(r.config, unmask=unmasker)
    r.to_clients = r.server.start()
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    assert r.server.phase == ServerPhase.ABORTED  # never a sum with masks left on
    reason = str(r.server.report.abort_reason)
    assert "SliceTimeout" in reason and "slice 0.." in reason and "within 2 s" in reason
    # the unmasker is usable again once its worker is freed (the stuck task was cancelled)
    add = [os.urandom(16)]
    fresh = RayUnmasker(2, timeout=120.0)
    vector = np.zeros(2 * 65_536, dtype=np.uint32)
    assert np.array_equal(fresh(vector.copy(), add, []), prg.accumulate_masks(vector, add, []))


@pytest.mark.parametrize("timeout", [0, -1.0, float("inf"), float("nan"), True, "600"])
def test_the_timeout_must_be_a_positive_finite_number(ray: Any, timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        RayUnmasker(2, timeout=timeout)
