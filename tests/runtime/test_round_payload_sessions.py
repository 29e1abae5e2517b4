"""A round's payloads go only to the session that took the round.

The server sends a round's relays and its end by participant *name*. A branch whose
session changed mid-round (it reconnected: a dropped link, a restarted process) has a new
session that never took the round; the server already counts that participant gone from
the round (its session changed, review D6), yet it sent the rest of the round (the key
list, the neighbours' shares, the unmask request, the round's end) to the new session,
which could only drop them (runtime/client.py takes them as late since 2026-12-06). Now
the server sends nothing of the round to a session other than the round's own: the
participant is a dropout of the round, which the round's dropout handling covers, and
joins the next round on its new session.

Over the in-process hub with a real server and real branches; the reconnect is made by
the server's side of the transport at the moment the server takes the branch's k-th
message of the round (so the timing is exact, not a race), and every wait is an event
or a bounded poll with a generous bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _threads import BOUND, Party

from secagg.runtime.client import ClientStats, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import FederationEnd, Relay, RoundEnd, RoundStart, decode_message
from secagg.transport.base import ClientEndpoint
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
BOUNCER = NAMES[-1]


def _config(rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "sessions", "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            # thresholds that tolerate one dropout among the four branches
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )


class _SessionRecorder:
    """The server's side of the hub, recording the session every message went to, and
    reconnecting :data:`BOUNCER` right after the server takes its ``reconnect_after``-th
    relay of round 1: its old session ends and a new one opens, handed to the branch's
    redial (``redials``), before the server handles that relay."""

    def __init__(self, hub: InProcessHub, reconnect_after: int) -> None:
        self._hub = hub
        self._reconnect_after = reconnect_after
        self._relays = 0
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        #: (name, session id at the send, decoded message) of every send of the server
        self.sent: list[tuple[str, int | None, Any]] = []
        #: the bouncer's session ids: the one that took round 1, then the new one
        self.sessions: list[int | None] = [None]

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._hub, attribute)

    def send(self, name: str, payload: bytes) -> None:
        self.sent.append((name, self._hub.session_id(name), decode_message(payload)))
        self._hub.send(name, payload)

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = self._hub.receive(timeout)
        if item is not None and item[0] == BOUNCER:
            message = decode_message(item[1])
            if isinstance(message, Relay) and message.round == 1:
                self._relays += 1
                if self._relays == self._reconnect_after:
                    self.sessions[0] = self._hub.session_id(BOUNCER)
                    self._hub.disconnect(BOUNCER)  # the link drops...
                    fresh = self._hub.connect(BOUNCER)  # ...and the branch is back at once
                    self.sessions.append(fresh.session)
                    self.redials.put(fresh)
        return item

    def round_messages_to_other_sessions(self, number: int) -> list[tuple[str, Any]]:
        """The messages of round ``number`` the server sent the bouncer on a session that
        is not the one that took the round."""
        return [
            (type(message).__name__, session)
            for name, session, message in self.sent
            if name == BOUNCER
            and isinstance(message, (RoundStart, Relay, RoundEnd))
            and message.round == number
            and session != self.sessions[0]
        ]


def _hook(i: int):  # type: ignore[no-untyped-def]
    return lambda model: np.full_like(model, 0.01 * (i + 1))


def _redial(
    client: FederationClient, redials: queue.Queue[ClientEndpoint]
) -> Callable[[float], ClientEndpoint]:
    """A dial for ``client.serve``: first the session ``client`` was made with (taken
    from it, so that serve() opens it as its first session), then each session the test
    opened for it on a reconnect."""
    pending = [client._transport]
    client._transport = None

    def dial(timeout: float) -> ClientEndpoint:
        return pending.pop() if pending else redials.get(timeout=BOUND)

    return dial


def _start_branches(hub: InProcessHub, recorder: _SessionRecorder) -> dict[str, Party]:
    parties = {}
    for i, name in enumerate(NAMES):
        client = FederationClient(name, _hook(i), hub.connect(name))
        if name != BOUNCER:
            parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND))
            continue
        dial = _redial(client, recorder.redials)
        parties[name] = Party(
            lambda c=client, d=dial: c.serve(d, idle_timeout=BOUND, give_up_after=BOUND)
        )
    return parties


@pytest.mark.parametrize(
    "reconnect_after", [1, 2, 3], ids=["after-keys", "after-shares", "after-masked-input"]
)
def test_nothing_of_a_round_goes_to_a_session_that_did_not_take_it(
    tmp_path: Path, reconnect_after: int
) -> None:
    """A branch reconnects after the server took its k-th message of round 1 (its keys,
    its shares, its masked input). Before: the server sent its new session the rest of
    round 1 by name (the next phase's relay and the round's end: 2 messages each time).
    Now none; round 1 completes with the other three as it did, and the branch is in
    round 2 on its new session (nothing lost)."""
    hub = InProcessHub()
    recorder = _SessionRecorder(hub, reconnect_after)
    parties = _start_branches(hub, recorder)
    server = FederationServer(_config(rounds=2), recorder, ServerStore(tmp_path / "s.sqlite"))
    first, second = server.run(wait_for_clients=BOUND, max_attempts=2)
    assert len(recorder.sessions) == 2, "the bouncer never reconnected"
    assert recorder.round_messages_to_other_sessions(1) == []
    assert first.status == "complete", first.reason
    assert set(NAMES[:-1]) <= set(first.contributed)
    # a branch whose masked input arrived is in the sum (its self-mask is unmasked by
    # the others' shares) whether or not it answers the unmasking
    assert (BOUNCER in first.contributed) == (reconnect_after == 3)
    assert second.status == "complete" and second.contributed == tuple(NAMES)
    for name, party in parties.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
    bouncer: ClientStats = parties[BOUNCER].value
    assert bouncer.sessions == 2 and bouncer.rounds_lost == 1 and bouncer.rounds_completed == 1
    assert bouncer.refused_messages == 0
    # the round-2 messages and the federation's end went to the new session
    assert any(
        name == BOUNCER and session == recorder.sessions[1] and isinstance(m, FederationEnd)
        for name, session, m in recorder.sent
    )


HOLDER = "compliance"
CKKS_NAMES = ["branch-a", "branch-b", "branch-c"]
LATE = CKKS_NAMES[-1]
CKKS_D = 40


class _ReconnectsAtKeyRequest:
    """The server's side of the hub: as the server sends round 1's key request to the
    key holder (before the round's start goes to any branch), :data:`LATE`'s link drops
    and it is back at once on a new session (handed to its redial). Sets
    :attr:`others_in_and_idle` at the first receive that times out once the other
    branches' contributions of round 1 have arrived: the moment a server that took
    :data:`LATE` for gone closes the phase without it."""

    def __init__(self, hub: InProcessHub) -> None:
        self._hub = hub
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.reconnected = False
        self._contributions: set[str] = set()
        self.others_in_and_idle = threading.Event()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._hub, attribute)

    def send(self, name: str, payload: bytes) -> None:
        if name == HOLDER and not self.reconnected:
            self.reconnected = True
            self._hub.disconnect(LATE)
            self.redials.put(self._hub.connect(LATE))
        self._hub.send(name, payload)

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = self._hub.receive(timeout)
        if item is None:
            if self._contributions >= set(CKKS_NAMES) - {LATE}:
                self.others_in_and_idle.set()
        elif item[0] in CKKS_NAMES:
            self._contributions.add(item[0])
        return item


def test_a_branch_back_on_a_new_session_before_the_round_start_takes_the_round(
    tmp_path: Path,
) -> None:
    """A branch reconnects while the server waits for the CKKS key holder's key (after
    the round was sampled, before its start left). Its round start goes to its new
    session, which trains and uploads: that session is the round's for it. Before, the
    server compared with the session at the sampling, took the branch for gone, and
    closed the contribution phase as soon as the other two had uploaded: its upload,
    made on the start the server had sent it, was lost (2 of 3 contributed)."""
    pytest.importorskip("tenseal")
    from secagg.aggregation.policy import BranchPolicy
    from secagg.runtime.launch import key_holder_service, make_key_holder_key
    from secagg.transport.base import NotConnected

    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": CKKS_NAMES, "dimension": CKKS_D, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": HOLDER},
            "deadlines": {"phase_seconds": BOUND, "training_seconds": BOUND},
        }
    )
    hub = InProcessHub()
    transport = _ReconnectsAtKeyRequest(hub)
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)
    holder = key_holder_service(config, hub.connect(HOLDER), {"key": str(key)})

    def hold() -> None:
        try:
            holder.run(idle_timeout=2 * BOUND)
        except NotConnected:
            pass  # the test is over

    Party(hold)
    policy = BranchPolicy(key_holder_fingerprint=pin)
    parties = {}
    for i, name in enumerate(CKKS_NAMES):
        target = np.full(CKKS_D, 0.1 * (i + 1))

        def train(model: np.ndarray, target: np.ndarray = target, name: str = name) -> np.ndarray:
            if name == LATE:  # the last to answer: after the others, and a server tick
                transport.others_in_and_idle.wait(BOUND)
            return target - model

        client = FederationClient(name, train, hub.connect(name), policy=policy)
        if name != LATE:
            parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=1))
            continue
        dial = _redial(client, transport.redials)
        parties[name] = Party(
            lambda c=client, d=dial: c.serve(d, rounds=1, idle_timeout=BOUND, give_up_after=BOUND)
        )
    server = FederationServer(config, transport, ServerStore(tmp_path / "he.sqlite"))
    (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert transport.reconnected and transport.others_in_and_idle.is_set()
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(CKKS_NAMES)
    assert np.max(np.abs(server.model - 0.2)) < 1e-5  # the mean of the three targets
    assert parties[LATE].done.wait(BOUND)
    late: ClientStats = parties[LATE].value
    assert late.sessions == 2 and late.rounds_completed == 1 and late.rounds_lost == 0
    # nor was it told the round runs without it (the server tells a participant on a new
    # session so only once the round's start has gone out)
    assert late.rounds_not_sampled == 0 and late.refused_messages == 0
