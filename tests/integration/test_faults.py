"""Fault tests over real processes and gRPC: branches killed mid-round, server SIGKILLed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _threads import free_port

from secagg.apps import devca
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import serve

D = 500
BRANCH = str(Path(__file__).with_name("_fault_branch.py"))


def _setup(tmp_path: Path, names: list[str]) -> Path:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    for name in names:
        devca.issue_client(ca, name)
    return ca


def _toml(tmp_path: Path, names: list[str], port: int, rounds: int, **backend: object) -> Path:
    backend_lines = "".join(f"{k} = {v!r}\n" for k, v in backend.items()).replace("'", '"')
    text = (
        f'[federation]\nname = "faults"\nclients = {names!r}\ndimension = {D}\n'
        f"rounds = {rounds}\nseed = 3\n"
        '[sampling]\nkind = "poisson"\nrate = 1.0\n'
        f"[backend]\n{backend_lines}"
        "[dp]\nclip = 1.0\nnoise_multiplier = 0.5\ndelta = 1e-3\n"
        # every party answers or dies (a dead one's phase closes at once): the deadline
        # only has to hold ten processes on a busy machine, where 3 s was a race
        "[deadlines]\nphase_seconds = 30.0\n"
        f'[server]\nstate = "{tmp_path / "server.sqlite"}"\nbind = "127.0.0.1:{port}"\n'
        f'certificates = "{tmp_path / "certs"}"\n'
    ).replace("'", '"')
    path = tmp_path / "federation.toml"
    path.write_text(text)
    return path


def _branch(port: int, name: str, ca: Path, die_on: str, rounds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, BRANCH, str(port), name, str(ca), str(D), die_on, str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_branches_killed_at_every_phase_are_dropouts_and_the_round_completes(
    tmp_path: Path,
) -> None:
    deaths = ["start", "setup", "keys", "shares", "unmask"]
    names = [f"ok-{i}" for i in range(5)] + [f"dies-{d}" for d in deaths]
    ca = _setup(tmp_path, names)
    port = free_port()
    config = FederationConfig.load(
        _toml(tmp_path, names, port, 1, name="secagg", value_bound=1.0, dropout_fraction=0.5)
    )
    processes = [_branch(port, n, ca, "never", 1) for n in names[:5]]
    processes += [_branch(port, f"dies-{d}", ca, d, 1) for d in deaths]
    try:
        # a bound, not a sleep: returns once all ten processes are connected
        _, results = serve(config, wait_for_clients=120)
    finally:
        for p in processes:
            p.wait(timeout=60)
    (result,) = results
    assert result.status == "complete", result.reason
    # the branch that died before unmasking had sent its masked input: it is in the sum
    assert set(result.contributed) == {*names[:5], "dies-unmask"}
    assert [p.returncode for p in processes[5:]] == [3] * len(deaths)
    assert all(p.returncode == 0 for p in processes[:5])


@pytest.mark.slow
def test_server_killed_mid_round_restarts_aborts_that_round_and_continues(
    tmp_path: Path,
) -> None:
    names = [f"branch-{i}" for i in range(5)]
    ca = _setup(tmp_path, names)
    port = free_port()
    # two rounds: round 1 complete before the kill, round 2 killed mid-round, and the
    # restart finishes the federation with round 3 (a third round checked nothing more)
    toml = _toml(tmp_path, names, port, 2, name="secagg+", value_bound=1.0)
    server_cmd = [sys.executable, "-m", "secagg.apps.cli", "server", "--config", str(toml)]
    # a new federation needs --init; the restart continues it (and must not pass it)
    first = subprocess.Popen(
        [*server_cmd, "--init"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # 1.5 s of training per round; each branch serves until the federation's end
    branches = [_branch(port, n, ca, "slow", 0) for n in names]
    state = tmp_path / "server.sqlite"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # wait until round 2 is under way
            try:
                with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
                    rows = db.execute("SELECT number, status FROM rounds").fetchall()
            except sqlite3.OperationalError:  # not created yet
                rows = []
            if (2, "running") in rows:
                break
            time.sleep(0.05)
        else:
            pytest.fail("round 2 never started")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = subprocess.run(server_cmd, capture_output=True, text=True, timeout=120)
    finally:
        first.kill()
        for b in branches:
            try:
                b.wait(timeout=60)
            except subprocess.TimeoutExpired:
                b.kill()
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT number, status, report FROM rounds ORDER BY number").fetchall()
        checkpoints = [r[0] for r in db.execute("SELECT round FROM checkpoints ORDER BY round")]
    assert rows[0][:2] == (1, "complete")
    assert rows[1][:2] == (2, "aborted") and "server restarted" in rows[1][2]
    assert [status for _, status, _ in rows].count("complete") == 2
    assert checkpoints == [n for n, status, _ in rows if status == "complete"]
    # the ledger survived the SIGKILL: it verifies against the exported key, and it
    # records round 2 as aborted by the restart
    from secagg.ledger import load_public_key, verify_ledger

    ledger = Path(str(state) + ".ledger")
    public = load_public_key(str(state) + ".ledger-key.pub")
    audit = verify_ledger(ledger, public)
    assert audit.ok, audit.first_failure
    entries = [row.entry for row in audit.chain.rows]
    assert [e["round"] for e in entries] == [n for n, _, _ in rows]
    assert entries[1]["status"] == "aborted"
    assert entries[1]["reason"] == "server restarted mid-round"
    assert entries[1]["reconstructed"] is True
    assert entries[1]["reconstruction"]["cause"].startswith("the server stopped during the round")
    # an aborted round has no checkpoint: its model digest is the restarted server's
    assert "model_sha256" in entries[1]["reconstruction"]["not_recovered"]
