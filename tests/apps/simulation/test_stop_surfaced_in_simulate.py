"""``secagg simulate`` stopped by a signal that surfaced as another exception (a stdlib
condition's ``with`` releasing a lock its interrupted wait gave back, a library that
wraps what it caught) marks its run folder aborted, not failed as well.

Found in the second review of the stop handling (2026-12-07): the run's guards are
nested, the failure's inside the stop's, and the failure's took any ``Exception``: it
wrote a ``FAILED`` file naming the surfaced error as the run's cause ("This simulation
failed ...: cannot release un-acquired lock"), then the stop's guard wrote ``ABORTED``
beside it, so the folder said two things and an auditor read a machine failure that
never was. A real error on the way out of a stop (a disk error as the ledger closes) is
said in the stop's line, as the parties log it.

In-process: the guards are called as ``simulate`` nests them, the signal taken as Python
takes it (the installed handler called from inside the block); no other thread may look
alive, or the guard leaves with ``os._exit``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from secagg.apps.simulation import cli

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are installed from the main thread only",
)


def _guarded_run(run: Path, body: object) -> SystemExit:
    """Run ``body`` under simulate's guards; the SystemExit they end with."""
    with pytest.raises(SystemExit) as ended:
        with (
            cli._marked_aborted_if_stopped(run),
            cli._marked_failed_if_it_fails(run),
            cli._no_empty_folder_left(run),
        ):
            (run / "ledger.sqlite").write_text("rounds done so far")
            body()  # type: ignore[operator]
    return ended.value


@pytest.fixture(autouse=True)
def _no_other_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "enumerate", lambda: [threading.main_thread()])

    def never(code: int) -> None:
        raise AssertionError(f"os._exit({code}) in a test")

    monkeypatch.setattr(os, "_exit", never)


def _sigterm_surfaced_as(error: Exception) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    try:
        handler(signal.SIGTERM, None)
    except BaseException:
        raise error from None


def test_a_stop_that_surfaced_as_another_error_marks_the_run_aborted_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    ended = _guarded_run(
        run, lambda: _sigterm_surfaced_as(RuntimeError("cannot release un-acquired lock"))
    )
    assert ended.code == 128 + signal.SIGTERM
    assert (run / cli.ABORTED_FILE).exists()
    assert not (run / cli.FAILED_FILE).exists()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: stopped by SIGTERM"), lines


def test_a_disk_error_on_the_way_out_of_a_stop_is_said_in_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()

    def closing_on_a_full_disk() -> None:
        try:
            _sigterm_surfaced_as(RuntimeError("cannot release un-acquired lock"))
        finally:
            raise OSError(28, "No space left on device", str(run / "ledger.sqlite"))

    ended = _guarded_run(run, closing_on_a_full_disk)
    assert ended.code == 128 + signal.SIGTERM
    assert (run / cli.ABORTED_FILE).exists() and not (run / cli.FAILED_FILE).exists()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: stopped by SIGTERM"), lines
    assert "No space left on device" in lines[0], lines


def test_a_sigterm_handler_not_installed_from_python_leaves_the_rest_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedding program whose SIGTERM handler was installed by C (Python reports it
    as None): the guard took None for "no handler installed here" and put nothing back,
    leaving its Ctrl-C handler and its unraisable hook in the program after the run."""
    import sys

    real_signal = signal.signal
    own = signal.getsignal(signal.SIGTERM)
    hook = sys.unraisablehook
    calls: list[int] = []

    def installed_by_c(signum: int, handler: object) -> object:
        previous = real_signal(signum, handler)  # type: ignore[arg-type]
        calls.append(signum)
        return None if signum == signal.SIGTERM and calls.count(signum) == 1 else previous

    monkeypatch.setattr(signal, "signal", installed_by_c)
    run = tmp_path / "run"
    run.mkdir()
    try:
        with cli._marked_aborted_if_stopped(run):
            (run / "summary.json").write_text("{}")  # a run that ended well
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert sys.unraisablehook is hook
    finally:
        real_signal(signal.SIGTERM, own)
        real_signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = hook
