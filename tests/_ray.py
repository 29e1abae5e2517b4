"""Ray for tests: a local instance started with Ray's memory monitor off.

Why: Ray's memory monitor kills a worker whenever the *machine's* memory use passes its
threshold (95 % by default), whatever process uses it. The test machine is shared (2
cores, other jobs beside the suite), so another job's memory cost a test its Ray
workers and failed it for nothing the test checks (review, 2026-12-05). The monitor is
read by the raylet when it starts, from ``RAY_memory_monitor_refresh_ms`` (0: off), so
the variable is set before Ray starts and restored after. Tests only: users' Ray keeps
its monitor (``secagg.runtime.ray_engine`` never sets it).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any, Final

#: the raylet's setting: how often (ms) it checks the machine's memory; 0 turns it off
MEMORY_MONITOR_ENV: Final = "RAY_memory_monitor_refresh_ms"


@contextlib.contextmanager
def memory_monitor_off() -> Iterator[None]:
    """Within the block, a Ray started by this process (or a child it starts, such as a
    benchmark cell's) runs without the memory monitor; the environment is restored after."""
    before = os.environ.get(MEMORY_MONITOR_ENV)
    os.environ[MEMORY_MONITOR_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MEMORY_MONITOR_ENV, None)
        else:
            os.environ[MEMORY_MONITOR_ENV] = before


@contextlib.contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[Any]:
    """A local Ray instance for a test module's fixture, started as the engine starts
    its own (:func:`~secagg.runtime.ray_engine.ray_session`: again when the raylet misses
    Ray's 30 s registration on a busy machine), with the memory monitor off.

    The SIGTERM handler is put back after: ``ray.init`` installs its own
    (``sys.exit(15)``), which the engine leaves in place of a default one and
    ``ray.shutdown`` does not remove, so every later test of the run turned a SIGTERM
    sent to pytest into a ``SystemExit`` failing whichever test ran, and the run went on
    (tests/apps/conftest.py checks each module leaves the handlers as it found them)."""
    from secagg.runtime.ray_engine import ray_session

    before = signal.getsignal(signal.SIGTERM)
    try:
        with memory_monitor_off(), ray_session(num_cpus=num_cpus) as ray:
            yield ray
    finally:
        if before is not None:  # None: not installed from Python, nothing to put back
            signal.signal(signal.SIGTERM, before)
