"""Shared by every test folder: the helpers beside this file are importable by name,
Hypothesis runs without its per-example deadline (200 ms by default) or its "too slow"
health check: both time the machine, not the code, and a busy 2-core CI machine trips
them (a property's examples are checked all the same), and the tests' temporary files
live in memory when the machine has a tmpfs (see :func:`pytest_configure`)."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

from _schedule import longest_files_first
from _tmpfs import MEMORY_TEMP, ON_DISK_ENV, _is_writable_tmpfs

from secagg.transport.waiting import StopAsked, forget_stop

settings.register_profile(
    "busy-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("busy-machine")


def pytest_configure(config: pytest.Config) -> None:
    """``tmp_path`` (pytest's numbered base folder, made by the xdist controller and
    shared out to the workers) and :mod:`tempfile`'s folders in a tmpfs, in this process.

    Why: every server state, ledger and durable write a test makes fsyncs, and no test
    here can see what an fsync is for (the power cut that it survives: a crash in these
    tests is a process's, played in-process or by a kill, and the kernel's page cache
    outlives it). On the 2-core machines' disk an fsync took 0.26 ms when the machine was
    quiet and 2.6 ms when it was busy: the two runs of
    tests/runtime/test_crash_points.py make 31 600 of them, tests/ledger 29 300. On
    a tmpfs the same calls run, in the same order, and return at once. Only this
    process's :mod:`tempfile` is moved (``TMPDIR`` is left alone): subprocesses and Ray
    keep their own folders."""
    if os.environ.get(ON_DISK_ENV) or not _is_writable_tmpfs(MEMORY_TEMP):
        return
    tempfile.tempdir = str(MEMORY_TEMP)


#: the folders below tests/ (and "" for the files directly in it) whose every test has
#: run with an unhandled exception in a thread or in a finalizer as an error, not a
#: warning (helper 239, 2026-12-06, each package alone with ``-n 0``): a party's thread
#: that died, or a socket or file left to a finalizer that raised, passed as a line in
#: the warnings summary that no run reads. tests/apps last (helper 247, 2026-12-06:
#: ``tests/apps -n 0`` with both filters as errors, 1870 passed; one run of it, on a
#: machine under a load of 15, had failed 8 tests whose errors were not seen, and did
#: not fail again). Every folder is now in the set: the two filters can move to
#: pyproject.toml's filterwarnings for the whole suite.
UNHANDLED_EXCEPTIONS_FAIL = frozenset(
    {
        "",
        "aggregation",
        "apps",
        "crypto",
        "dp",
        "encoding",
        "he",
        "integration",
        "ledger",
        "protocol",
        "runtime",
        "transport",
    }
)
_UNHANDLED_AS_ERRORS = (
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
)


def _package(item: pytest.Item) -> str:
    """The folder right below tests/ that holds ``item``'s file ("" for tests/ itself)."""
    parts = Path(item.path).resolve().relative_to(Path(__file__).parent.resolve()).parts
    return parts[0] if len(parts) > 1 else ""


@pytest.hookimpl(trylast=True)  # after tests/integration/conftest.py marks its tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An unhandled exception in a thread or a finalizer fails the tests of the folders
    in :data:`UNHANDLED_EXCEPTIONS_FAIL`. On an xdist worker, the files longest first
    (:mod:`_schedule` says why): every worker collects the same order, and xdist, told
    ``--no-loadscope-reorder`` in pyproject.toml, hands the files out in it. In one
    process (``-n 0``) the order is left alone: it buys nothing there, and a run reads in
    the files' own order."""
    for item in items:
        if _package(item) in UNHANDLED_EXCEPTIONS_FAIL:
            for mark in _UNHANDLED_AS_ERRORS:
                item.add_marker(mark)
    if hasattr(config, "workerinput"):
        items[:] = longest_files_first(items)


@pytest.fixture(autouse=True)
def _stop_record_left_by_none() -> Iterator[None]:
    """Every test fails if it leaves a stop in the process's record
    (:func:`secagg.transport.waiting.forget_stop`), which is then cleared.

    Why: the record is process-wide, and an xdist worker runs hundreds of tests in one
    process. A stop a command (or a test's own ``ask_stop``) left recorded made every
    later party of that worker raise ``StopAsked`` at its first look, far from the test
    that leaked it (second review of the stop record, 2026-12-07).

    While a test runs, a thread other than the main one that ends with ``StopAsked``
    is not reported: it obeyed the process-wide stop the test recorded on purpose.
    Why: an earlier test's party threads that were still winding down in the same
    worker raised ``StopAsked`` at their next look, and pytest reported them as this
    test's unhandled thread exceptions (a fresh-clone CI of eb66a86e, five
    ``FederationClient.run`` threads under ``test_waits_look_at_the_stop_record.py``).
    A test that expects its own thread to stop checks that itself."""
    hook = threading.excepthook

    def obeyed_the_stop(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, StopAsked) and args.thread is not threading.main_thread():
            return
        hook(args)

    left_before = forget_stop()
    threading.excepthook = obeyed_the_stop
    try:
        yield
    finally:
        left = forget_stop()
        threading.excepthook = hook
    if left_before is not None or left is not None:
        pytest.fail(
            f"the process's stop record held {signal.Signals(left or left_before).name} "
            f"{'after' if left is not None else 'before'} this test: a command or a test "
            "recorded a stop and did not forget it",
            pytrace=False,
        )
