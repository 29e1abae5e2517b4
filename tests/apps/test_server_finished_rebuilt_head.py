"""``secagg server`` on a finished federation whose last ledger row was lost says that it
rebuilt the row, and prints the ledger's new head, as a run that ends its rounds does.

Review of the deferred ledger rebuild (2026-12-07): ``serve`` rebuilds a finished
federation's lost row (in the server's constructor, or, where the row reads DP-SGD
replays, in ``FederationServer.backfill_ledger``) without binding, and the command
then printed only "federation ... is already finished: ...; nothing to do". The ledger
had a new row and a new head, which auditors pass to ``secagg audit verify
--expect-head``: a resumable run prints "ledger head SEQ:HASH (publish it: ...)" as it
ends, the finished path printed nothing of it, and said nothing had been done.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _record_replays import DELTA, dpsgd_report
from _threads import BOUND
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime import launch
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(3)]


def _report(name: str) -> dict[str, Any]:
    return dpsgd_report([(1.0, 0.01, 100 * (NAMES.index(name) + 1))])


def _toml(folder: Path, port: int, record_level: bool) -> Path:
    """A one-round federation (record-level DP-SGD, or no DP) whose server binds
    ``port``."""
    dp = (
        f'[dp]\nunit = "record"\nmechanism = "dpsgd"\nclip = 1.0\ndelta = {DELTA}\n'
        if record_level
        else ""
    )
    path = folder / "federation.toml"
    path.write_text(
        f'[federation]\nname = "cli"\nclients = {NAMES!r}\ndimension = 4\nrounds = 1\n'.replace(
            "'", '"'
        )
        + '[sampling]\nkind = "poisson"\nrate = 1.0\n'
        + '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        + dp
        + "[deadlines]\nphase_seconds = 30.0\n"
        + f'[server]\nstate = "{folder / "state.sqlite"}"\nbind = "127.0.0.1:{port}"\n'
        + f'certificates = "{folder / "certs"}"\n'
    )
    return path


def _finish_with_the_row_lost(config: FederationConfig, record_level: bool) -> None:
    """Round 1 run to its end on the state ``serve`` opens, its ledger append failing
    (a full disk): the state has the round complete, the ledger no row of it."""
    state = launch.open_server_state(config, init=True)
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(
            name,
            lambda model: np.full_like(model, 0.1),
            hub.connect(name),
            privacy_report=(lambda name=name: _report(name)) if record_level else None,
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": BOUND, "rounds": 1}, daemon=True
        ).start()

    def full_disk(ledger: Ledger, entry: dict[str, object]) -> int:
        raise OSError(28, "No space left on device")

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(Ledger, "append", full_disk)
        try:
            server = FederationServer(config, hub, state.store, ledger=state.ledger)
            with pytest.raises(OSError, match="No space left"):
                server.run(wait_for_clients=BOUND)
        finally:
            state.close()


@pytest.mark.parametrize("record_level", [False, True], ids=["no-dp", "record-level"])
def test_a_finished_federation_that_rebuilt_its_row_prints_the_new_head(
    tmp_path: Path, record_level: bool
) -> None:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    for name in NAMES:
        devca.issue_client(ca, name)
    with socket.socket() as held:  # a server that bound would fail on this port
        held.bind(("127.0.0.1", 0))
        held.listen()
        toml = _toml(tmp_path, int(held.getsockname()[1]), record_level)
        config = FederationConfig.load(toml)
        _finish_with_the_row_lost(config, record_level)
        result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert result.exit_code == 0, result.output
    key = LedgerKey.load(Path(config.server.state + ".ledger-key"))
    audit = verify_ledger(Path(config.server.state + ".ledger"), key.public_key)
    assert audit.ok, audit.first_failure
    assert [(row.entry["round"], row.entry["reconstructed"]) for row in audit.chain.rows] == [
        (1, True)
    ]
    ledger = Ledger(Path(config.server.state + ".ledger"), key)
    try:
        head = ledger.anchor()
    finally:
        ledger.close()
    assert result.stdout.strip().splitlines() == [
        f"federation cli is already finished: 1 of 1 rounds complete (state "
        f"{config.server.state}); its ledger lacked the row of round 1, rebuilt now from "
        "the state",
        f"ledger head {head} (publish it: auditors pass it to secagg audit verify "
        "--expect-head, which then detects a ledger cut back)",
    ]
