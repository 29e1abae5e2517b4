"""A second Ctrl-C or SIGTERM while ``secagg server`` says why it stopped leaves the first
stop's one line and status, not click's ``Aborted!`` (exit 1) or a death without a line.

Found in the review of ec2a673c (2026-12-07). The stop's line is worked out after the
command's signal handlers were put back (``_sigterm_as_interrupt`` has exited): the
server reads its state to say whether a round was in flight. An operator who pressed
Ctrl-C twice had the second come there as Python's own KeyboardInterrupt, raised out of
the command's ``except`` clause: click printed ``Aborted!`` and the status was 1; a
second SIGTERM (a service manager that stops again) found the default handler and ended
the process with no line at all.

The second signal is taken as Python takes it, by calling the handler installed at that
moment, from inside the state read; a default SIGTERM (which would end the process) is
reported as such. The first stop is the serve call's KeyboardInterrupt, as in
tests/apps/test_cli_signals.py.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import secagg.runtime.launch
import secagg.runtime.store
from secagg.apps.cli import main
from secagg.apps.commands.parties import _Terminated

pytestmark = pytest.mark.skipif(
    __import__("threading").current_thread() is not __import__("threading").main_thread(),
    reason="signal handlers are installed from the main thread only",
)


def _signal_arrives(signum: int) -> None:
    """What Python does when ``signum`` arrives here: runs the handler installed now."""
    handler = signal.getsignal(signum)
    if handler is signal.SIG_IGN:
        return
    if handler is signal.SIG_DFL:
        pytest.fail(f"{signal.Signals(signum).name} at its default: the process ends here")
    assert callable(handler)
    handler(signum, None)


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_stop_while_the_server_says_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: int, second: int
) -> None:
    toml = tmp_path / "federation.toml"
    toml.write_text(
        '[federation]\nname = "sig"\nclients = ["branch-0", "branch-1"]\ndimension = 4\n'
        'rounds = 1\n[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{tmp_path / "state.sqlite"}"\nbind = "127.0.0.1:0"\n'
        f'certificates = "{tmp_path / "certs"}"\n'
    )

    def stopped(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt if first == signal.SIGINT else _Terminated(first)

    read_state = secagg.runtime.store.rounds_in_flight

    def read_with_a_second_stop(path: str) -> list[int] | None:
        _signal_arrives(second)
        return read_state(path)

    monkeypatch.setattr(secagg.runtime.launch, "serve", stopped)
    monkeypatch.setattr(secagg.runtime.store, "rounds_in_flight", read_with_a_second_stop)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init"])
    how = "Ctrl-C (SIGINT)" if first == signal.SIGINT else "SIGTERM"
    assert "Aborted!" not in result.output
    assert result.exit_code == 128 + first, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert said == [
        f"secagg server: stopped by {how}: completed rounds are kept; no round was in flight"
    ], result.output
