"""The process's stop handlers (SIGINT, SIGTERM), read and put back: tests/apps/conftest.py
checks that every test and module leaves them as it found them."""

from __future__ import annotations

import signal
from typing import Any

#: the signals a user or a service manager stops a run with
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_handlers() -> dict[signal.Signals, Any]:
    """The handler of each of :data:`STOP_SIGNALS` now (None: one not installed from
    Python, which cannot be put back from here)."""
    return {stop: signal.getsignal(stop) for stop in STOP_SIGNALS}


def changed_handlers_put_back(before: dict[signal.Signals, Any]) -> list[str]:
    """The signals whose handler differs from ``before``'s (as "SIGTERM: x -> y"), each
    put back to ``before``'s handler where Python can install it."""
    changed = []
    for stop, handler in signal_handlers().items():
        if handler != before[stop]:
            changed.append(f"{stop.name}: {before[stop]!r} -> {handler!r}")
            if before[stop] is not None:
                signal.signal(stop, before[stop])
    return changed
