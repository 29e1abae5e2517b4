"""The Ray engine's hosts get the driver's native thread-pool sizes without a per-actor
``runtime_env`` when the engine started the local instance itself.

Why it matters: an actor with a ``runtime_env`` of its own cannot take a worker Ray keeps
started and is set up through Ray's runtime-env agent (2-4 s more per hub on the test
machine, review of 2026-12-06). The thread sizes still must reach the hosts (a
multi-threaded BLAS sums in another order, and the hosts must compute what the driver
computes), so a local instance starts with them in its environment, and only an
instance the engine did not start (a cluster joined, the caller's own ``ray.init``)
needs them per actor. A fake ``ray`` records what the engine asked of it: no Ray runs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime import ray_engine
from secagg.runtime.ray_engine import RayHub, ray_session


class _Handle:
    """A ``ClientHost`` built in this process; ``handle.method.remote(...)`` calls it."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def __getattr__(self, method: str) -> Any:
        call = getattr(self._host, method)
        return type("_Method", (), {"remote": staticmethod(call)})()


class _FakeRay:
    """``ray`` as :func:`ray_session` and :meth:`RayHub.start` use it: records the
    thread variables in the environment when ``init`` ran and each actor's options."""

    def __init__(self, *, started_by_caller: bool = False) -> None:
        self.up = started_by_caller
        self.environment_at_init: dict[str, str | None] = {}
        self.actor_options: list[dict[str, Any]] = []

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **options: Any) -> None:
        del options
        self.environment_at_init = {
            name: os.environ.get(name) for name in ray_engine._THREAD_VARIABLES
        }
        self.up = True

    def shutdown(self) -> None:
        self.up = False

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2.0}

    def remote(self, **options: Any) -> Any:
        self.actor_options.append(options)

        def build(cls: type) -> Any:
            return type("_Actor", (), {"remote": staticmethod(lambda *a: _Handle(cls(*a)))})()

        return build

    def get(self, refs: Any, timeout: float | None = None) -> Any:
        return refs

    def kill(self, handle: Any) -> None:
        del handle


def _refusing_factory(name: str, endpoint: Any) -> Any:
    """A client factory that refuses: the hub starts its hosts, then stops (no rounds)."""
    raise ConfigurationError(f"{name}: not built (the test only looks at the hosts)")


def _start_a_hub() -> None:
    hub = RayHub(workers=1)
    with pytest.raises(ConfigurationError, match="not built"):
        hub.start({"branch-01": _refusing_factory})


@pytest.fixture
def no_thread_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver sets none of the thread variables (the common case), no RAY_ADDRESS."""
    for name in ray_engine._THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.usefixtures("no_thread_variables")
def test_a_local_instance_gives_its_workers_the_threads_and_its_hosts_no_runtime_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeRay()
    monkeypatch.setattr(ray_engine, "require_ray", lambda: fake)
    threads = ray_engine._thread_environment()
    with ray_session(num_cpus=2):
        _start_a_hub()
    # the instance's processes (and so its workers) inherited the driver's sizes
    assert fake.environment_at_init["OMP_NUM_THREADS"] == threads["OMP_NUM_THREADS"]
    # ... so the hosts need no runtime_env of their own (before: one per actor)
    assert fake.actor_options and "runtime_env" not in fake.actor_options[0]
    # the driver's own environment is as it was
    assert all(name not in os.environ for name in ray_engine._THREAD_VARIABLES)


@pytest.mark.usefixtures("no_thread_variables")
def test_an_instance_the_engine_did_not_start_gets_the_threads_per_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeRay(started_by_caller=True)  # a notebook's ray.init, or a cluster joined
    monkeypatch.setattr(ray_engine, "require_ray", lambda: fake)
    with ray_session():
        _start_a_hub()
    env = fake.actor_options[0]["runtime_env"]["env_vars"]
    assert env == ray_engine._thread_environment()


@pytest.mark.usefixtures("no_thread_variables")
def test_after_the_local_instance_ends_a_later_one_is_not_taken_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = _FakeRay()
    monkeypatch.setattr(ray_engine, "require_ray", lambda: local)
    with ray_session(num_cpus=2):
        pass
    callers = _FakeRay(started_by_caller=True)
    monkeypatch.setattr(ray_engine, "require_ray", lambda: callers)
    _start_a_hub()
    assert "runtime_env" in callers.actor_options[0]


@pytest.mark.usefixtures("no_thread_variables")
def test_a_thread_variable_changed_after_the_start_goes_per_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeRay()
    monkeypatch.setattr(ray_engine, "require_ray", lambda: fake)
    with ray_session(num_cpus=2):
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # the workers did not inherit it
        _start_a_hub()
    assert fake.actor_options[0]["runtime_env"]["env_vars"]["OPENBLAS_NUM_THREADS"] == "1"
