"""A payload that reaches the server twice under one name, once from a branch's old
session and once from its new one, is counted once; a payload of the old session's
round read during a round the new session is in is refused.

The transport's receive says who sent a message, not on which session, so the server
matches messages by name: an old session's last messages legitimately arrive after the
branch reconnected (review, 2026-12-06: could one be taken into a round twice, or into
the new session's round?). What rules it out is not the session but the round and the
party: every message names its round (a payload of another round is refused whatever
its session), and every backend's session takes one payload per party and phase (a
second is a DuplicateMessage). A guard, not a fix: no double count was found; taking the
duplicate check out of ``admit`` (secagg/aggregation/base.py) fails it.

Over the in-process hub with real branches (the plain backend: its sum is exact, so a
double count shows in the model). The branch's contribution is followed, in the
server's queue, by the same bytes as from its new session (a replay after a reconnect)
and by a payload of round 1 read in round 2; the other branches train only once both
are queued, so the server reads them inside round 1 and round 2 in that order, on every
run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _threads import BOUND, Party

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, RoundStart, decode_message
from secagg.transport.base import ClientEndpoint
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = ["branch-a", "branch-b", "branch-c"]
BOUNCER = NAMES[0]
TARGETS = {name: 0.1 * (i + 1) for i, name in enumerate(NAMES)}


class _ReplaysAfterReconnect(InProcessHub):
    """At the server's read of :data:`BOUNCER`'s round-1 contribution: the bouncer
    reconnects (its new session to its redial), and the same bytes are queued again
    under its name (as from the new session). At the first round start of round 2 to
    the bouncer's new session, its round-1 contribution is queued once more (an old
    session's last message read in the new session's round)."""

    def __init__(self) -> None:
        super().__init__()
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.replayed = threading.Event()
        self.contribution: bytes | None = None
        self.late_queued = False

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None and item[0] == BOUNCER and self.contribution is None:
            message = decode_message(item[1])
            if isinstance(message, Relay) and message.round == 1:
                self.contribution = item[1]
                self.disconnect(BOUNCER)
                self.redials.put(self.connect(BOUNCER))
                self._to_server.put((BOUNCER, item[1]))  # the replay, queued first
                self.replayed.set()  # only now do the others train
        return item

    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        self._late_in_round_two(name, payload)

    def send_to_session(self, name: str, session: int, parts: list[bytes]) -> None:
        super().send_to_session(name, session, parts)
        self._late_in_round_two(name, b"".join(parts))

    def _late_in_round_two(self, name: str, payload: bytes) -> None:
        if name != BOUNCER or self.late_queued or self.contribution is None:
            return
        message = decode_message(payload)
        if isinstance(message, RoundStart) and message.round == 2:
            self.late_queued = True
            self._to_server.put((BOUNCER, self.contribution))


def _redial(
    client: FederationClient, redials: queue.Queue[ClientEndpoint]
) -> Callable[[float], ClientEndpoint]:
    pending = [client._transport]
    client._transport = None

    def dial(timeout: float) -> ClientEndpoint:
        return pending.pop() if pending else redials.get(timeout=BOUND)

    return dial


def test_a_payload_from_the_old_and_the_new_session_counts_once(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "twice", "clients": NAMES, "dimension": D, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "plain"},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = _ReplaysAfterReconnect()
    policy = BranchPolicy(allow_plain=True)
    parties = {}
    for name in NAMES:

        def train(model: np.ndarray, name: str = name) -> np.ndarray:
            if name != BOUNCER:
                assert hub.replayed.wait(BOUND)
            return np.full_like(model, TARGETS[name])

        client = FederationClient(name, train, hub.connect(name), policy=policy)
        if name != BOUNCER:
            parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=2))
        else:
            dial = _redial(client, hub.redials)
            parties[name] = Party(
                lambda c=client, d=dial: c.serve(d, idle_timeout=BOUND, give_up_after=BOUND)
            )
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    first, second = server.run(wait_for_clients=BOUND, max_attempts=2)
    assert hub.replayed.is_set() and hub.late_queued
    assert first.status == "complete", first.reason
    assert first.contributed == tuple(NAMES)  # the bouncer once, not twice
    assert second.status == "complete", second.reason
    assert second.contributed == tuple(NAMES)
    # each round's mean update is the mean of the three (0.2); a double count of the
    # bouncer's 0.1 would have made round 1's (0.1 + 0.1 + 0.2 + 0.3) / 3
    assert np.allclose(server.model, 2 * 0.2)
    assert server.refused_messages == 2  # the replay (a duplicate), the late one (round 1)
    # received_from counts what a party sent, refused messages included: the bouncer's 4
    # (2 contributions taken, the replay, the late one), where it contributed twice
    assert server.received_from[BOUNCER] == 4
    assert [r.contributed.count(BOUNCER) for r in (first, second)] == [1, 1]
    for name, party in parties.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
