"""The server's notes of a round's reveal (its charge, the noise and the participants it
assumed) are kept for the round in flight only.

Before: ``FederationServer._revealed``, ``_revealed_noise`` and
``_revealed_participants`` gained one entry per round whose sum was revealed and were
never pruned, although only the round in flight's note is ever read (its abort, its
failed write, the key holder's reply): a long-running federation (10^6 rounds) grew
them without bound. Now a round starts with no note of an earlier one.

A short real federation over the in-process hub (SecAgg+: every round notes its reveal,
a charge of None without DP, before its unmasking requests leave; distributed DP writes
the same note with a charge, and cost this test a second more).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _threads import BOUND, Party

from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(4)]
ROUNDS = 3


def test_only_the_round_in_flight_keeps_its_reveal_note(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "notes", "clients": NAMES, "dimension": 4, "rounds": ROUNDS},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = InProcessHub()
    parties = []
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        parties.append(Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=ROUNDS)))
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    results = server.run(wait_for_clients=BOUND, max_attempts=ROUNDS)
    assert [r.status for r in results] == ["complete"] * ROUNDS, [r.reason for r in results]
    for party in parties:
        assert party.done.wait(BOUND)
    # the last round's note at most: every round noted one
    assert set(server._revealed) == {ROUNDS}
    assert set(server._revealed_noise) == {ROUNDS}
    assert set(server._revealed_participants) == {ROUNDS}
