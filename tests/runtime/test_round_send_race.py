"""A reconnect between the server's look at a participant's session and its send.

The server sends a round's messages only to the session that took the round: it looks
at the participant's session (``_on_another_session``), then sends. Before, the send went
by name, so a branch that reconnected between the look and the send got the round's
message on its new session, which never took the round, while the server counted the
message delivered (review, 2026-12-06: a check-then-send race). A round start so
delivered made the new session take a round the server had recorded on the old one.
Now the transport compares the session and queues the message in one step
(``send_to_session``): the new session gets nothing of the round and the participant is
a dropout of it, whose threshold covers one; it takes the next round on its new session.

The interleaving is forced, not raced: the hub below reconnects the branch inside the
transport's send of the chosen message, after the server's look and before the
message is queued. Over the in-process hub with a real server and real branches; every
wait is an event with a generous bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _threads import BOUND, Party

from secagg.runtime.client import ClientStats, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, RoundEnd, RoundStart, decode_message
from secagg.transport.base import ClientEndpoint
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
BOUNCER = NAMES[-1]


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "race", "clients": NAMES, "dimension": D, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            # thresholds that tolerate one dropout among the four branches
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )


class _ReconnectsInsideTheSend(InProcessHub):
    """A hub that reconnects :data:`BOUNCER` inside the send of its first message of
    round 1 of the kind ``trigger`` (after the server looked at its session, before the
    message is queued), handing the new session to the branch's redial. Records every
    message of round 1 that reached the bouncer's new session.

    Defines ``send`` and ``send_to_session`` side by side, as the hub does, so the
    server sends a round's messages through ``send_to_session`` where it has one."""

    def __init__(self, trigger: type) -> None:
        super().__init__()
        self._trigger = trigger
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.new_session: int | None = None
        #: messages of round 1 queued to the bouncer's new session
        self.on_new_session: list[str] = []

    def _before(self, name: str, payload: bytes) -> Any:
        message = decode_message(payload)
        if (
            name == BOUNCER
            and self.new_session is None
            and isinstance(message, self._trigger)
            and message.round == 1
        ):
            self.disconnect(BOUNCER)  # the link drops...
            fresh = self.connect(BOUNCER)  # ...and the branch is back at once
            self.new_session = fresh.session
            self.redials.put(fresh)
        return message

    def _after(self, name: str, message: Any) -> None:
        if (
            name == BOUNCER
            and isinstance(message, (RoundStart, Relay, RoundEnd))
            and message.round == 1
            and self.new_session is not None
            and self.session_id(BOUNCER) == self.new_session
        ):
            self.on_new_session.append(type(message).__name__)

    def send(self, name: str, payload: bytes) -> None:
        message = self._before(name, payload)
        super().send(name, payload)
        self._after(name, message)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        message = self._before(name, b"".join(parts))
        super().send_to_session(name, session, parts)
        self._after(name, message)


def _redial(
    client: FederationClient, redials: queue.Queue[ClientEndpoint]
) -> Callable[[float], ClientEndpoint]:
    """``client.serve``'s dial: first the session ``client`` was made with, then each
    session the hub opened for it on a reconnect."""
    pending = [client._transport]
    client._transport = None

    def dial(timeout: float) -> ClientEndpoint:
        return pending.pop() if pending else redials.get(timeout=BOUND)

    return dial


@pytest.mark.parametrize("trigger", [RoundStart, Relay], ids=["round-start", "relay"])
def test_a_reconnect_inside_the_send_gets_nothing_of_the_round(
    tmp_path: Path, trigger: type
) -> None:
    """The bouncer reconnects inside the send of its round start (or of round 1's first
    relay to it). Before: that message was queued to its new session (1 message of round
    1 there; a start made the new session take the round). Now none: round 1 completes
    with the other three, and the bouncer takes round 2 on its new session."""
    hub = _ReconnectsInsideTheSend(trigger)
    parties = {}
    for i, name in enumerate(NAMES):
        client = FederationClient(
            name, lambda m, i=i: np.full_like(m, 0.01 * (i + 1)), hub.connect(name)
        )
        if name != BOUNCER:
            parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND))
            continue
        dial = _redial(client, hub.redials)
        parties[name] = Party(
            lambda c=client, d=dial: c.serve(d, idle_timeout=BOUND, give_up_after=BOUND)
        )
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"))
    first, second = server.run(wait_for_clients=BOUND, max_attempts=2)
    assert hub.new_session is not None, "the bouncer never reconnected"
    assert hub.on_new_session == []
    assert first.status == "complete", first.reason
    assert first.contributed == tuple(NAMES[:-1])
    assert second.status == "complete" and second.contributed == tuple(NAMES)
    for name, party in parties.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
    bouncer: ClientStats = parties[BOUNCER].value
    assert bouncer.sessions == 2 and bouncer.rounds_completed == 1
    assert bouncer.refused_messages == 0


class _ReconnectsBetweenLookups(InProcessHub):
    """A hub that reconnects :data:`BOUNCER` right after the server's first look at its
    session id while it dispatches round 1's start to it (armed by the start to the
    participant before it): between the server's looks, where the session that gets the
    start and the one the early-close rule compares with could come apart.

    Sets :attr:`others_in_and_idle` at the first receive that times out once the other
    branches' first payloads of round 1 have arrived: the moment a server that counts
    the bouncer gone closes the phase without it."""

    def __init__(self) -> None:
        super().__init__()
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.new_session: int | None = None
        self.on_new_session: list[str] = []
        self._armed = False
        self._others: set[str] = set()
        self.others_in_and_idle = threading.Event()

    def session_id(self, name: str) -> int | None:
        answer = super().session_id(name)
        if name == BOUNCER and self._armed and self.new_session is None:
            self.disconnect(BOUNCER)
            fresh = self.connect(BOUNCER)
            self.new_session = fresh.session
            self.redials.put(fresh)
        return answer

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is None:
            if self._others >= set(NAMES[:-1]):
                self.others_in_and_idle.set()
        elif item[0] in NAMES[:-1]:
            self._others.add(item[0])
        return item

    def _watch(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, RoundStart) and message.round == 1 and name == NAMES[-2]:
            self._armed = True  # the bouncer's start is next
        if (
            name == BOUNCER
            and isinstance(message, (RoundStart, Relay, RoundEnd))
            and message.round == 1
            and self.new_session is not None
            and super().session_id(BOUNCER) == self.new_session
        ):
            self.on_new_session.append(type(message).__name__)

    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        self._watch(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        super().send_to_session(name, session, parts)
        self._watch(name, b"".join(parts))


def test_a_reconnect_between_the_server_s_looks_at_a_session_is_one_or_the_other(
    tmp_path: Path,
) -> None:
    """The bouncer reconnects between the server's looks at its session as its round
    start leaves. Before: the server took its session (for the early-close rule) from the
    first look and the id the start is bound to from the second, so the start went to
    the new session, which took round 1, while the server counted the bouncer gone and
    closed the phase without its keys (on the new session: a RoundStart of round 1, the
    bouncer not among those who contributed). Now both come from one look at the id:
    the start is refused at the old session, the bouncer is a dropout of round 1 and
    nothing of it reaches the new session; round 2 has all four."""
    hub = _ReconnectsBetweenLookups()
    trained: list[int] = []

    def slow_once(model: np.ndarray) -> np.ndarray:
        trained.append(1)
        if len(trained) == 1:  # its round-1 keys would come after the others' are in
            hub.others_in_and_idle.wait(BOUND)
        return np.full_like(model, 0.04)

    parties = {}
    for i, name in enumerate(NAMES):
        hook = slow_once if name == BOUNCER else (lambda m, i=i: np.full_like(m, 0.01 * (i + 1)))
        client = FederationClient(name, hook, hub.connect(name))
        if name != BOUNCER:
            parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND))
            continue
        dial = _redial(client, hub.redials)
        parties[name] = Party(
            lambda c=client, d=dial: c.serve(d, idle_timeout=BOUND, give_up_after=BOUND)
        )
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"))
    first, second = server.run(wait_for_clients=BOUND, max_attempts=2)
    assert hub.new_session is not None, "the bouncer never reconnected"
    assert hub.on_new_session == []
    assert first.status == "complete", first.reason
    assert first.contributed == tuple(NAMES[:-1])
    assert second.status == "complete" and second.contributed == tuple(NAMES)
    for name, party in parties.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)


class _BackInsideTheSend(_ReconnectsInsideTheSend):
    """The bouncer's link drops as round 1's start goes to the participant before it (so
    it has no session as its own start is dispatched) and it is back inside the send of
    any message of round 1 to it (a send by name would reach the session opened after
    the server looked), or, if none is sent, as round 1's end goes out."""

    def __init__(self) -> None:
        super().__init__(RoundStart)
        self._away = False

    def _before(self, name: str, payload: bytes) -> Any:
        message = decode_message(payload)
        first_end = isinstance(message, RoundEnd) and name == NAMES[0]
        if isinstance(message, RoundStart) and message.round == 1 and name == NAMES[-2]:
            if not self._away:
                self._away = True
                self.disconnect(BOUNCER)
        elif self._away and self.new_session is None and (name == BOUNCER or first_end):
            # back inside the send of a message to it (if one is sent), or as round 1 ends
            fresh = self.connect(BOUNCER)
            self.new_session = fresh.session
            self.redials.put(fresh)
        return message

    def _after(self, name: str, message: Any) -> None:
        if name == NAMES[-2] and isinstance(message, RoundStart) and message.round == 1:
            return
        super()._after(name, message)


def test_a_branch_without_a_session_at_its_start_gets_nothing_of_the_round(
    tmp_path: Path,
) -> None:
    """The bouncer has no session as its round start is dispatched and is back inside
    the send. Before: the start, bound to no session, went by name to the session opened
    after the server's look. Now a round's message to a party that had no session when
    the round was bound to it is not sent: it is a dropout of round 1, and in round 2 on
    its new session."""
    hub = _BackInsideTheSend()
    parties = {}
    for i, name in enumerate(NAMES):
        client = FederationClient(
            name, lambda m, i=i: np.full_like(m, 0.01 * (i + 1)), hub.connect(name)
        )
        if name != BOUNCER:
            parties[name] = Party(lambda c=client: c.run(idle_timeout=BOUND))
            continue
        dial = _redial(client, hub.redials)
        parties[name] = Party(
            lambda c=client, d=dial: c.serve(d, idle_timeout=BOUND, give_up_after=BOUND)
        )
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"))
    first, second = server.run(wait_for_clients=BOUND, max_attempts=2)
    assert hub.new_session is not None, "the bouncer never came back"
    assert hub.on_new_session == []
    assert first.status == "complete", first.reason
    assert first.contributed == tuple(NAMES[:-1])
    assert second.status == "complete" and second.contributed == tuple(NAMES)
    for name, party in parties.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
