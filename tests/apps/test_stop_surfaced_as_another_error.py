"""A party stopped by Ctrl-C or SIGTERM says so in one line even when the stop surfaced
as another exception (secagg.apps.commands.parties._sigterm_as_interrupt).

Found by the project's CI (2026-12-07): ``secagg server`` stopped by Ctrl-C while it
waited for branches exited 1 with ``RuntimeError: cannot release un-acquired lock``
(the interrupt came inside a condition's wait, whose ``with`` then released a lock it
no longer held). The transport's own waits now keep the interrupt
(tests/transport/test_waiting.py); this is the net under every other wait (a stdlib
queue or event, a library's).

The handlers are called as Python calls them, in the main thread, so no signal has to
cross a test runner's worker.
"""

from __future__ import annotations

import signal
import threading

import pytest

from secagg.apps.commands.parties import _sigterm_as_interrupt, _Terminated

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are installed from the main thread only",
)


def _lock_error_while_stopping(signum: int) -> None:
    """Take ``signum`` as its handler does, then lose its exception as the CI did."""
    handler = signal.getsignal(signum)
    assert callable(handler)
    try:
        handler(signum, None)
    except KeyboardInterrupt:
        raise RuntimeError("cannot release un-acquired lock") from None


def test_ctrl_c_surfaced_as_a_lock_error_is_still_ctrl_c() -> None:
    with pytest.raises(KeyboardInterrupt) as raised:
        with _sigterm_as_interrupt():
            _lock_error_while_stopping(signal.SIGINT)
    assert not isinstance(raised.value, _Terminated)


def test_sigterm_surfaced_as_another_error_is_still_sigterm() -> None:
    with pytest.raises(_Terminated) as raised:
        with _sigterm_as_interrupt():
            _lock_error_while_stopping(signal.SIGTERM)
    assert raised.value.signum == signal.SIGTERM


def test_a_stop_the_code_caught_and_a_later_failure() -> None:
    """Any failure after a stop was taken is the stop's doing: the stop is said."""
    with pytest.raises(_Terminated):
        with _sigterm_as_interrupt():
            try:
                signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
            except KeyboardInterrupt:
                pass
            raise OSError("the state file went away as it was closed")


def test_without_a_stop_an_error_stays_itself() -> None:
    with pytest.raises(RuntimeError, match="un-acquired"):
        with _sigterm_as_interrupt():
            raise RuntimeError("cannot release un-acquired lock")


def test_the_handlers_are_put_back_and_an_ignored_ctrl_c_stays_ignored() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with _sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGINT) is not before[0]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before[0])
