"""A round aborted before its start went out sends its participants no end.

Found by tests/integration/test_federation_properties.py: a Poisson draw that samples one
branch aborts the round ("fewer than 2 clients sampled") before any RoundStart is sent,
but the server still sent that branch the round's RoundEnd, which the branch refused
("the end of round 2, but this branch's round is 1") and counted as a refused message:
an honest server made its branch log a refusal every time it was sampled alone.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.stream import KeyedStream, derive
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server
from secagg.transport.inprocess import InProcessHub

NAMES = ["b00", "b01", "b02"]
RATE = 0.7
#: generous: the branches leave at the federation's end, long before this
IDLE = 60.0


def _seed_sampling_one_branch_in_round_2() -> int:
    """A federation seed whose seeded Poisson draw takes everyone in round 1 and one
    branch alone in round 2 (the cohort's documented seeding, replayed)."""
    for seed in range(1000):
        draws = KeyedStream(derive(b"secagg/v1/test-seed/sampling", seed))
        counts = [int((draws.uniform(len(NAMES)) < RATE).sum()) for _ in range(2)]
        if counts == [3, 1]:
            return seed
    raise AssertionError("no seed found")


def test_a_branch_sampled_alone_refuses_nothing_the_server_sends(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": "alone",
                "clients": NAMES,
                "dimension": 2,
                "rounds": 2,
                "seed": _seed_sampling_one_branch_in_round_2(),
            },
            "sampling": {"kind": "poisson", "rate": RATE},
            "backend": {"name": "secagg", "value_bound": 1.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )
    hub = InProcessHub()
    clients = [
        FederationClient(name, lambda m: np.full(2, 0.1), hub.connect(name), policy=BranchPolicy())
        for name in NAMES
    ]
    threads = [
        threading.Thread(target=c.run, kwargs={"idle_timeout": IDLE}, daemon=True) for c in clients
    ]
    for thread in threads:
        thread.start()
    server = build_server(config, hub, tmp_path / "state.sqlite")
    results = server.run(wait_for_clients=IDLE, max_attempts=2)
    for thread in threads:
        thread.join(timeout=IDLE)
    server.store.close()
    assert [(r.status, len(r.participants)) for r in results] == [("complete", 3), ("aborted", 1)]
    assert [c.stats.refused_messages for c in clients] == [0, 0, 0]
    # the round it never started is not one it saw abort
    assert [c.stats.rounds_aborted for c in clients] == [0, 0, 0]
