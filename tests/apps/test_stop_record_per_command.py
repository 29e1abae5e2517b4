"""The process's stop record (:mod:`secagg.transport.waiting`) is the business of the
command that recorded it: a party's command clears it as it ends, and clears nothing
else's.

Second review of the stop record (2b54e5e6, 2026-12-07). The record is process-wide;
``_stop_said_while_starting`` cleared it in its ``finally`` on every exit:

* from whatever thread the command ran in. A command run off the main thread (click's
  ``CliRunner`` in a thread, a library user running two parties in one process) installs
  no handler and records nothing, but as it ended it cleared a stop the main thread's
  handler had recorded for the party running there: a stop swallowed in that party's C
  call was lost again, and the WARNING naming it was this other command's line;
* while its own SIGTERM handler (which records) was still installed: a SIGTERM in the
  few bytecodes between that clear and the handler's restoring was recorded after the
  clear, and outlived the command (every later party of the process stopped at its
  first look).
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from _threads import BOUND
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.apps.commands.parties as parties
from secagg.apps.cli import main
from secagg.transport.waiting import ask_stop, forget_stop, stop_asked

in_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are installed from the main thread only",
)


def _server_with_a_missing_config(tmp_path: Path) -> list[str]:
    """A ``secagg server`` command that runs through its wrapper and ends at once (exit 2:
    the config file is not TOML)."""
    config = tmp_path / "federation.toml"
    config.write_text("not = [toml\n")
    return ["server", "--config", str(config)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_command_in_another_thread_leaves_the_main_threads_stop_recorded(
    tmp_path: Path, signum: int
) -> None:
    """Before: the thread's command cleared the main thread's stop (None after it)."""
    ask_stop(signum)  # the main thread's handler recorded it; a library took its exception
    try:
        results: list[Result] = []
        worker = threading.Thread(
            target=lambda: results.append(
                CliRunner().invoke(main, _server_with_a_missing_config(tmp_path))
            ),
            name="another-party",
        )
        worker.start()
        worker.join(BOUND)
        assert not worker.is_alive()
        assert results[0].exit_code == 2, results[0].output
        assert stop_asked() == signum  # still the main thread's party's stop
    finally:
        forget_stop()


@in_main_thread
def test_a_sigterm_as_the_command_ends_is_not_left_recorded(tmp_path: Path) -> None:
    """A SIGTERM that comes as the command's wrapper leaves (its SIGTERM handler still
    installed, the run's record already cleared) outlives nothing. Before: it was recorded
    after the clear, and the process's record held SIGTERM after the command."""
    taken: list[int] = []

    def previous(signum: int, frame: object) -> None:
        del frame
        taken.append(signum)

    def deliver_as_the_handler_is_put_back(frame: FrameType, event: str, arg: Any) -> None:
        del arg
        # the wrapper's handler's context manager, entered (its first call) and resumed
        # to put its handler back (its second): the signal arrives there, before the
        # handler is restored
        if event == "call" and frame.f_code is parties._sigterm_raised.__wrapped__.__code__:
            calls.append(frame.f_lasti)
            if len(calls) == 2:
                signal.raise_signal(signal.SIGTERM)

    calls: list[int] = []
    before = signal.signal(signal.SIGTERM, previous)
    try:
        sys.setprofile(deliver_as_the_handler_is_put_back)
        try:
            result = CliRunner().invoke(main, _server_with_a_missing_config(tmp_path))
        finally:
            sys.setprofile(None)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert len(calls) == 2  # the injection ran
    left = forget_stop()
    assert left is None, f"{signal.Signals(left).name} outlived the command ({result.output})"


@in_main_thread
@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([None, signal.SIGINT, signal.SIGTERM])),
        min_size=1,
        max_size=5,
    )
)
def test_each_command_clears_only_its_own_threads_record(
    runs: list[tuple[bool, int | None]],
) -> None:
    """Any sequence of commands, each in the main thread or another, each with a stop
    recorded before it or not (the main thread's handler's, its exception swallowed):
    a command in the main thread leaves the record empty; one in another thread leaves it
    as it found it."""
    with tempfile.TemporaryDirectory() as folder:
        args = _server_with_a_missing_config(Path(folder))
        try:
            for in_main, recorded in runs:
                forget_stop()
                if recorded is not None:
                    ask_stop(recorded)
                results: list[Result] = []

                def invoke(results: list[Result] = results) -> None:
                    results.append(CliRunner().invoke(main, args))

                if in_main:
                    invoke()
                else:
                    worker = threading.Thread(target=invoke, name="another-party")
                    worker.start()
                    worker.join(BOUND)
                    assert not worker.is_alive()
                assert results[0].exit_code == 2, results[0].output
                assert stop_asked() == (None if in_main else recorded)
        finally:
            forget_stop()


def _signal_arrives(signum: int) -> None:
    """What Python does when ``signum`` arrives here: runs the handler installed now."""
    handler = signal.getsignal(signum)
    if handler is signal.SIG_IGN:
        return
    if handler is signal.SIG_DFL:
        pytest.fail(f"{signal.Signals(signum).name} at its default: the process ends here")
    assert callable(handler)
    handler(signum, None)


@in_main_thread
@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_stop_as_the_command_begins_to_say_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: int, second: int
) -> None:
    """The run's stop has left its block (its handlers put back, its record cleared) and
    the command is about to say it (``_stopped``, which ignores further stops, not yet
    entered) when a second stop comes. Before: the second, taken by the handler then
    installed (the wrapper's SIGTERM handler, Python's Ctrl-C), left the command's
    ``except`` clause and the wrapper said it: "stopped by <the second>: its run had
    ended (its summary was not printed)", exit 128 + the second. The first stop's line
    and status are the process's."""
    toml = tmp_path / "federation.toml"
    toml.write_text(
        '[federation]\nname = "sig"\nclients = ["branch-0", "branch-1"]\ndimension = 4\n'
        'rounds = 1\n[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{tmp_path / "state.sqlite"}"\n'
    )
    import secagg.apps.commands.server as server_command
    import secagg.runtime.launch

    def stopped(*_args: object, **_kwargs: object) -> None:
        _signal_arrives(first)  # the run's handler: recorded, and raised

    real_stopped = server_command._stopped

    def said_with_a_second_stop(*args: Any, **kwargs: Any) -> Any:
        _signal_arrives(second)
        return real_stopped(*args, **kwargs)

    monkeypatch.setattr(secagg.runtime.launch, "serve", stopped)
    monkeypatch.setattr(server_command, "_stopped", said_with_a_second_stop)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init"])
    how = "Ctrl-C (SIGINT)" if first == signal.SIGINT else "SIGTERM"
    assert result.exit_code == 128 + first, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert said == [
        f"secagg server: stopped by {how}: completed rounds are kept; no round was in flight"
    ], result.output
