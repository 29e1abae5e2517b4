"""A key holder that reconnects between the server's look at its session and the send of
its request.

The server looked at the key holder's session (the early-close rule's reference), then
sent the round's request by name. A reconnect between the two (a restart, a redial) put
the request on the new session while the reference stayed the old one: the early-close
rule took the key holder for gone and resent the request to that same session, which
then held the round's key request twice, and the round's one resend was spent on it
(review, 2026-12-06). Now the request is bound to the session the server looked at
(``send_to_session``, as a round's participants are sent to): the new session gets
nothing of that send, and the resend is its one copy of the request.

The interleaving is forced, not raced: the hub below reconnects the key holder inside
the transport's send of its first request of round 1, after the server's look and before
the request is queued. Over the in-process hub with a real server, branches and key
holder; every wait is an event with a generous bound.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND

pytest.importorskip("tenseal")

from _keyholder_federation import ckks_config, redialing_parties

from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message
from secagg.transport.base import ClientEndpoint
from secagg.transport.inprocess import InProcessHub

NAMES = ["branch-a", "branch-b", "branch-c"]
HOLDER = "compliance"
D = 8


class _HolderReconnectsInsideTheSend(InProcessHub):
    """A hub that reconnects :data:`HOLDER` inside the send of the first message to it
    (round 1's key request), handing the new session to its redial, and records every
    message queued to that new session.

    Defines ``send`` and ``send_to_session`` side by side, as the hub does, so the server
    sends through ``send_to_session`` where it uses it."""

    def __init__(self) -> None:
        super().__init__()
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.new_session: int | None = None
        #: the requests (relays) queued to the key holder's new session, in order
        self.on_new_session: list[bytes] = []

    def _before(self, name: str) -> None:
        if name == HOLDER and self.new_session is None:
            self.disconnect(HOLDER)  # the link drops...
            fresh = self.connect(HOLDER)  # ...and the key holder is back at once
            self.new_session = fresh.session
            self.redials.put(fresh)

    def _after(self, name: str, payload: bytes) -> None:
        if (
            name == HOLDER
            and self.new_session == self.session_id(HOLDER)
            and isinstance(decode_message(payload), Relay)
        ):
            self.on_new_session.append(payload)

    def send(self, name: str, payload: bytes) -> None:
        self._before(name)
        super().send(name, payload)
        self._after(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        self._before(name)
        super().send_to_session(name, session, parts)
        self._after(name, b"".join(parts))


def test_a_key_holder_reconnected_inside_the_send_gets_its_request_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The key holder reconnects inside the send of round 1's key request. Before: the
    request went by name to its new session and was resent there (the early-close rule
    compared with the old session): the new session held the key request twice, and the
    warning said it had left after the request. Now it holds each request of the round
    once (the key request, by the resend, then the decryption request), and the round
    completes, decrypted by the reconnected key holder."""
    config = ckks_config(NAMES, HOLDER, D)
    hub = _HolderReconnectsInsideTheSend()
    parties = redialing_parties(
        config, hub, hub.redials, tmp_path / "compliance.key", NAMES, HOLDER, D
    )
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    with caplog.at_level(logging.WARNING, logger="secagg"):
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert hub.new_session is not None, "the key holder never reconnected"
    assert len(hub.on_new_session) == 2  # the key request and the decryption request
    assert len(set(hub.on_new_session)) == 2, "a request reached the new session twice"
    assert result.status == "complete", result.reason
    assert "reconnected as its request went out" in caplog.text
    assert np.max(np.abs(server.model - 0.2)) < 1e-5  # the mean of the three targets
    for name, party in parties.branches.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
    assert parties.holder_party.done.wait(BOUND)
    assert parties.holder_party.error is None, parties.holder_party.error
    assert parties.holder.sessions == 2 and parties.holder.decryptions == 1


class _HolderAwayAtTheLook(_HolderReconnectsInsideTheSend):
    """A hub whose key holder's link drops at the server's first look at its session
    (round 1's start), so it has no session when round 1's key request is dispatched,
    and which brings it back inside the first send to it, or, if none comes, at the
    server's next receive."""

    def __init__(self) -> None:
        super().__init__()
        self._dropped = False

    def session_id(self, name: str) -> int | None:
        if name == HOLDER and not self._dropped:
            self._dropped = True
            self.disconnect(HOLDER)
        return super().session_id(name)

    def _back(self) -> None:
        if self._dropped and self.new_session is None:
            fresh = self.connect(HOLDER)
            self.new_session = fresh.session
            self.redials.put(fresh)

    def _before(self, name: str) -> None:
        if name == HOLDER:
            self._back()  # back inside the send: a send by name reaches the new session

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        self._back()
        return super().receive(timeout)


def test_a_key_holder_with_no_session_at_the_look_gets_its_request_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The key holder has no session as round 1's key request is dispatched and is back
    inside the send. Before: the request went by name to the session opened after the
    server's look, which the early-close rule (comparing with no session) took for a
    restart and resent the request to: the key request twice on one session. Now a
    request is not sent by name to a helper the server saw without a session: it is sent
    when the helper is back, once, and the round completes."""
    config = ckks_config(NAMES, HOLDER, D)
    hub = _HolderAwayAtTheLook()
    parties = redialing_parties(
        config, hub, hub.redials, tmp_path / "compliance.key", NAMES, HOLDER, D
    )
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    with caplog.at_level(logging.WARNING, logger="secagg"):
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert hub.new_session is not None, "the key holder never came back"
    assert len(hub.on_new_session) == 2  # the key request and the decryption request
    assert len(set(hub.on_new_session)) == 2, "a request reached the new session twice"
    assert result.status == "complete", result.reason
    assert "is not connected; its request is sent when it is back" in caplog.text
    for name, party in parties.branches.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
    assert parties.holder_party.done.wait(BOUND)
    assert parties.holder_party.error is None, parties.holder_party.error
    assert parties.holder.sessions == 2 and parties.holder.decryptions == 1
