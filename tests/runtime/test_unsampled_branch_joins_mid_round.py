"""A branch that connects in the middle of a round is told the round runs without it.

Why: a :class:`~secagg.runtime.wire.NotSampled` notice keeps a branch left out of a
round from giving up on its idle timer (``secagg client --idle``) while the round goes
on. The server sent it once, right after the round's start, to the clients connected
then: a branch that connected a moment later (a new branch, or one whose redial landed
just after the sampling) heard nothing, and a round longer than its idle timer made it
give up (``BranchGaveUp``) while eligible. The server now looks again inside the round
(every ``UNSAMPLED_LOOK_SECONDS``) and tells each client once a round.

The cohort's training connects the late branch and then waits (a generous bound) until
it has either given up or is waiting for the server with a timeout beyond its idle
timer; no fixed sleep decides anything.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _threads import BOUND, Party, wait_until
from _watched_endpoint import WatchedEndpoint

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import UNSAMPLED_LOOK_SECONDS, FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 4
COHORT = ["branch-0", "branch-1", "branch-2"]
LATE = "branch-late"
# the late branch's idle timer: above the server's look, far below the round's length
IDLE = UNSAMPLED_LOOK_SECONDS + 2.0
PLAIN = BranchPolicy(allow_plain=True)


def test_a_branch_connecting_inside_a_round_is_told_and_stays(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": "joins-mid-round",
                "clients": [*COHORT, LATE],
                "dimension": D,
                "rounds": 1,
            },
            "backend": {"name": "plain", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = InProcessHub()
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    late = FederationClient(LATE, lambda m: np.zeros_like(m), None, policy=PLAIN)
    gave_up, joined = threading.Event(), threading.Lock()
    watched: list[WatchedEndpoint] = []
    lone: list[Party] = []

    def serve_late(endpoint: WatchedEndpoint) -> object:
        try:
            return late.serve(
                lambda timeout: endpoint,  # type: ignore[arg-type,return-value]
                idle_timeout=IDLE,
                reconnect=False,
            )
        finally:
            gave_up.set()

    def train(model: np.ndarray) -> np.ndarray:
        # inside round 1, after its start went out: the late branch connects now, and the
        # round lasts until it gave up or waits past its idle timer (a notice taken)
        with joined:
            if not watched:
                watched.append(WatchedEndpoint(hub.connect(LATE), IDLE))
                lone.append(Party(lambda: serve_late(watched[0])))
        assert wait_until(lambda: gave_up.is_set() or watched[0].long_waits >= 1)
        return np.full_like(model, 0.1)

    parties = []
    for name in COHORT:
        client = FederationClient(name, train, hub.connect(name), policy=PLAIN)
        parties.append(Party(lambda c=client: c.run(idle_timeout=BOUND)))
    (result,) = server.run(wait_for_clients=0.2, max_attempts=1)
    assert result.status == "complete", result.reason
    assert LATE not in result.participants  # the premise: it joined after the sampling
    assert lone and lone[0].done.wait(BOUND) and all(p.done.wait(BOUND) for p in parties)
    assert lone[0].error is None, f"{LATE} gave up while eligible: {lone[0].error}"
    assert lone[0].value.outcome == "finished"
    assert lone[0].value.rounds_not_sampled == 1 and lone[0].value.refused_messages == 0
