"""A server killed while it creates its ledger or its state restarts; crash points the
enumeration missed.

tests/runtime/test_crash_points.py crashes every commit of the server's state and ledger
that goes through their transactions, every atomic file write and the public key file.
Both databases are created before any of those: ``PRAGMA journal_mode=WAL`` puts SQLite's
header in the new file, then the schema is created by ``executescript``, whose
statements commit one by one, outside any transaction of theirs. A server killed there
(a new federation's first start) left:

* at the ledger's path, a 4 096-byte SQLite file with no table, or with ``ledger_meta``
  only; every restart, ``--init`` or not, refused it ("... is not a privacy ledger: it
  is an SQLite database without tables ... move the file away", exit 2; "is not a
  readable ledger: no such table: ledger", exit 1);
* a state with the ``clients`` table only, refused at every restart, ``--init`` too, as
  "a SQLite database but not a secagg server state (tables clients)".

Such files hold nothing: the ledger's is taken as no ledger (the restart opens the ledger
there; beside a state with finished rounds it is a lost ledger), the state's schema is
created in one transaction (a kill leaves no table, and ``--init`` starts over it), and a
state an older version left with some of its tables, all empty, is an empty state.
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
from secagg.runtime.store import SCHEMA as STATE_SCHEMA
from secagg.runtime.store import StateMissing, StoreCorrupted
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = ["branch-0", "branch-1", "branch-2"]
#: generous: the branches only wait this long when a test stops the server on purpose
IDLE = 60.0
#: the exit status the killed server process dies with (os._exit: no cleanup at all)
KILLED = 9

#: a server's first start, killed as SQLite begins one statement of a database's schema:
#: every statement of that database's connection is traced, and the chosen one ends the
#: process before SQLite runs it (a SIGKILL's effect: nothing closed, nothing rolled back)
KILLED_AT_SCHEMA = """
import os, sqlite3, sys
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state

real_connect = sqlite3.connect

def die_at(sql):
    if sql.lstrip().startswith({statement!r}):
        os._exit({killed})

def connect(path, *args, **kwargs):
    db = real_connect(path, *args, **kwargs)
    if str(path).endswith({suffix!r}):
        db.set_trace_callback(die_at)
    return db

sqlite3.connect = connect
config = FederationConfig.from_dict({config!r})
open_server_state(config, init=True)
print("created: no crash")
"""

#: where a first start dies: the ledger before any table, the ledger with ``ledger_meta``
#: only, the state with ``clients`` only (its schema's second statement)
SCHEMA_KILLS = {
    "ledger-no-table": (".ledger", "CREATE TABLE IF NOT EXISTS ledger_meta"),
    "ledger-meta-only": (".ledger", "CREATE TABLE IF NOT EXISTS ledger ("),
    "state-clients-only": (".sqlite", "CREATE TABLE IF NOT EXISTS rounds"),
}


def _config_dict(directory: Path, rounds: int) -> dict[str, object]:
    return {
        "federation": {"name": "crash", "clients": NAMES, "dimension": D, "rounds": rounds},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 1.0},
        "deadlines": {"phase_seconds": 60.0},
        "server": {"state": str(directory / "state.sqlite")},
    }


def _killed_while_creating(directory: Path, where: str) -> None:
    suffix, statement = SCHEMA_KILLS[where]
    script = KILLED_AT_SCHEMA.format(
        statement=statement, suffix=suffix, killed=KILLED, config=_config_dict(directory, 1)
    )
    died = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND
    )
    assert died.returncode == KILLED, (died.returncode, died.stdout, died.stderr)
    database = directory / ("state.sqlite" + ("" if suffix == ".sqlite" else ".ledger"))
    assert database.stat().st_size > 0  # SQLite's header, and no row
    if suffix == ".ledger":
        assert (directory / "state.sqlite.ledger-key.pub").exists()  # written before it


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


@pytest.mark.parametrize("where", sorted(SCHEMA_KILLS))
@pytest.mark.parametrize("init", [None, False, True], ids=["program", "restart", "init-again"])
def test_a_server_killed_creating_its_databases_restarts_and_goes_on(
    tmp_path: Path, init: bool | None, where: str
) -> None:
    _killed_while_creating(tmp_path, where)
    if where.startswith("state") and not init:
        # the state holds nothing: a start without --init says so, and --init starts
        with pytest.raises(StateMissing, match="holds no tables: it is empty"):
            open_server_state(FederationConfig.from_dict(_config_dict(tmp_path, 2)), init=init)
        init = True
    _run(FederationConfig.from_dict(_config_dict(tmp_path, 2)), init)
    public = load_public_key(tmp_path / "state.sqlite.ledger-key.pub")
    audit = verify_ledger(tmp_path / "state.sqlite.ledger", public)
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1, 2]


def test_a_state_an_older_version_left_with_some_empty_tables_is_an_empty_state(
    tmp_path: Path,
) -> None:
    """The state an older version's kill left (``clients`` only, no row): ``--init``
    starts a federation over it. With a row in it, it is no torn creation: still refused
    as not a server state (a guard; held before too)."""
    config = FederationConfig.from_dict(_config_dict(tmp_path, 1))
    state = tmp_path / "state.sqlite"
    db = sqlite3.connect(state)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(STATE_SCHEMA.split(";")[0])  # CREATE TABLE ... clients (...)
    db.commit()
    db.close()
    with pytest.raises(StateMissing, match="holds no rounds table"):
        open_server_state(config, init=False)
    _run(config, init=True)
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / "state.sqlite")
    db.execute(STATE_SCHEMA.split(";")[0])
    db.execute("INSERT INTO clients VALUES ('someone', NULL, 0)")
    db.commit()
    db.close()
    with pytest.raises(StoreCorrupted, match=r"not a secagg server state \(tables clients\)"):
        open_server_state(FederationConfig.from_dict(_config_dict(other, 1)), init=True)


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
    what = "empty (an SQLite file whose creation as a ledger did not finish)"
    assert f"its ledger {ledger} is {what}" in message, message
    assert ledger.read_bytes() == before
