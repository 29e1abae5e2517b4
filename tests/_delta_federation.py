"""A three-branch federation under central DP whose δ a test changes between restarts.

Shared by the tests of what a restart under another ``[dp] delta`` writes to the ledger
(tests/runtime/test_ledger_restart_delta.py, tests/runtime/test_ledger_rebuild_delta.py):
the same config and the same honest run, so the two files differ only in what they
break. :func:`run_every_round` also runs the federations of
tests/runtime/test_restart_contradictions.py, whose configs differ."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import RoundResult
from secagg.transport.inprocess import InProcessHub

D = 10
NAMES = ["b1", "b2", "b3"]
Z = 1.0
#: generous: the branches only wait this long when a round never comes
IDLE = 60.0


def delta_config(tmp_path: Path, rounds: int, delta: float, name: str) -> FederationConfig:
    """``rounds`` rounds of federation ``name`` at noise multiplier :data:`Z` and
    ``delta``, its state (and ledger) in ``tmp_path``."""
    return FederationConfig.from_dict(
        {
            "federation": {"name": name, "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
            "dp": {"clip": 1.0, "noise_multiplier": Z, "delta": delta},
        }
    )


def run_every_round(config: FederationConfig) -> list[RoundResult]:
    """Every round of ``config`` with three branches, each one complete (asserted); the
    state is closed afterwards."""
    hub = InProcessHub()
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.01 * (i + 1))
        client = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": IDLE, "rounds": config.rounds}, daemon=True
        ).start()
    state = open_server_state(config)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        results = server.run(wait_for_clients=IDLE)
    finally:
        state.close()
    assert [r.status for r in results] == ["complete"] * config.rounds, results
    return results
