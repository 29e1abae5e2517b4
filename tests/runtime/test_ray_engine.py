"""secagg.runtime.ray_engine: clients in Ray actors replay the in-process engine's round.

One local Ray instance (2 CPUs) serves the module. The central check: a SecAgg+ round
of 100 clients with a seeded dropout schedule gives, on Ray, the model of the same
round on the in-process engine bit for bit, with the same contributors and the same
dropouts (the masks are fresh randomness on each run, but they cancel exactly, and the
encoding's rounding is replayed from a seed)."""

from __future__ import annotations

import functools
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ray import local_ray

from secagg.crypto.stream import KeyedStream
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError, StreamCopyRefused
from secagg.runtime import ray_engine
from secagg.runtime.client import TrainingHook
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import demo_hook, load_hook
from secagg.runtime.ray_engine import (
    RAY_EXTRA,
    ClientsRun,
    HookClient,
    RayHub,
    RayUnavailable,
    hook_clients,
    ray_session,
    require_ray,
    run_clients,
)
from secagg.runtime.simnet import MASKING_PHASES, DropoutSchedule

#: 100 clients (200 before): a secagg+ round of several neighbourhoods over two hosts,
#: with dropouts at every phase, at half the cost; what is checked does not grow with N
N = 100
D = 32
REPLAY = b"secagg/tests/ray-engine/rounding"


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """One local Ray instance for the module (starting one takes seconds), started as the
    engine starts its own: again when the raylet misses Ray's 30 s registration on a busy
    machine (a fresh-clone CI run failed three tests at this fixture's bare ``ray.init``),
    with Ray's memory monitor off (see tests/_ray.py)."""
    with local_ray() as ray:
        yield ray


def test_the_test_ray_instance_runs_without_the_memory_monitor(ray_instance: Any) -> None:
    """Ray's memory monitor kills workers when the machine's memory runs low, whoever
    uses it: on a shared test machine another job's memory cost a test its workers
    (review, 2026-12-05). The tests' instance starts with it off, as every process of
    the instance sees: its raylet was started with it, and a worker inherits that."""

    @ray_instance.remote
    def environment() -> str | None:
        import os

        return os.environ.get("RAY_memory_monitor_refresh_ms")

    assert ray_instance.get(environment.remote(), timeout=120) == "0"


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
        # at most 6 %, as 12 of 200 were: within the round's 10 % dropout allowance
        if set(dropped) == {0, 1, 2, 3} and len(dropped) <= 0.06 * len(names):
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


def _noisy_hook(stream: KeyedStream) -> TrainingHook:
    """A caller's DP hook noising its update from ``stream`` (a live stream: refused)."""

    def hook(model: np.ndarray) -> np.ndarray:
        return gaussian(1.0, model.size, stream)

    return hook


def test_a_factory_holding_a_stream_is_one_line_and_leaves_no_host_behind(
    ray_instance: Any,
) -> None:
    """A factory holding a KeyedStream cannot go to a host (each host would rebuild a twin
    and draw the same noise): ``start`` says so in one line naming the clients, without
    Ray's dump of the arguments (a factory's repr: its seed, its data), and the hosts
    already built for earlier groups are stopped.

    Before: Ray's TypeError of 17 lines, which printed every factory of the
    refused host with its ``replay_seed`` (and, for the simulator's, the configuration
    and the branch's data). The first host was then stopped only when Ray collected its
    handle; now ``start`` stops it at once."""
    names = _names(4)
    clients: dict[str, Any] = dict(_demo_clients(names))
    # round-robin over two hosts: c0003 is in the second group, built after the first
    clients["c0003"] = HookClient(functools.partial(_noisy_hook, KeyedStream()), dimension=D)
    with RayHub(workers=2) as hub, pytest.raises(StreamCopyRefused) as refused:
        hub.start(clients)
    message = str(refused.value)
    assert "\n" not in message and "c0003" in message and "fork(" in message, message
    assert "Checking Serializability" not in message
    total = ray_instance.cluster_resources()["CPU"]
    deadline = time.monotonic() + 60.0  # an actor's kill frees its CPU within a second
    while ray_instance.available_resources().get("CPU", 0.0) < total:
        assert time.monotonic() < deadline, "a host of the refused start still holds a CPU"
        time.sleep(0.05)


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


class _FakeRay:
    """``ray`` as ray_session uses it, recording the addresses it was asked to join and
    the calls made: no Ray instance is started or reached. The first ``failing_starts``
    local starts fail as Ray's own does when its raylet misses the 30 s registration."""

    def __init__(self, failing_starts: int = 0) -> None:
        self.joined: list[str | None] = []
        self.calls: list[str] = []
        self.failing_starts = failing_starts

    def is_initialized(self) -> bool:
        return False

    def init(self, address: str | None = None, **options: object) -> None:
        self.calls.append("init")
        if address is None and self.failing_starts > 0:
            self.failing_starts -= 1
            raise Exception(
                "The current node timed out during startup. This could happen because "
                "some of the raylet failed to startup or the GCS has become overloaded."
            )
        self.joined.append(address)

    def shutdown(self) -> None:
        self.calls.append("shutdown")


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> _FakeRay:
    fake = _FakeRay()
    monkeypatch.setattr(ray_engine, "require_ray", lambda: fake)
    # Ray joins RAY_ADDRESS instead of an address left out: none unless a test sets one
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return fake


def _unresolvable(*args: object, **kwargs: object) -> list[object]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_an_unresolvable_ray_address_is_one_line_naming_the_flag(
    fake_ray: _FakeRay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLI audit 2026-12-05, 6: ``simulate --ray-address bogus:1234`` hung past 4 minutes
    in ray.init's retries, printing only Ray's log lines."""
    monkeypatch.setattr(ray_engine.socket, "getaddrinfo", _unresolvable)
    with pytest.raises(RayUnavailable) as raised, ray_session("bogus:1234", source="--ray-address"):
        pass
    message = str(raised.value)
    assert message == (
        "cannot reach Ray at bogus:1234 (--ray-address): the host bogus does not resolve "
        "(Name or service not known)"
    )
    assert fake_ray.joined == []  # Ray was never asked


@pytest.mark.parametrize(
    ("address", "source", "env", "named"),
    [
        # the caller's argument (run_clients, a library caller): no flag was typed
        ("bogus:1234", None, None, "bogus:1234"),
        # secagg server's config file key, not a flag it does not have
        ("bogus:1234", "[server] ray_address", None, "bogus:1234 ([server] ray_address)"),
        # Ray joins RAY_ADDRESS when no address is given or it is "auto": the
        # environment named it, whatever the caller's source
        (None, "--ray-address", "bogus:1234", "bogus:1234 (the RAY_ADDRESS environment variable)"),
        (
            "auto",
            "--ray-address",
            "bogus:1234",
            "bogus:1234 (the RAY_ADDRESS environment variable)",
        ),
        # an address given wins over the environment, as in Ray
        ("other:99", "--ray-address", "bogus:1234", "other:99 (--ray-address)"),
    ],
)
def test_an_unreachable_address_names_where_it_came_from(
    fake_ray: _FakeRay,
    monkeypatch: pytest.MonkeyPatch,
    address: str | None,
    source: str | None,
    env: str | None,
    named: str,
) -> None:
    """Simulate audit 2026-12-05: every unreachable address was blamed on
    ``(--ray-address)``, also one from ``[server] ray_address`` or a library caller's
    argument; and ``RAY_ADDRESS=bogus:1234`` with no address given was not checked at
    all: ray.init joined it and retried for minutes (killed after 150 s)."""
    monkeypatch.setattr(ray_engine.socket, "getaddrinfo", _unresolvable)
    if env is not None:
        monkeypatch.setenv("RAY_ADDRESS", env)
    with pytest.raises(RayUnavailable) as raised, ray_session(address, source=source):
        pass
    host = named.split(":", 1)[0]
    assert str(raised.value) == (
        f"cannot reach Ray at {named}: the host {host} does not resolve (Name or service not known)"
    )
    assert fake_ray.joined == [] and fake_ray.calls == []  # Ray was never asked


def test_a_reachable_ray_address_variable_is_joined_after_the_check(
    fake_ray: _FakeRay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no address given, a RAY_ADDRESS that answers is joined (Ray's own rule),
    not a local instance started: no num_cpus is passed, which Ray refuses beside an
    existing cluster."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setenv("RAY_ADDRESS", address)
        with ray_session(num_cpus=2):
            pass
    assert fake_ray.joined == [address]
    assert ray_engine.joined_address(None, "--ray-address") == (
        address,
        "the RAY_ADDRESS environment variable",
    )
    monkeypatch.setenv("RAY_ADDRESS", "")  # empty: unset, as Ray reads it
    assert ray_engine.joined_address(None, "--ray-address") == (None, "--ray-address")


def test_a_port_that_refuses_is_one_line_before_ray(fake_ray: _FakeRay) -> None:
    with socket.socket() as bound:  # bound, not listening: a connection is refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(RayUnavailable, match=r"\(--ray-address\): nothing accepts"):
                with ray_session(address, source="--ray-address"):
                    pass
    assert fake_ray.joined == []


def test_a_reachable_address_and_auto_go_to_ray(fake_ray: _FakeRay) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        with ray_session(address):
            pass
    with ray_session("auto"):  # Ray finds the cluster itself: nothing to check here
        pass
    assert fake_ray.joined == [address, "auto"]


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("auto", None),
        ("local", None),
        ("host", None),
        ("host:12a", None),
        ("head:6379", ("head", 6379)),
        ("ray://head.example:10001", ("head.example", 10001)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_the_checked_addresses(address: str, parts: tuple[str, int] | None) -> None:
    assert ray_engine._host_port(address) == parts


def test_a_resolver_that_does_not_answer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup runs in a thread the check stops waiting for (it never answers here,
    until the test lets it go)."""
    release = threading.Event()

    def hangs(*args: object, **kwargs: object) -> list[object]:
        release.wait()
        raise socket.gaierror(socket.EAI_AGAIN, "late")

    monkeypatch.setattr(ray_engine.socket, "getaddrinfo", hangs)
    try:
        with pytest.raises(RayUnavailable, match=r"does not resolve \(no answer from the"):
            ray_engine.check_address("slow:1234", timeout=0.01)
    finally:
        release.set()


def test_a_local_start_that_times_out_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI 2026-12-04: on a busy machine Ray's raylet missed its fixed 30 s registration and
    a whole test module errored; the session starts again (after shutting the failed
    start down) and a later success is used."""
    fake = _FakeRay(failing_starts=ray_engine.LOCAL_START_ATTEMPTS - 1)
    monkeypatch.setattr(ray_engine, "require_ray", lambda: fake)
    pauses: list[float] = []
    monkeypatch.setattr(ray_engine, "_pause", pauses.append)
    with ray_session(num_cpus=2):
        assert fake.joined == [None]
    expected = ["init", "shutdown"] * (ray_engine.LOCAL_START_ATTEMPTS - 1)
    assert fake.calls == [*expected, "init", "shutdown"]
    # a pause after every failed start, none after the one that worked
    assert pauses == [ray_engine.LOCAL_START_PAUSE_SECONDS] * (ray_engine.LOCAL_START_ATTEMPTS - 1)


def test_a_local_start_that_keeps_failing_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeRay(failing_starts=ray_engine.LOCAL_START_ATTEMPTS)
    monkeypatch.setattr(ray_engine, "require_ray", lambda: fake)
    pauses: list[float] = []
    monkeypatch.setattr(ray_engine, "_pause", pauses.append)
    with pytest.raises(RayUnavailable) as raised, ray_session():
        pass
    assert str(raised.value) == (
        f"cannot start a local Ray instance ({ray_engine.LOCAL_START_ATTEMPTS} attempts): "
        "The current node timed out during startup. This could happen because some of the "
        "raylet failed to startup or the GCS has become overloaded."
    )
    assert fake.joined == []
    assert fake.calls.count("shutdown") == ray_engine.LOCAL_START_ATTEMPTS  # none left up
    assert len(pauses) == ray_engine.LOCAL_START_ATTEMPTS - 1  # no wait before the error


def test_a_sigterm_handler_the_caller_installed_outlives_ray_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review of 2026-12-04: ray.init replaces the SIGTERM handler with sys.exit(15), so
    ``secagg simulate --engine ray`` stopped by SIGTERM left no ABORTED marker."""
    import signal

    class _RayTakingSigterm(_FakeRay):
        def init(self, address: str | None = None, **options: object) -> None:
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
            super().init(address, **options)

    def callers(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    monkeypatch.setattr(ray_engine, "require_ray", _RayTakingSigterm)
    original = signal.signal(signal.SIGTERM, callers)
    try:
        with ray_session():
            assert signal.getsignal(signal.SIGTERM) is callers
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # none installed: Ray's stays
        with ray_session():
            assert signal.getsignal(signal.SIGTERM) not in (callers, signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGTERM, original)


def test_the_server_s_unreachable_ray_names_its_config_key(
    fake_ray: _FakeRay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``unmask_on = "ray"`` with an unreachable ``ray_address``: the server's message
    said "(--ray-address)", a flag the server does not have, then named no source."""
    from types import SimpleNamespace

    from secagg.runtime.launch import _cluster_unmasker

    monkeypatch.setattr(ray_engine.socket, "getaddrinfo", _unresolvable)
    server = SimpleNamespace(unmask_on="ray", ray_address="bogus:1234", unmask_workers=None)
    with pytest.raises(RayUnavailable, match=r"bogus:1234 \(\[server\] ray_address\)"):
        with _cluster_unmasker(SimpleNamespace(server=server)):  # type: ignore[arg-type]
            pass
    assert fake_ray.joined == []
