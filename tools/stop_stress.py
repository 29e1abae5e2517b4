"""Stop the long-running parties by Ctrl-C or SIGTERM at random moments, many times.

Why: a stop is taken wherever the main thread is, and a few bytecodes decide whether it
arrives as itself (one line, 128 + the signal) or as another error (the CI of
2026-12-07: ``RuntimeError: cannot release un-acquired lock``, exit 1). One test run
hits one moment; this tool hits many, on a tiny federation, one process at a time.

Modes (``--mode``):

* ``server-wait``: ``secagg server --init`` waiting for its branches; the signal comes
  0-300 ms (``--spread``) after its "listening on" line. Then the state must open again.
* ``server-round``: the same server with two ``secagg client`` branches running rounds;
  the signal comes 0-300 ms after its first "round 1 complete" line. Then the server
  is started again (no ``--init``) and the federation must complete, the branches
  finishing with it.
* ``client-round``: branch-0 is signalled 0-300 ms after the server's first round
  ended; it is started again with its ``--state`` and the federation must complete.
* ``server-start``: the signal comes 0-``--spread`` s after the server's process
  started (imports, the state's creation, the bind: any moment). The state must open
  again or, when none was made, no new federation is half made.

With ``--inject`` (not ``server-start``) the party is not signalled from outside: it
calls its own handler at a random point of its main thread after the arming line (see
:data:`_INJECTING_RUN`), where a real signal's handler could run. A real signal almost
always finds the main thread blocked in a wait, where the handler runs inside the
lock's acquire; the injection reaches the bytecodes in between too.

With ``--swallow`` (implies ``--inject``) the injected handler's ``KeyboardInterrupt``
is taken and dropped where it came, as a library's ``except BaseException`` (or C
code's caller: grpcio, sqlite3, torch) may drop it: the party must still stop, by the
stop its handler recorded (:mod:`secagg.transport.waiting`), which its loops look at.

Every stopped party must exit 128 + the signal (or be ended by the signal itself, during
Python's imports before any command runs: ``server-start`` only), print exactly one
``secagg <party>:`` line and no traceback. Usage::

    PYTHONPATH=. python tools/stop_stress.py --mode server-wait --runs 50
    PYTHONPATH=. python tools/stop_stress.py --mode server-round --inject --runs 40
    PYTHONPATH=. python tools/stop_stress.py --mode client-round --swallow --runs 20

Kept because the CI failure it chases is one in thousands of moments: run it after a
change to a party's stop handling or to a wait of its main thread (a run of 40 rounds
takes 5-8 s, one process at a time). Results of 2026-12-07 in helper-291's report.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: every party's program begins with SIGINT raising KeyboardInterrupt, as in a terminal,
#: set by its own first line: a ``preexec_fn`` would fork this process plainly and run
#: gRPC's fork handlers in the child before the exec
_SIGINT_AS_IN_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
)
_RUN = "from secagg.apps.cli import run; run()"
#: ``--inject``: the party runs with a profile function in its main thread that, once a
#: log line holding STOP_ARM_ON was logged there, counts the points where Python runs a
#: signal's handler (a function's entry, a C call's return) and at the STOP_AT_EVENT-th
#: calls the handler of STOP_SIGNAL that the party installed, as Python would there.
#: A real signal almost always lands in a blocking wait (the handler runs inside the
#: lock's acquire); this reaches the few bytecodes between, where the CI's stop was lost.
_INJECTING_RUN = """
import logging, os, signal, sys, threading
at, signum = int(os.environ["STOP_AT_EVENT"]), int(os.environ["STOP_SIGNAL"])
mark = os.environ["STOP_ARM_ON"]
swallow = os.environ.get("STOP_SWALLOW") == "1"
count = [0]
def profile(frame, event, arg):
    if event != "call" and event != "c_return":
        return
    count[0] += 1
    if count[0] >= at:
        sys.setprofile(None)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
        sys.stderr.write(f"stop-stress: injected at {event} {count[0]}: {where}\\n")
        handler = signal.getsignal(signum)
        if swallow:  # a library's catch-all drops the stop where it came
            try:
                if callable(handler):
                    handler(signum, frame)
            except KeyboardInterrupt:
                sys.stderr.write("stop-stress: swallowed\\n")
            return
        if callable(handler):
            handler(signum, frame)
        os.kill(os.getpid(), signum)
class Arm(logging.Handler):
    armed = False
    def emit(self, record):
        main = threading.current_thread() is threading.main_thread()
        if not self.armed and main and mark in record.getMessage():
            self.armed = True
            sys.setprofile(profile)
logging.getLogger("secagg").addHandler(Arm())
from secagg.apps.cli import run
run()
"""
#: seconds: the bound of every wait on a party (a busy machine is slow, never this slow)
BOUND = 90.0


@dataclass
class Tally:
    """The outcomes of the runs: counts by outcome, and the first evidence of each failure."""

    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, outcome: str, evidence: str = "") -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if evidence:
            self.failures.append(f"{outcome}: {evidence}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(
    args: list[str], cwd: Path, log: Path, inject: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A party with SIGINT at its default, as in a terminal; its stderr to ``log``.
    ``inject``: the environment of :data:`_INJECTING_RUN`, which it then runs."""
    env = dict(os.environ, **(inject or {}))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    with open(log, "wb") as err:
        return subprocess.Popen(  # noqa: S603 - this interpreter, our own arguments
            [
                sys.executable,
                "-c",
                _SIGINT_AS_IN_A_TERMINAL + (_RUN if inject is None else _INJECTING_RUN),
                *args,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _wait_for_line(log: Path, marker: str, process: subprocess.Popen[bytes]) -> bool:
    """Whether ``marker`` appeared in ``log`` before the bound (or the process ended)."""
    end = time.monotonic() + BOUND
    while time.monotonic() < end:
        if marker in log.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            return marker in log.read_text(errors="replace")
        time.sleep(0.005)
    return False


def _ended(process: subprocess.Popen[bytes]) -> int:
    """Its status, killing it (by its own id) past the bound."""
    try:
        return process.wait(timeout=BOUND)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -999


def _federation(directory: Path, certs: Path, rounds: int) -> tuple[Path, int]:
    port = _free_port()
    path = directory / "federation.toml"
    path.write_text(
        '[federation]\nname = "sig"\nclients = ["branch-0", "branch-1"]\ndimension = 4\n'
        f'rounds = {rounds}\n[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{directory / "state.sqlite"}"\nbind = "127.0.0.1:{port}"\n'
        f'certificates = "{certs}"\n'
    )
    return path, port


def _judge_stop(
    party: str, status: int, log: Path, signum: int, tally: Tally, *, early_ok: bool = False
) -> bool:
    """Count one stopped party's ending; True when it is as a stop must be."""
    if status == _NOT_STOPPED:
        return False
    text = log.read_text(errors="replace")
    said = [line for line in text.splitlines() if line.startswith(f"secagg {party}:")]
    name = signal.Signals(signum).name
    if early_ok and status == -signum and not said:  # Python's own (a traceback for Ctrl-C)
        tally.count(f"{party} {name}: ended by the signal during Python's imports")
        return True
    if "Traceback" in text:
        tally.count(f"{party} {name}: traceback", text[-1500:])
        return False
    if status != 128 + signum:
        tally.count(f"{party} {name}: status {status}", text[-1500:])
        return False
    if len(said) != 1 or "stopped by" not in said[0]:
        tally.count(f"{party} {name}: {len(said)} lines", text[-1500:])
        return False
    tally.count(f"{party} {name}: one line, {128 + signum}")
    return True


def _state_opens(toml: Path, tally: Tally) -> None:
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import open_server_state

    config = FederationConfig.load(toml)
    try:
        state = open_server_state(config, init=True)
    except Exception as exc:  # counted, with what it said
        tally.count("state does not open", f"{type(exc).__name__}: {exc}")
        return
    state.close()
    tally.count("state opens")


def _server_args(toml: Path, init: bool) -> list[str]:
    return ["server", "--config", str(toml), "--wait", "600", *(["--init"] if init else [])]


def _client_args(port: int, certs: Path, name: str, directory: Path) -> list[str]:
    return [
        "client",
        "--server",
        f"127.0.0.1:{port}",
        "--name",
        name,
        "--certs",
        str(certs),
        "--dimension",
        "4",
        "--state",
        str(directory / f"{name}.state"),
        "--connect-timeout",
        "120",
    ]


def _completes(
    toml: Path, directory: Path, server: subprocess.Popen[bytes] | None, tally: Tally
) -> None:
    """Start the server again when ``server`` is None; the federation must complete."""
    log = directory / "server-again.err"
    if server is None:
        server = _start(_server_args(toml, False), directory, log)
    else:
        log = directory / "server.err"
    status = _ended(server)
    text = log.read_text(errors="replace")
    if status != 0 or "Traceback" in text:
        tally.count("federation did not complete", f"status {status}: {text[-1500:]}")
    else:
        tally.count("federation completes")


#: the status :func:`run_once`'s stop gives for a party that ended before its injection
_NOT_STOPPED = -1000
#: seconds an injected party is given to reach its injection point and stop
_INJECTION_BOUND = 20.0
#: ``--inject``: the log line that arms the injection, and the largest event count drawn
#: (a server waiting passes ~100 points a second; a round ~5000, profiled)
_ARMING = {
    "server-wait": ("listening on", 200),  # then it blocks until a branch connects
    "server-round": ("round 1 complete", 100_000),
    "client-round": ("joins federation", 50_000),
}


def run_once(
    mode: str,
    certs: Path,
    spread: float,
    rounds: int,
    tally: Tally,
    inject: bool = False,
    swallow: bool = False,
) -> None:
    signum = random.choice([signal.SIGINT, signal.SIGTERM])  # noqa: S311 - not a secret
    delay = random.uniform(0.0, spread)  # noqa: S311
    injection: dict[str, str] | None = None
    if inject:
        mark, most = _ARMING[mode]
        at = random.randint(1, most)  # noqa: S311
        injection = {
            "STOP_AT_EVENT": str(at),
            "STOP_SIGNAL": str(int(signum)),
            "STOP_ARM_ON": mark,
            "STOP_SWALLOW": "1" if swallow else "0",
        }
    stopped = "client" if mode == "client-round" else "server"
    with tempfile.TemporaryDirectory(prefix="stop-stress-") as folder:
        directory = Path(folder)
        toml, port = _federation(directory, certs, rounds)
        server_log = directory / "server.err"
        server = _start(
            _server_args(toml, True),
            directory,
            server_log,
            injection if stopped == "server" else None,
        )
        branches: list[subprocess.Popen[bytes]] = []

        def stop(process: subprocess.Popen[bytes], log: Path) -> int:
            """Signal it (unless the injection stops it), then its status. An injection
            past the points the party passes (a server blocked in a long wait, a
            federation that finished) is counted and replaced by the signal."""
            if injection is not None:
                try:
                    status = process.wait(timeout=_INJECTION_BOUND)
                except subprocess.TimeoutExpired:
                    status = None
                if "stop-stress: injected" in log.read_text(errors="replace"):
                    return _ended(process) if status is None else status
                tally.count("injection point not reached: signalled instead")
                if status is not None:  # it finished first: nothing to judge
                    return _NOT_STOPPED
            else:
                time.sleep(delay)
            process.send_signal(signum)
            return _ended(process)

        try:
            if mode == "server-start":
                status = stop(server, server_log)
                _judge_stop("server", status, server_log, signum, tally, early_ok=True)
                if (directory / "state.sqlite").exists():
                    _state_opens(toml, tally)
                return
            if mode == "server-wait":  # an injection may stop it as it says "listening"
                if injection is None and not _wait_for_line(server_log, "listening on", server):
                    tally.count("server never listened", server_log.read_text()[-1500:])
                    return
                _judge_stop("server", stop(server, server_log), server_log, signum, tally)
                _state_opens(toml, tally)
                return
            if not _wait_for_line(server_log, "listening on", server):
                tally.count("server never listened", server_log.read_text()[-1500:])
                return
            for index in range(2):
                name = f"branch-{index}"
                branches.append(
                    _start(
                        _client_args(port, certs, name, directory),
                        directory,
                        directory / f"{name}.err",
                        injection if index == 0 and stopped == "client" else None,
                    )
                )
            if injection is None and not _wait_for_line(server_log, "round 1 complete", server):
                tally.count("no round ran", server_log.read_text()[-1500:])
                return
            if mode == "server-round":
                if _judge_stop("server", stop(server, server_log), server_log, signum, tally):
                    _completes(toml, directory, None, tally)
            else:  # client-round
                log = directory / "branch-0.err"
                if _judge_stop("client", stop(branches[0], log), log, signum, tally):
                    branches[0] = _start(
                        _client_args(port, certs, "branch-0", directory),
                        directory,
                        directory / "branch-0-again.err",
                    )
                    _completes(toml, directory, server, tally)
            for index, branch in enumerate(branches):
                status = _ended(branch)
                if status != 0:
                    logs = sorted(directory.glob(f"branch-{index}*.err"))
                    tally.count(
                        "branch did not finish",
                        f"status {status}: {logs[-1].read_text(errors='replace')[-1500:]}",
                    )
        finally:
            for process in (server, *branches):
                if process.poll() is None:
                    process.kill()
                    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        choices=["server-wait", "server-round", "client-round", "server-start"],
        required=True,
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--spread", type=float, default=0.3, help="seconds of random delay")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--inject",
        action="store_true",
        help="stop the party from inside, at a random point where a signal's handler "
        "can run (not server-start)",
    )
    parser.add_argument(
        "--swallow",
        action="store_true",
        help="--inject, and the handler's KeyboardInterrupt is dropped where it came, as a "
        "library's catch-all drops it: the party must stop by the stop it recorded",
    )
    args = parser.parse_args()
    if args.swallow:
        args.inject = True
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    random.seed(seed)
    from secagg.apps import devca

    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="stop-stress-certs-") as folder:
        certs = Path(folder) / "certs"
        devca.init_ca(certs)
        for name in ("branch-0", "branch-1"):
            devca.issue_client(certs, name)
        began = time.monotonic()
        for _ in range(args.runs):
            run_once(args.mode, certs, args.spread, args.rounds, tally, args.inject, args.swallow)
    how = "swallowed" if args.swallow else "injected" if args.inject else "signalled"
    print(
        f"mode {args.mode} ({how}), {args.runs} runs, seed {seed}, {time.monotonic() - began:.0f} s"
    )
    for outcome, count in sorted(tally.counts.items()):
        print(f"  {count:4d}  {outcome}")
    for failure in tally.failures:
        print("FAILURE", failure)
    sys.exit(1 if tally.failures else 0)


if __name__ == "__main__":
    main()
