"""secagg.runtime.ray_engine: clients in Ray actors replay the in-process engine's round.

One local Ray instance (2 CPUs) serves the module. The central check: a SecAgg+ round
of 200 clients with a seeded dropout schedule gives, on Ray, the model of the same
round on the in-process engine bit for bit, with the same contributors and the same
dropouts (the masks are fresh randomness on each run, but they cancel exactly, and the
encoding's rounding is replayed from a seed)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import demo_hook, load_hook
from secagg.runtime.ray_engine import (
    RAY_EXTRA,
    ClientsRun,
    HookClient,
    RayHub,
    RayUnavailable,
    hook_clients,
    require_ray,
    run_clients,
)
from secagg.runtime.simnet import MASKING_PHASES, DropoutSchedule

N = 200
D = 32
REPLAY = b"secagg/tests/ray-engine/rounding"


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """One local Ray instance for the module (starting one takes seconds)."""
    ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: secagg[ray]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield ray
    finally:
        ray.shutdown()


def _names(n: int) -> list[str]:
    return [f"c{i:04d}" for i in range(n)]


def _config(names: list[str], tmp_path: Path, **backend: object) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "ray-test",
                "clients": names,
                "dimension": D,
                "rounds": 1,
                "seed": 11,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.1} | backend,
            # generous: a phase closes as soon as everyone answered or has gone
            "deadlines": {"phase_seconds": 120.0},
            "server": {"state": str(tmp_path / "unused.sqlite")},
        }
    )


def _schedule(names: list[str]) -> DropoutSchedule:
    """A 4 % schedule whose round 1 drops clients before each of their four messages."""
    for seed in range(200):
        schedule = DropoutSchedule(0.04, seed, MASKING_PHASES)
        phases = [schedule.phase_for(1, name) for name in names]
        dropped = [p for p in phases if p is not None]
        if set(dropped) == {0, 1, 2, 3} and len(dropped) <= 12:
            return schedule
    raise AssertionError("no seed drops clients at every phase")


def _demo_clients(names: list[str], **options: Any) -> dict[str, HookClient]:
    return hook_clients(
        {name: functools.partial(demo_hook, name, D) for name in names},
        replay_seed=REPLAY,
        dimension=D,
        **options,
    )


def _dropped(run: ClientsRun) -> set[tuple[int, str, str]]:
    return {(e.round, e.branch, e.phase) for e in run.dropouts}


def test_a_secagg_plus_round_on_ray_equals_the_in_process_round(
    ray_instance: Any, tmp_path: Path
) -> None:
    names = _names(N)
    config = _config(names, tmp_path)
    schedule = _schedule(names)
    clients = _demo_clients(names)
    on_ray = run_clients(
        config, clients, tmp_path / "ray.sqlite", engine="ray", schedule=schedule, workers=2
    )
    local = run_clients(
        config, clients, tmp_path / "local.sqlite", engine="inprocess", schedule=schedule
    )
    for run in (on_ray, local):
        assert run.finished and [r.status for r in run.results] == ["complete"]
    ray_round, local_round = on_ray.results[0], local.results[0]
    assert np.array_equal(on_ray.model, local.model)  # bit for bit
    assert set(ray_round.contributed) == set(local_round.contributed)
    assert set(ray_round.participants) == set(local_round.participants) == set(names)
    # the same clients vanished before the same messages, at every phase
    assert _dropped(on_ray) == _dropped(local)
    assert {phase for _, _, phase in _dropped(on_ray)} == set(MASKING_PHASES)
    # who vanished before its masked input is not in the sum; an unmasking dropout is
    early = {b for _, b, p in _dropped(on_ray) if p != "unmasking"}
    assert set(ray_round.contributed) == set(names) - early
    # not vacuous: the sum is the contributors' mean update (within the encoding error)
    mean = np.mean([demo_hook(n, D)(np.zeros(D)) for n in ray_round.contributed], axis=0)
    assert np.max(np.abs(on_ray.model - mean)) < 1e-6
    assert np.max(np.abs(mean)) > 1e-3
    # the clients ran in two Ray workers; every byte was counted per client
    assert on_ray.workers == 2 and len(on_ray.worker_peak_rss) == 2
    assert all(rss > 0 for rss in on_ray.worker_peak_rss)
    assert set(on_ray.bytes_received) == set(local.bytes_received) == set(names)
    silent = {b for _, b, p in _dropped(on_ray) if p == "advertise_keys"}
    assert set(on_ray.bytes_sent) == set(names) - silent
    # every client heard the federation's end
    assert {s.outcome for s in on_ray.client_stats.values()} == {"finished"}


def test_a_client_that_stops_leaves_and_the_round_goes_on(
    ray_instance: Any, tmp_path: Path
) -> None:
    """A client whose handle raises (here: its model has another dimension) ends its
    session in the driver at once: the server closes the round without it."""
    names = _names(8)
    clients = _demo_clients(names)
    clients["c0003"] = HookClient(functools.partial(demo_hook, "c0003", D), dimension=D + 1)
    run = run_clients(_config(names, tmp_path), clients, tmp_path / "s.sqlite", workers=2)
    assert run.results[0].status == "complete"
    assert set(run.results[0].contributed) == set(names) - {"c0003"}
    assert set(run.left) == {"c0003"} and "DimensionMismatch" in run.left["c0003"]


def test_a_factory_error_is_raised_in_the_driver(ray_instance: Any, tmp_path: Path) -> None:
    names = _names(4)
    clients = _demo_clients(names)
    # load_hook raises a ConfigurationError in the host, while the client is built
    clients["c0002"] = HookClient(functools.partial(load_hook, "no_such_module:hook", "c2", D))
    with pytest.raises(ConfigurationError, match="cannot load hook 'no_such_module:hook'"):
        run_clients(_config(names, tmp_path), clients, tmp_path / "s.sqlite", workers=2)
    with RayHub(workers=2) as hub:  # the failed hosts gave their CPUs back
        hub.start(_demo_clients(names))
        assert hub.connected() == set(names)


def test_bad_engine_settings_are_configuration_errors(tmp_path: Path) -> None:
    names = _names(4)
    with pytest.raises(ConfigurationError, match="engine must be one of"):
        run_clients(_config(names, tmp_path), {}, tmp_path / "s.sqlite", engine="spark")


def test_a_missing_ray_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(RayUnavailable) as raised:
        require_ray()
    assert str(raised.value) == RAY_EXTRA
    assert isinstance(raised.value, ConfigurationError)  # the CLI's one-line usage error
