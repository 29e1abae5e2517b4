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

import logging
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


def test_a_sigterm_handler_not_installed_from_python_leaves_the_stop_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An embedding program whose SIGTERM handler was installed by C: Python reports it
    as None, which ``signal.signal`` cannot put back. The block's ``finally`` tried,
    and its TypeError replaced the stop (a traceback, not the party's one line), or
    came out of a run that had ended well."""
    real_signal = signal.signal
    own = signal.getsignal(signal.SIGTERM)
    calls: list[int] = []

    def installed_by_c(signum: int, handler: object) -> object:
        previous = real_signal(signum, handler)  # type: ignore[arg-type]
        calls.append(signum)
        return None if signum == signal.SIGTERM and calls.count(signum) == 1 else previous

    monkeypatch.setattr(signal, "signal", installed_by_c)
    try:
        with pytest.raises(_Terminated):
            with _sigterm_as_interrupt():
                _lock_error_while_stopping(signal.SIGTERM)
        calls.clear()
        with _sigterm_as_interrupt():
            pass  # a run that ended well ends well
    finally:
        real_signal(signal.SIGTERM, own)


def test_a_failure_the_stop_is_said_over_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A real failure on the way out of a stopped run (a disk error as the state closes)
    is turned into the stop, whose line and status are the process's; the failure itself
    was only a DEBUG record, which no party logs by default: the operator never learnt
    that the state's close failed. It is one WARNING line now."""
    with caplog.at_level(logging.INFO), pytest.raises(_Terminated):
        with _sigterm_as_interrupt():
            try:
                _lock_error_while_stopping(signal.SIGTERM)
            finally:
                raise OSError(28, "No space left on device")
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, caplog.text
    assert "SIGTERM" in said[0].getMessage()
    assert "OSError" in said[0].getMessage() and "No space left" in said[0].getMessage()
