"""A ``secagg server`` federation (one round, three branches, no DP or record-level
DP-SGD) run to its end with its ledger row lost (the append failed: a full disk), for
the tests of the command's finished-federation path: the start rebuilds the row, and
says so (tests/apps/test_server_finished_rebuilt_head.py) or says why it could not
(tests/apps/test_server_finished_rebuild_fails.py).

Why here: both tests build the same federation, its certificates and its lost row.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _record_replays import DELTA, dpsgd_report
from _threads import BOUND

from secagg.apps import devca
from secagg.ledger import Ledger
from secagg.runtime import launch
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(3)]


def report(name: str) -> dict[str, Any]:
    """Branch ``name``'s DP-SGD report (record level)."""
    return dpsgd_report([(1.0, 0.01, 100 * (NAMES.index(name) + 1))])


def federation_toml(folder: Path, port: int, record_level: bool) -> Path:
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


def finish_with_the_row_lost(config: FederationConfig, record_level: bool) -> None:
    """Round 1 run to its end on the state ``serve`` opens, its ledger append failing
    (a full disk): the state has the round complete, the ledger no row of it."""
    state = launch.open_server_state(config, init=True)
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(
            name,
            lambda model: np.full_like(model, 0.1),
            hub.connect(name),
            privacy_report=(lambda name=name: report(name)) if record_level else None,
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


@contextmanager
def finished_with_the_row_lost(folder: Path, record_level: bool) -> Iterator[Path]:
    """The federation's TOML in ``folder``, its certificates issued and its round run
    with the row lost (:func:`finish_with_the_row_lost`); while the block runs its
    port is held, so a server that bound would fail."""
    ca = folder / "certs"
    devca.init_ca(ca)
    for name in NAMES:
        devca.issue_client(ca, name)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        toml = federation_toml(folder, int(held.getsockname()[1]), record_level)
        finish_with_the_row_lost(FederationConfig.load(toml), record_level)
        yield toml
