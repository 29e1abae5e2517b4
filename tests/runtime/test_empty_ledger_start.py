"""A ledger emptied (0 bytes) beside a state that finished rounds: refused, naming the file.

Why: an empty file at the ledger's path reads as "no ledger" (``holds_state``), the way a
new federation's placeholder does. Beside a state that holds finished rounds (budget
spent, rows signed and perhaps published) a new chain started there would omit those
rounds and their epsilon. The start was refused, but in words that did not name the
ledger's file nor say which it was ("its ledger is missing or empty"), so the operator
was left to guess which file to restore. It now names the ledger's path, says it is
empty (0 bytes) or missing, and leaves every file as it found it; ``secagg server``
prints that one line (exit 1, a state failure). A new federation (nothing there, or
empty placeholders for both files) still starts.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.aggregation.policy import BranchPolicy
from secagg.apps import devca
from secagg.apps.cli import main
from secagg.ledger import verify_ledger
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.store import StateMissing
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = ["branch-0", "branch-1", "branch-2"]
#: generous: the branches only wait this long when a test stops the server on purpose
IDLE = 60.0


def _toml(directory: Path, certs: Path, rounds: int) -> Path:
    path = directory / "federation.toml"
    clients = ", ".join(f'"{name}"' for name in NAMES)
    path.write_text(
        f'[federation]\nname = "pilot"\nclients = [{clients}]\ndimension = {D}\n'
        f"rounds = {rounds}\n"
        '[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        "[deadlines]\nphase_seconds = 60.0\n"
        f'[server]\nstate = "{directory / "state.sqlite"}"\nbind = "127.0.0.1:0"\n'
        f'certificates = "{certs}"\n'
    )
    return path


def _finish_rounds(config: FederationConfig, *, init: bool | None = True) -> None:
    """Run every configured round of a federation in process (``init`` as
    :func:`open_server_state` takes it), then close its state."""
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
        server = build_server(config, hub, state.store, ledger=state.ledger)
        results = server.run(wait_for_clients=60)
    finally:
        state.close()
    assert [r.status for r in results] == ["complete"] * config.rounds, results


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.glob("state.sqlite*"))
        if not p.name.endswith(".lock")
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("empty-ledger") / "certs"
    devca.init_ca(directory)
    return directory


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_a_lost_ledger_beside_finished_rounds_is_refused_naming_its_file(
    tmp_path: Path, certs: Path, damage: str
) -> None:
    config = FederationConfig.load(_toml(tmp_path, certs, rounds=2))
    _finish_rounds(config)
    ledger = tmp_path / "state.sqlite.ledger"
    if damage == "emptied":
        os.truncate(ledger, 0)  # a failed restore, a full disk, a stray "> file"
    else:
        ledger.unlink()
    before = _digests(tmp_path)
    what = "is empty (0 bytes)" if damage == "emptied" else "is missing"
    for init in (None, False):
        with pytest.raises(StateMissing) as refused:
            open_server_state(config, init=init)
        message = str(refused.value)
        assert f"its ledger {ledger} {what}" in message, message
        assert "holds 2 finished rounds (up to round 2)" in message, message
        assert _digests(tmp_path) == before  # nothing created, nothing written
    assert ledger.exists() == (damage == "emptied")


def test_secagg_server_prints_one_line_naming_the_empty_ledger(tmp_path: Path, certs: Path) -> None:
    toml = _toml(tmp_path, certs, rounds=1)
    _finish_rounds(FederationConfig.load(toml))
    ledger = tmp_path / "state.sqlite.ledger"
    os.truncate(ledger, 0)
    before = _digests(tmp_path)
    more = _toml(tmp_path, certs, rounds=2)  # one more round asked of the federation
    result = CliRunner().invoke(main, ["server", "--config", str(more), "--wait", "1"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("secagg server: the state "), lines[0]
    assert f"its ledger {ledger} is empty (0 bytes)" in lines[0], lines[0]
    assert _digests(tmp_path) == before


@pytest.mark.parametrize(
    "placeholders", [(), ("state.sqlite.ledger",), ("state.sqlite", "state.sqlite.ledger")]
)
def test_a_new_federation_starts_over_empty_placeholders(
    tmp_path: Path, certs: Path, placeholders: tuple[str, ...]
) -> None:
    """Guard: nothing there, or empty files an installer made for the state and its
    ledger, is a new federation, which starts and signs its first rows (held before too)."""
    for name in placeholders:
        (tmp_path / name).touch()
    config = FederationConfig.load(_toml(tmp_path, certs, rounds=1))
    _finish_rounds(config, init=None)  # new: no --init needed where nothing is held
    audit = verify_ledger(tmp_path / "state.sqlite.ledger")
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1]


@pytest.mark.parametrize("damage", ["emptied", "deleted", "ledger without rows"])
def test_a_lost_state_and_ledger_beside_the_ledger_key_are_refused_even_with_init(
    tmp_path: Path, certs: Path, damage: str
) -> None:
    """Both files lost, the ledger key kept: a new chain there is signed with the key the
    auditors hold and verifies against its public half, its epsilon back at round 1's.
    The start went ahead without ``--init`` (``init=None``) and with it, and without it
    the line said to pass ``--init``. The key is made only with a new federation's
    ledger, after its state, so no crash leaves it beside neither: refused whatever
    ``init`` says, naming the three files, and nothing is written."""
    config = FederationConfig.load(_toml(tmp_path, certs, rounds=2))
    _finish_rounds(config)
    state, ledger = tmp_path / "state.sqlite", tmp_path / "state.sqlite.ledger"
    if damage == "emptied":
        os.truncate(state, 0)
        os.truncate(ledger, 0)
    elif damage == "deleted":
        state.unlink()
        ledger.unlink()
    else:  # a ledger made again, with its tables and no rows
        state.unlink()
        with sqlite3.connect(ledger) as db:
            db.execute("DELETE FROM ledger")
        db.close()
    before = _digests(tmp_path)
    for init in (None, False, True):
        with pytest.raises(StateMissing) as refused:
            open_server_state(config, init=init)
        message = str(refused.value)
        assert f"the ledger key {tmp_path / 'state.sqlite.ledger-key'} is there" in message
        assert f"the state {state} is " in message and f"its ledger {ledger} is " in message
        assert _digests(tmp_path) == before
    result = CliRunner().invoke(
        main, ["server", "--config", str(tmp_path / "federation.toml"), "--init"]
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "a federation ran here and both were lost" in lines[0], lines
    assert _digests(tmp_path) == before
    # the way out the line names: the old key moved away, --init starts a new federation
    for old in tmp_path.glob("state.sqlite.ledger*"):
        old.rename(tmp_path / f"old-{old.name}")
    _finish_rounds(FederationConfig.load(_toml(tmp_path, certs, rounds=1)), init=True)
    assert verify_ledger(ledger).ok
