"""A restarted replay does not repeat its noise (``federation.replay_noise``).

Why: with ``replay_noise`` the server's central noise is read from one stream keyed by
the config's seed. A restarted server keyed it again from the start, so the first
round after a restart added exactly the noise the federation's first round had added:
two releases with the same noise, where the ledger's "replayed" claim is the epsilon of
the same run with fresh noise, which never repeats.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 32
NAMES = [f"branch-{i}" for i in range(4)]
UPDATE = 0.1


def _config(rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "restart",
                "clients": NAMES,
                "dimension": D,
                "rounds": rounds,
                "seed": 7,
                "replay_noise": True,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "plain", "value_bound": 1.0},
            "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3},
        }
    )


def _serve_one_round(rounds: int, store: Path) -> np.ndarray:
    """The server of ``rounds`` rounds on ``store`` runs its next round (every branch
    sends the same update whatever the model); the model after it."""
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(
            name,
            lambda m: np.full_like(m, UPDATE),
            hub.connect(name),
            policy=BranchPolicy(allow_plain=True),
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 30, "rounds": 1}, daemon=True
        ).start()
    server = FederationServer(_config(rounds), hub, ServerStore(store))
    results = server.run(wait_for_clients=120)
    assert results[-1].status == "complete"
    return server.model.copy()


def test_the_first_round_after_a_restart_draws_new_noise(tmp_path: Path) -> None:
    """Before: round 2, run by a restarted server, moved the model by exactly round 1's
    step (the same mean update plus the same noise, to 1e-12)."""
    store = tmp_path / "state.sqlite"
    first = _serve_one_round(1, store)
    second = _serve_one_round(2, store)  # a restart: the store holds round 1
    step_one, step_two = first, second - first
    # the noise on the mean has std 1/4 a coordinate: the steps differ by far more
    assert np.max(np.abs(step_two - step_one)) > 0.05, "round 2 repeated round 1's noise"
