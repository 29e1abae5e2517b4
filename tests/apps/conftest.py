"""Every test of tests/apps, and every module's fixtures, leave the process's SIGINT and
SIGTERM handlers as they found them.

Why: a tests/apps run once ignored SIGTERM. ``ray.init`` installs its own SIGTERM
handler (``sys.exit(15)``) and ``ray.shutdown`` leaves it, so after the module that
started a local Ray (tests/apps/simulation/test_ray_simulation.py) a SIGTERM sent to
pytest became a ``SystemExit`` inside whichever test ran, which pytest records as that
test's failure and goes on. Several tests here install handlers of their own (the
simulator's stop handling, in-process): one left behind changes how every later test,
and the run itself, answers a stop. A handler left changed fails the test (or, for a
module-scoped fixture, the module's last test) and is put back, so the rest of the run
is not affected by it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _signals import changed_handlers_put_back, signal_handlers


def _check_handlers_kept(what: str) -> Iterator[None]:
    before = signal_handlers()
    yield
    changed = changed_handlers_put_back(before)
    if changed:
        pytest.fail(f"{what} left signal handlers changed (now put back): {'; '.join(changed)}")


@pytest.fixture(autouse=True, scope="module")
def _module_keeps_signal_handlers() -> Iterator[None]:
    """Set up before the module's other fixtures and torn down after them: catches a
    module-scoped fixture (a Ray instance) that leaves a handler behind."""
    yield from _check_handlers_kept("this module's tests or fixtures")


@pytest.fixture(autouse=True)
def _test_keeps_signal_handlers() -> Iterator[None]:
    yield from _check_handlers_kept("this test")
