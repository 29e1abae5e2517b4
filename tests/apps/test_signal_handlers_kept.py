"""The check of tests/apps/conftest.py: a SIGINT or SIGTERM handler a test or a module's
fixture leaves changed is named and put back (a run that kept Ray's SIGTERM handler
turned a SIGTERM into one test's failure and went on)."""

from __future__ import annotations

import signal
import sys

from _signals import changed_handlers_put_back, signal_handlers


def _exit_on_stop(signum: int, frame: object) -> None:  # Ray's kind of handler
    sys.exit(signum)


def test_a_handler_left_behind_is_named_and_put_back() -> None:
    before = signal_handlers()
    signal.signal(signal.SIGTERM, _exit_on_stop)
    try:
        changed = changed_handlers_put_back(before)
        assert len(changed) == 1 and changed[0].startswith("SIGTERM: "), changed
        assert "_exit_on_stop" in changed[0]
        assert signal_handlers() == before
    finally:
        signal.signal(signal.SIGTERM, before[signal.SIGTERM])


def test_an_ignored_ctrl_c_left_behind_is_named_and_put_back() -> None:
    before = signal_handlers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        (changed,) = changed_handlers_put_back(before)
        assert changed.startswith("SIGINT: ") and "SIG_IGN" in changed
        assert signal.getsignal(signal.SIGINT) == before[signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before[signal.SIGINT])


def test_handlers_as_found_are_not_reported() -> None:
    assert changed_handlers_put_back(signal_handlers()) == []
