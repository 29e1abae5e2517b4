"""A party stopped by Ctrl-C or SIGTERM while it starts (its imports, its checks, its
training hook's import) says so in one line with 128 + the signal, as it does once it
runs.

Found by tools/stop_stress.py --mode server-start (2026-12-07, the review of ec2a673c):
of 40 ``secagg server`` processes signalled 0-2 s after they started, 3 stopped by
Ctrl-C printed click's ``Aborted!`` and exited 1, and every SIGTERM before the server
opened its state ended the process with no line: the command's handlers
(``_sigterm_as_interrupt``) were installed only around the run itself. A branch's
``--hook`` import (torch: seconds) was such a window too for SIGTERM. (A stop during
Python's own imports of the CLI, before any command runs, is Python's: a traceback.)

The signal is taken as Python takes it: the handler installed at that moment is called
from inside the step the test replaces; a default SIGTERM, which ends the process on
the spot, is reported as such.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import secagg.apps.commands.client
import secagg.apps.commands.keyholder
import secagg.runtime.config
import secagg.runtime.launch
from secagg.apps.cli import main

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are installed from the main thread only",
)

SIGNALS = [(signal.SIGINT, "Ctrl-C (SIGINT)"), (signal.SIGTERM, "SIGTERM")]


def _signal_arrives(signum: int) -> None:
    """What Python does when ``signum`` arrives here: runs the handler installed now."""
    handler = signal.getsignal(signum)
    if handler is signal.SIG_DFL:
        pytest.fail(f"{signal.Signals(signum).name} at its default: the process ends here")
    assert callable(handler)
    handler(signum, None)


def _one_line(result: object, party: str) -> list[str]:
    stderr = result.stderr  # type: ignore[attr-defined]
    return [line for line in stderr.splitlines() if line.startswith(f"secagg {party}:")]


@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=["ctrl-c", "sigterm"])
def test_the_server_stopped_as_it_reads_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, how: str
) -> None:
    toml = tmp_path / "federation.toml"
    toml.write_text("[federation]\n")  # never read: the stop comes first

    def load(*_args: object, **_kwargs: object) -> None:
        _signal_arrives(signum)

    monkeypatch.setattr(secagg.runtime.config.FederationConfig, "load", load)
    result = CliRunner().invoke(main, ["server", "--config", str(toml)])
    assert "Aborted!" not in result.output
    assert result.exit_code == 128 + signum, result.output
    assert _one_line(result, "server") == [
        f"secagg server: stopped by {how}: it had not started; nothing was changed"
    ], result.output
    assert not (tmp_path / "state.sqlite").exists()


@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=["ctrl-c", "sigterm"])
def test_a_branch_stopped_before_its_checks(
    monkeypatch: pytest.MonkeyPatch, signum: int, how: str
) -> None:
    def refuse(*_args: object) -> None:
        _signal_arrives(signum)

    monkeypatch.setattr(secagg.apps.commands.client, "_refuse_special_certificates", refuse)
    args = ["client", "--server", "127.0.0.1:1", "--name", "branch-0", "--dimension", "4"]
    result = CliRunner().invoke(main, args)
    assert "Aborted!" not in result.output
    assert result.exit_code == 128 + signum, result.output
    assert _one_line(result, "client") == [
        f"secagg client: branch-0: stopped by {how}: it had not started; nothing was changed"
    ], result.output


def test_a_branch_stopped_by_sigterm_as_it_imports_its_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hook's import (torch, seconds) ran with SIGTERM at its default."""

    def load_hook(*_args: object) -> None:
        _signal_arrives(signal.SIGTERM)

    monkeypatch.setattr(secagg.runtime.launch, "load_hook", load_hook)
    args = ["client", "--server", "127.0.0.1:1", "--name", "branch-0", "--dimension", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    said = _one_line(result, "client")
    assert len(said) == 1 and said[0].startswith("secagg client: branch-0: stopped by SIGTERM")


@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=["ctrl-c", "sigterm"])
def test_a_key_holder_stopped_before_its_checks(
    monkeypatch: pytest.MonkeyPatch, signum: int, how: str
) -> None:
    def agrees(*_args: object) -> None:
        _signal_arrives(signum)

    monkeypatch.setattr(secagg.apps.commands.keyholder, "_check_backend_agrees", agrees)
    args = ["keyholder", "--server", "127.0.0.1:1", "--name", "key-holder"]
    result = CliRunner().invoke(main, args)
    assert "Aborted!" not in result.output
    assert result.exit_code == 128 + signum, result.output
    assert _one_line(result, "keyholder") == [
        f"secagg keyholder: key-holder: stopped by {how}: it had not started; nothing was changed"
    ], result.output


@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=["ctrl-c", "sigterm"])
def test_a_branch_whose_hook_wraps_the_stop_as_it_imports_says_the_stop(
    monkeypatch: pytest.MonkeyPatch, signum: int, how: str
) -> None:
    """The hook's module wrapped what stopped its import in its own error (``raise
    ImportError(...) from exc``): the branch said "--hook demo failed: ImportError" with exit
    2, a set-up mistake, and the Ctrl-C or SIGTERM was lost (second review of the stop
    handling, 2026-12-07)."""

    def load_hook(*_args: object) -> None:
        try:
            _signal_arrives(signum)
        except KeyboardInterrupt as exc:
            raise ImportError("the model's weights could not be loaded") from exc

    monkeypatch.setattr(secagg.runtime.launch, "load_hook", load_hook)
    args = ["client", "--server", "127.0.0.1:1", "--name", "branch-0", "--dimension", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 128 + signum, result.output
    said = _one_line(result, "client")
    assert len(said) == 1 and said[0].startswith(f"secagg client: branch-0: stopped by {how}: ")
