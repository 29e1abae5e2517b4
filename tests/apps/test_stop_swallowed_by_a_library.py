"""A party whose Ctrl-C or SIGTERM a library swallowed still stops with its one line and
128 + the signal (130, 143), not on a timer or never.

Left open by the stop handling of 2026-12-07: Python raises the stop's
``KeyboardInterrupt`` wherever the main thread is, and when that is inside C code's
caller (grpcio's core, sqlite3, torch) or a library's ``except BaseException`` that
drops it or turns it into its own error outside any chain, nothing was left of it. The
command's handlers kept what they took in a list of their own, looked at only when the
run ended with another exception; the runtime never looked. A server waited out its
``--wait`` and ended "did not finish" (exit 1), a branch redialled until its
``--connect-timeout`` ran out (exit 1), and a run that ended well exited 0.

Now the handlers record the stop process-wide (:mod:`secagg.transport.waiting`), the
runtime's loops raise it where they look (tests/runtime/test_stop_swallowed.py), and the
command's run ends with it whatever it ended with. The subprocess tests swallow a real
signal inside the party's wait: a wrapper prints a line as it enters the wait, the test
signals after that line, and the wrapper takes the ``KeyboardInterrupt`` and returns (the
branch's: fails the dial with an error of its own, outside the stop's chain).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _threads import BOUND, free_port
from click.testing import CliRunner

import secagg.runtime.launch
from secagg.apps import devca
from secagg.apps.cli import main
from secagg.apps.commands.parties import _sigterm_as_interrupt, _Terminated
from secagg.transport.waiting import StopAsked, forget_stop, raise_if_stop_asked, stop_asked

SIGNALS = [(signal.SIGINT, "Ctrl-C (SIGINT)"), (signal.SIGTERM, "SIGTERM")]
IDS = ["ctrl-c", "sigterm"]
in_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are installed from the main thread only",
)


@pytest.fixture(autouse=True)
def _no_stop_left() -> object:
    """No stop recorded before a test, and none left after it (the record is the
    process's, and this worker runs other parties after this test)."""
    assert forget_stop() is None, "a stop was left recorded before this test"
    yield
    assert forget_stop() is None, "the command left its stop recorded"


def _swallowed(signum: int) -> None:
    """``signum`` arrives inside a library's call, which takes it and returns: the
    handler installed now runs, as Python runs it."""
    handler = signal.getsignal(signum)
    assert callable(handler)
    try:
        handler(signum, None)
    except KeyboardInterrupt:
        return


@in_main_thread
@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=IDS)
def test_a_run_that_returns_after_a_swallowed_stop_ends_with_the_stop(
    signum: int, how: str
) -> None:
    """Before, the block's own list of stops was looked at only when the run raised
    another exception: a run that returned after a swallowed stop was a success."""
    recorded = []
    with pytest.raises(KeyboardInterrupt) as raised:
        with _sigterm_as_interrupt():
            _swallowed(signum)
            recorded.append(stop_asked())
    assert recorded == [signum]  # recorded process-wide by the handler
    assert isinstance(raised.value, _Terminated) == (signum == signal.SIGTERM)
    assert stop_asked() is None  # the record is the command's outcome now: cleared


@in_main_thread
def test_the_first_stop_is_the_outcome_whatever_stop_left_the_run() -> None:
    """A SIGTERM swallowed, then a Ctrl-C that came through: the SIGTERM's line and 143,
    as for two stops that both came through (the first stop's line is the process's)."""
    with pytest.raises(KeyboardInterrupt) as raised:
        with _sigterm_as_interrupt():
            _swallowed(signal.SIGTERM)
            raise KeyboardInterrupt
    assert isinstance(raised.value, _Terminated)


@in_main_thread
@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=IDS)
def test_the_server_command_says_a_stop_the_runtime_found_in_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, how: str
) -> None:
    """The runtime raises a stop it found in the record as StopAsked, which carries
    its signal: the command says that signal and exits 128 + it."""
    toml = tmp_path / "federation.toml"
    toml.write_text(
        '[federation]\nname = "sig"\nclients = ["branch-0", "branch-1"]\ndimension = 4\n'
        'rounds = 1\n[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{tmp_path / "state.sqlite"}"\n'
    )

    def swallowed_then_looked(config: object, **_kwargs: object) -> None:
        _swallowed(signum)  # in the server's wait for its branches
        raise_if_stop_asked()  # its loop's next look

    monkeypatch.setattr(secagg.runtime.launch, "serve", swallowed_then_looked)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init"])
    assert result.exit_code == 128 + signum, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert said == [
        f"secagg server: stopped by {how}: completed rounds are kept; no round was in flight"
    ], result.output
    assert isinstance(result.exc_info[1], SystemExit)  # type: ignore[index]


def test_a_stop_asked_is_a_keyboard_interrupt_that_names_its_signal() -> None:
    stop = StopAsked(signal.SIGTERM)
    assert isinstance(stop, KeyboardInterrupt) and stop.signum == signal.SIGTERM


# --- real signals, swallowed inside the party's wait ------------------------------------

#: the line the wrappers print as they enter the wait whose stop they swallow
ARMED = "stop-swallowing wait entered"

_SERVER_SWALLOWING = f"""
import sys
from secagg.transport.grpc_server import GrpcServerTransport
real = GrpcServerTransport.wait_for_sessions
def swallowing(self, seen, timeout):
    if seen is None:
        return real(self, seen, timeout)
    try:
        sys.stderr.write("{ARMED}\\n")
        sys.stderr.flush()
        return real(self, seen, timeout)
    except KeyboardInterrupt:  # a library's catch-all: taken, and returned
        return real(self, None, 0.0)
GrpcServerTransport.wait_for_sessions = swallowing
from secagg.apps.cli import run
run()
"""

_CLIENT_SWALLOWING = f"""
import sys
from secagg.transport.base import NotConnected
from secagg.transport.grpc_client import GrpcClientTransport
real = GrpcClientTransport.connect
def swallowing(self, timeout=10.0):
    interrupted = False
    try:
        sys.stderr.write("{ARMED}\\n")
        sys.stderr.flush()
        return real(self, timeout)
    except KeyboardInterrupt:  # a library that turns it into its own failure
        interrupted = True
    if interrupted:  # outside the except: no chain leads back to the stop
        raise NotConnected("the dial was interrupted")
GrpcClientTransport.connect = swallowing
from secagg.apps.cli import run
run()
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("swallowed") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-0")
    devca.issue_client(directory, "branch-1")
    return directory


#: the first lines of every party's program: SIGINT raises KeyboardInterrupt, as in a
#: terminal, whatever this test process left it at (a pytest-xdist worker may ignore it,
#: and an ignored SIGINT is inherited)
_SIGINT_AS_IN_A_TERMINAL = (
    "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
)


def _start(code: str, args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The party under ``code``, with SIGINT at its default as in a terminal.

    Set by the child's own first lines, not by a ``preexec_fn``: a ``preexec_fn`` makes
    the child a plain fork() of this multi-threaded test process, which runs gRPC's fork
    handlers in it before the exec, and once (a fresh-clone CI under load) the child
    aborted there ("epoll_wait error: Bad file descriptor", status -6) before running
    any of the party's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return subprocess.Popen(  # this interpreter, our own arguments
        [sys.executable, "-c", _SIGINT_AS_IN_A_TERMINAL + code, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signalled_once_armed(process: subprocess.Popen[str], signum: int) -> list[str]:
    """Signal ``process`` once it printed :data:`ARMED`; its stderr lines once it ended
    (killed, by its own id, past the bound)."""
    lines: list[str] = []
    armed = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if ARMED in line:
                armed.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        assert armed.wait(BOUND), "".join(lines)
        process.send_signal(signum)
        process.wait(timeout=BOUND)
        reader.join(timeout=BOUND)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return lines


pytest_integration = pytest.mark.integration


@pytest_integration
@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=IDS)
def test_the_server_stops_on_a_signal_swallowed_in_its_wait_for_branches(
    tmp_path: Path, certs: Path, signum: int, how: str
) -> None:
    """Before: it waited out its --wait (5 s) and quorum wait, then ended "did not
    finish", exit 1."""
    toml = tmp_path / "federation.toml"
    toml.write_text(
        '[federation]\nname = "sig"\nclients = ["branch-0", "branch-1"]\ndimension = 4\n'
        'rounds = 1\n[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{tmp_path / "state.sqlite"}"\n'
        f'bind = "127.0.0.1:{free_port()}"\ncertificates = "{certs}"\n'
        "quorum_wait_seconds = 1\n"
    )
    server = _start(
        _SERVER_SWALLOWING, ["server", "--config", str(toml), "--init", "--wait", "5"], tmp_path
    )
    lines = _signalled_once_armed(server, signum)
    text = "".join(lines)
    assert server.returncode == 128 + signum, text
    assert "Traceback" not in text
    said = [line for line in lines if line.startswith("secagg server:")]
    assert said == [
        f"secagg server: stopped by {how}: completed rounds are kept; no round was in flight\n"
    ], text
    assert sum(ARMED in line for line in lines) == 1, text  # no wait after the stop


@pytest_integration
@pytest.mark.parametrize(("signum", "how"), SIGNALS, ids=IDS)
def test_a_branch_stops_on_a_signal_its_dial_swallowed(
    tmp_path: Path, certs: Path, signum: int, how: str
) -> None:
    """Before: the failed dial was redialled until --connect-timeout ran out (the stop
    was said only then, by the command's net under any failure after a stop; with the
    default of 30 s, or after a lost session, 600 s, a service manager's stop timeout
    has run out first). Now no dial follows the stop."""
    with socket.socket() as held:  # a port that accepts TCP and never speaks TLS
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = int(held.getsockname()[1])
        branch = _start(
            _CLIENT_SWALLOWING,
            [
                "client",
                "--server",
                f"127.0.0.1:{port}",
                "--name",
                "branch-0",
                "--certs",
                str(certs),
                "--dimension",
                "4",
                "--connect-timeout",
                "5",
            ],
            tmp_path,
        )
        lines = _signalled_once_armed(branch, signum)
    text = "".join(lines)
    assert branch.returncode == 128 + signum, text
    assert "Traceback" not in text
    said = [line for line in lines if line.startswith("secagg client:")]
    assert len(said) == 1, text
    assert said[0].startswith(f"secagg client: branch-0: stopped by {how}: nothing more"), text
    assert sum(ARMED in line for line in lines) == 1, text  # no dial after the stop
