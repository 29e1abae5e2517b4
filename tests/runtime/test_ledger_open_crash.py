"""A server killed while it creates its ledger restarts; a crash point the enumeration missed.

tests/runtime/test_crash_points.py crashes every commit of the server's state and ledger
that goes through their transactions, every atomic file write and the public key file.
The ledger's first open writes before any of those: ``PRAGMA journal_mode=WAL`` puts
SQLite's header in the new file, then the schema is committed by ``executescript``,
outside the ledger's transaction. A server killed between the two (a new federation's
first start: state, key and public key already written) left a 4 096-byte SQLite file
with no table at the ledger's path, and every restart, ``--init`` or not, refused it:
"... is not a privacy ledger: it is an SQLite database without tables ... move the file
away" (``secagg server``: exit 2, as if the operator had named the wrong file). Such a
file holds nothing, as an empty one does: the restart now opens the ledger there and
the federation goes on; beside a state with finished rounds it is refused as a lost
ledger, saying what the file is.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND

from secagg.aggregation.policy import BranchPolicy
from secagg.ledger import verify_ledger
from secagg.ledger.chain import load_public_key
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.store import StateMissing
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = ["branch-0", "branch-1", "branch-2"]
#: generous: the branches only wait this long when a test stops the server on purpose
IDLE = 60.0
#: the exit status the killed server process dies with (os._exit: no cleanup at all)
KILLED = 9

#: a server's first start, killed as SQLite begins the ledger's schema: every statement
#: of the ledger's connection is traced, and the first CREATE TABLE ends the process
#: before SQLite runs it (a SIGKILL's effect: nothing closed, nothing rolled back)
KILLED_AT_LEDGER_SCHEMA = """
import os, sqlite3, sys
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state

real_connect = sqlite3.connect

def die_at_schema(sql):
    if sql.lstrip().upper().startswith("CREATE TABLE"):
        os._exit({killed})

def connect(path, *args, **kwargs):
    db = real_connect(path, *args, **kwargs)
    if str(path).endswith(".ledger"):
        db.set_trace_callback(die_at_schema)
    return db

sqlite3.connect = connect
config = FederationConfig.from_dict({config!r})
open_server_state(config, init=True)
print("the ledger was created: no crash")
"""


def _config_dict(directory: Path, rounds: int) -> dict[str, object]:
    return {
        "federation": {"name": "crash", "clients": NAMES, "dimension": D, "rounds": rounds},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 1.0},
        "deadlines": {"phase_seconds": 60.0},
        "server": {"state": str(directory / "state.sqlite")},
    }


def _killed_while_creating_its_ledger(directory: Path) -> None:
    script = KILLED_AT_LEDGER_SCHEMA.format(killed=KILLED, config=_config_dict(directory, 1))
    died = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND
    )
    assert died.returncode == KILLED, (died.returncode, died.stdout, died.stderr)
    ledger = directory / "state.sqlite.ledger"
    assert ledger.stat().st_size > 0  # SQLite's header, and nothing else
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    db.close()
    assert (directory / "state.sqlite.ledger-key.pub").exists()  # written before the ledger


def _run(config: FederationConfig, init: bool | None) -> None:
    """Every configured round, in process; the state closed afterwards."""
    hub = InProcessHub()
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.01 * (i + 1))
        client = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": IDLE, "rounds": config.rounds}, daemon=True
        ).start()
    state = open_server_state(config, init=init)
    try:
        results = build_server(config, hub, state.store, ledger=state.ledger).run(
            wait_for_clients=60
        )
    finally:
        state.close()
    assert [r.status for r in results] == ["complete"] * config.rounds, results


@pytest.mark.parametrize("init", [None, False, True], ids=["program", "restart", "init-again"])
def test_a_server_killed_creating_its_ledger_restarts_and_goes_on(
    tmp_path: Path, init: bool | None
) -> None:
    _killed_while_creating_its_ledger(tmp_path)
    _run(FederationConfig.from_dict(_config_dict(tmp_path, 2)), init)
    public = load_public_key(tmp_path / "state.sqlite.ledger-key.pub")
    audit = verify_ledger(tmp_path / "state.sqlite.ledger", public)
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2]


def test_a_tableless_ledger_beside_finished_rounds_is_a_lost_ledger(tmp_path: Path) -> None:
    """Guard for the reading above: holding nothing, such a file beside a state that
    finished rounds is refused as a lost ledger is, saying what the file is, and left."""
    config = FederationConfig.from_dict(_config_dict(tmp_path, 1))
    _run(config, init=True)
    ledger = tmp_path / "state.sqlite.ledger"
    ledger.unlink()
    db = sqlite3.connect(ledger)
    db.execute("PRAGMA journal_mode=WAL")  # the header of the crash's file, no table
    db.close()
    before = ledger.read_bytes()
    with pytest.raises(StateMissing) as refused:
        open_server_state(config)
    message = str(refused.value)
    assert f"its ledger {ledger} is empty (an SQLite database without tables)" in message
    assert ledger.read_bytes() == before
