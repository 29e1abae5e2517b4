"""Ctrl-C and SIGTERM on the long-running parties: one line naming the signal and what is
kept, exit status 128 + the signal's number, no traceback.

Operator pass of 2026-12-04: ``systemctl stop`` (SIGTERM) ended ``secagg server`` and
``secagg client`` silently (status -15), and Ctrl-C on a branch printed click's bare
``Aborted!`` with status 1. Each test runs the real command in its own process (the
signal must reach a real main thread), waits for an event that shows the party is in
its long wait (the server's ``listening`` line; the branch's TCP connection reaching a
socket this test holds), then signals it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND, free_port

from secagg.apps import devca
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state

pytestmark = pytest.mark.integration

#: SIGINT raises KeyboardInterrupt as in a terminal (a background job of a non-interactive
#: shell, or a pytest-xdist worker, would pass it on ignored), set by the program's own
#: first line rather than a ``preexec_fn``: a ``preexec_fn`` makes the child a plain fork()
#: of the multi-threaded test process, which runs gRPC's fork handlers in it before the
#: exec (a child aborted there once: "epoll_wait error: Bad file descriptor", status -6)
_RUN = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from secagg.apps.cli import run; run()"
)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", _RUN, *args]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The command (:func:`_command`: SIGINT at its default, as in a terminal)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _watch(stream: object, seen: list[str], marker: str, event: threading.Event) -> None:
    for line in stream:  # type: ignore[attr-defined]
        seen.append(line)
        if marker in line:
            event.set()


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[int, list[str]]:
    """Signal it; its status and its lines on stderr that name a secagg party."""
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=BOUND)
    return process.returncode, stderr.splitlines()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("signals") / "certs"
    devca.init_ca(directory)
    for name in ("branch-0", "branch-1"):
        devca.issue_client(directory, name)
    return directory


def _toml(directory: Path, certs: Path, port: int) -> Path:
    path = directory / "federation.toml"
    path.write_text(
        '[federation]\nname = "sig"\nclients = ["branch-0", "branch-1"]\ndimension = 4\n'
        'rounds = 1\n[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{directory / "state.sqlite"}"\nbind = "127.0.0.1:{port}"\n'
        f'certificates = "{certs}"\n'
    )
    return path


@pytest.mark.parametrize(
    ("signum", "how"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_the_server_stopped_while_waiting_says_so_in_one_line(
    tmp_path: Path, certs: Path, signum: int, how: str
) -> None:
    toml = _toml(tmp_path, certs, free_port())
    server = _start(_command("server", "--config", str(toml), "--init", "--wait", "600"), tmp_path)
    lines: list[str] = []
    listening = threading.Event()
    assert server.stderr is not None
    reader = threading.Thread(
        target=_watch, args=(server.stderr, lines, "listening on", listening), daemon=True
    )
    reader.start()
    try:
        assert listening.wait(BOUND), "".join(lines)
        server.send_signal(signum)
        server.wait(timeout=BOUND)
        reader.join(timeout=BOUND)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 128 + signum, "".join(lines)
    text = "".join(lines)
    assert "Traceback" not in text
    said = [line for line in lines if line.startswith("secagg server:")]
    assert said == [
        f"secagg server: stopped by {how}{' (SIGINT)' if how == 'Ctrl-C' else ''}: completed "
        "rounds are kept; no round was in flight\n"
    ], text
    # nothing lost: the state it made opens again, its lock released, as a federation
    state = open_server_state(FederationConfig.load(toml), init=True)
    try:
        assert state.store.round_numbers() == {}
    finally:
        state.close()


@pytest.mark.parametrize(
    ("signum", "how"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_a_branch_stopped_while_dialling_says_so_in_one_line(
    tmp_path: Path, certs: Path, signum: int, how: str
) -> None:
    with socket.socket() as held:  # a port that accepts TCP and never speaks TLS
        held.bind(("127.0.0.1", 0))
        held.listen()
        held.settimeout(BOUND)
        port = int(held.getsockname()[1])
        branch = _start(
            _command(
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
                "600",
            ),
            tmp_path,
        )
        try:
            connection, _ = held.accept()  # the branch is in its dial
            connection.close()
            status, lines = _stop(branch, signum)
        finally:
            if branch.poll() is None:
                branch.kill()
    assert status == 128 + signum, lines
    assert not any("Traceback" in line or line == "Aborted!" for line in lines), "\n".join(lines)
    said = [line for line in lines if line.startswith("secagg client:")]
    assert len(said) == 1, lines
    assert said[0].startswith(f"secagg client: branch-0: stopped by {how}"), said
    assert "a round in flight goes on without it" in said[0]


@pytest.mark.parametrize("running", [False, True])
def test_the_server_stop_line_names_a_round_in_flight_only_when_there_was_one(
    tmp_path: Path, certs: Path, monkeypatch: pytest.MonkeyPatch, running: bool
) -> None:
    """A server stopped while waiting for its branches said "a round in flight is
    recorded as aborted at the next start": there was none. The line is read from the
    state: a round left running (which the next start records as aborted) is named,
    and otherwise it says no round was in flight."""
    from click.testing import CliRunner

    import secagg.runtime.launch
    from secagg.apps.cli import main
    from secagg.runtime.store import ServerStore

    toml = _toml(tmp_path, certs, free_port())
    config = FederationConfig.load(toml)

    def interrupted(config: FederationConfig, **_kwargs: object) -> None:
        store = ServerStore(config.server.state)
        try:
            store.begin_round(1, ["branch-0", "branch-1"])
            store.complete_round(1, {}, np.zeros(4))
            if running:
                store.begin_round(2, ["branch-0", "branch-1"])
        finally:
            store.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(secagg.runtime.launch, "serve", interrupted)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init"])
    assert result.exit_code == 128 + signal.SIGINT, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    tail = (
        "round 2 was in flight and is recorded as aborted at the next start"
        if running
        else "no round was in flight"
    )
    assert said == [
        f"secagg server: stopped by Ctrl-C (SIGINT): completed rounds are kept; {tail}"
    ], result.output
    assert Path(config.server.state).exists()
