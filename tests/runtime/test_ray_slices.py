"""Slice-parallel unmasking on Ray workers gives the round's exact sum, word for word.

Needs the ``ray`` extra (CI installs it with ``.[all]``); without it the module is
skipped with a message saying what to install.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _harness import SteppedRound
from _ray import local_ray

pytest.importorskip("ray", reason="the Ray unmasker needs the ray extra: pip install 'secagg[ray]'")

from secagg.crypto import prg
from secagg.errors import ConfigurationError
from secagg.protocol import Server, ServerPhase
from secagg.runtime.ray_slices import RayUnmasker


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    with local_ray() as module:
        yield module


@pytest.mark.parametrize(("bits", "workers"), [(32, 3), (64, 2)])
def test_a_round_unmasked_on_ray_workers_equals_the_expected_sum(
    ray: Any, bits: int, workers: int
) -> None:
    """SecAgg+ with dropouts at the masked input; d spans several PRG chunks, so every
    worker gets a range (whole chunks), and the result is exact."""
    unmask = RayUnmasker(workers)
    r = SteppedRound(10, 3 * 65_536 + 11, bits=bits, graph="harary", k=6, threshold=4)
    r.server = Server(r.config, unmask=unmask)
    r.to_clients = r.server.start()
    phase = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step(skip=frozenset({2, 7}) if phase >= 2 else frozenset())
        phase += 1
    assert r.server.phase == ServerPhase.COMPLETE
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    assert len(unmask.last) == len(prg.slice_bounds(r.config.vector_length, bits // 8, workers))
    assert [(s.start, s.stop) for s in unmask.last] == prg.slice_bounds(
        r.config.vector_length, bits // 8, workers
    )
    assert all(s.peak_rss_bytes > 0 and s.seconds >= 0 for s in unmask.last)
    assert all(s.pid != os.getpid() for s in unmask.last)  # the work ran in Ray workers


def test_the_ray_unmasker_equals_the_threads_on_random_seeds(ray: Any) -> None:
    add = [os.urandom(16) for _ in range(5)]
    subtract = [os.urandom(16) for _ in range(4)]
    start = prg.expand_into(os.urandom(16), np.empty(4 * 65_536 + 9, dtype=np.uint32))
    threads = prg.accumulate_masks(start.copy(), add, subtract, workers=2)
    on_ray = RayUnmasker(4)(start.copy(), add, subtract)
    assert np.array_equal(threads, on_ray)


@pytest.mark.parametrize(("length", "workers"), [(10_000, 2), (32_768, 3), (7, 5)])
def test_a_short_vector_is_split_by_masks_and_the_sum_is_the_same(
    ray: Any, length: int, workers: int
) -> None:
    """Within one chunk the coordinates cannot be cut: the masks are dealt out, each
    worker expands its share over the whole vector, and the sum is unchanged."""
    add = [os.urandom(16) for _ in range(6)]
    subtract = [os.urandom(16) for _ in range(5)]
    start = prg.expand_into(os.urandom(16), np.empty(length, dtype=np.uint64))
    expected = prg.accumulate_masks(start.copy(), add, subtract)
    unmasker = RayUnmasker(workers)
    assert np.array_equal(unmasker(start.copy(), add, subtract), expected)
    assert len(unmasker.last) == workers
    assert sum(s.masks for s in unmasker.last) == 11
    assert all((s.start, s.stop) == (0, length) for s in unmasker.last)


@pytest.mark.parametrize("workers", [0, -1, 2.5, True])
def test_the_worker_count_is_checked(ray: Any, workers: object) -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        RayUnmasker(workers)  # type: ignore[arg-type]


# --- through the federation server ----------------------------------------------------

NAMES = [f"branch-{i}" for i in range(8)]
D = 65_536 + 5  # two 256 KiB chunks of 32-bit words: a slice for each of two workers


def _federation(tmp_path: Path, tag: str, server: dict[str, Any] | None = None) -> Any:
    from secagg.runtime.config import FederationConfig

    return FederationConfig.from_dict(
        {
            "federation": {"name": "slices", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / f"{tag}.sqlite"), **(server or {})},
        }
    )


def _run(config: Any, unmask: Any = None) -> tuple[np.ndarray, list[Any]]:
    """One round in which branch-6 vanishes before its masked input (seed 3 of the
    schedule: the other branches stay), with keyed rounding: deterministic. (Over
    several rounds with dropouts the in-process engine is not: a vanished branch is
    back when its thread has read the round's end, a race with the next draw.)"""
    from secagg.runtime.client import FederationClient
    from secagg.runtime.launch import build_server, demo_hook
    from secagg.runtime.simnet import DropoutSchedule, SimulatedNetwork

    network = SimulatedNetwork(DropoutSchedule(0.2, seed=3))
    threads = []
    for name in NAMES:
        client = FederationClient(
            name, demo_hook(name, D), network.connect(name), replay_seed=b"slices" * 4
        )
        threads.append(
            threading.Thread(target=client.run, kwargs={"idle_timeout": 120.0}, daemon=True)
        )
    for thread in threads:
        thread.start()
    server = build_server(config, network, config.server.state, unmask=unmask)
    results = server.run(wait_for_clients=120.0)
    for thread in threads:
        thread.join(timeout=60.0)
    return server.model.copy(), results


def test_the_federation_server_unmasks_on_ray_with_the_same_model(ray: Any, tmp_path: Path) -> None:
    """FederationServer(unmask=RayUnmasker) gives the model the threads give, bit for
    bit, with dropouts (the masks of dropped pairs come off on the workers too)."""
    on_threads, plain_results = _run(_federation(tmp_path, "threads"))
    unmasker = RayUnmasker(2)
    on_ray, ray_results = _run(_federation(tmp_path, "ray"), unmask=unmasker)
    assert [r.status for r in ray_results] == [r.status for r in plain_results]
    assert [r.contributed for r in ray_results] == [r.contributed for r in plain_results]
    assert [r.status for r in ray_results] == ["complete"]
    assert "branch-6" not in ray_results[0].contributed
    assert len(ray_results[0].contributed) == 7
    assert np.array_equal(on_threads, on_ray)
    assert len(unmasker.last) == 2  # the close ran on two workers, a slice each
    threads_config = _federation(tmp_path, "three-threads", {"unmask_workers": 3})
    assert np.array_equal(_run(threads_config)[0], on_threads)


def test_unmasking_settings_are_refused_for_a_backend_without_masks(tmp_path: Path) -> None:
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import build_server
    from secagg.transport.inprocess import InProcessHub

    config = FederationConfig.from_dict(
        {
            "federation": {"name": "p", "clients": NAMES, "dimension": 4, "rounds": 1},
            "backend": {"name": "plain"},
            "server": {"state": str(tmp_path / "p.sqlite"), "unmask_workers": 2},
        }
    )
    with pytest.raises(ConfigurationError, match="no masks to remove"):
        build_server(config, InProcessHub(), config.server.state)


def test_the_servers_ray_unmasker_waits_as_long_as_the_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``unmask_on = "ray"``: the slices' wait is the round's deadline, not the
    unmasker's 600 s default (a round configured for an hour was cut at 10 minutes)."""
    import contextlib
    from types import SimpleNamespace

    from secagg.runtime import launch, ray_engine
    from secagg.runtime.config import FederationConfig

    @contextlib.contextmanager
    def no_cluster(*args: Any, **kwargs: Any) -> Any:
        yield SimpleNamespace(cluster_resources=lambda: {"CPU": 2})

    monkeypatch.setattr(ray_engine, "ray_session", no_cluster)
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "p", "clients": NAMES, "dimension": 4, "rounds": 1},
            "deadlines": {"round_seconds": 3600.0},
            "server": {"state": str(tmp_path / "p.sqlite"), "unmask_on": "ray"},
        }
    )
    with launch._cluster_unmasker(config) as unmasker:
        assert isinstance(unmasker, RayUnmasker)
        assert unmasker.timeout == 3600.0 and unmasker.workers == 2
