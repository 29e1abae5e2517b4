"""A CKKS key holder whose link drops inside the send of the round's decryption request,
with no new session yet.

Before: the send failed (NotConnected) while the server's look had seen a session, so
the round was aborted at once ("could not send to the key holder ...") although the
one-resend rule exists for exactly a key holder that comes back within the phase's
deadline: every branch's upload of the round was lost to a dropped link. Now the request
is sent when the key holder is back, as the round's one resend, and the round completes.

Why this is sound under the threat model: the resend is the round's only one (a key
holder that drops again aborts the round, naming it), and the key holder decrypts a
round at most once on its own (its durable decryption record; a session that broke
under its reply is answered with that very reply), so a flapping key holder never makes
the server obtain two decryptions of one round.

The drop is forced, not raced: the hub ends the key holder's session inside the send of
its second request (the decryption request) and opens its new session at the server's
next receive. Over the in-process hub with a real server, branches and key holder; every
wait is an event with a generous bound.
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
#: the request whose send the link drops in: 1 the key request, 2 the decryption request
DROPPED_REQUEST = 2


class _HolderDropsInsideTheSend(InProcessHub):
    """Ends :data:`HOLDER`'s session inside the send of its :data:`DROPPED_REQUEST`-th
    request (the message is not queued: the send raises NotConnected), and opens its new
    session, handed to its redial, at the server's next receive."""

    def __init__(self) -> None:
        super().__init__()
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.requests = 0
        self.dropped = False
        self.new_session: int | None = None
        #: the requests queued to the key holder's new session, in order
        self.on_new_session: list[bytes] = []

    def _before(self, name: str, payload: bytes) -> None:
        if name != HOLDER or not isinstance(decode_message(payload), Relay):
            return
        self.requests += 1
        if self.requests == DROPPED_REQUEST and not self.dropped:
            self.dropped = True
            self.disconnect(HOLDER)

    def _after(self, name: str, payload: bytes) -> None:
        if (
            name == HOLDER
            and self.new_session is not None
            and self.new_session == self.session_id(HOLDER)
            and isinstance(decode_message(payload), Relay)
        ):
            self.on_new_session.append(payload)

    def send(self, name: str, payload: bytes) -> None:
        self._before(name, payload)
        super().send(name, payload)
        self._after(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        payload = b"".join(parts)
        self._before(name, payload)
        super().send_to_session(name, session, parts)
        self._after(name, payload)

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        if self.dropped and self.new_session is None:
            fresh = self.connect(HOLDER)
            self.new_session = fresh.session
            self.redials.put(fresh)
        return super().receive(timeout)


def test_a_key_holder_dropped_inside_the_decryption_send_is_resent_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the round aborted ("could not send to the key holder compliance ...
    NotConnected"). Now the decryption request reaches the key holder's new session
    once, it decrypts once, and the round completes with the mean of the targets."""
    config = ckks_config(NAMES, HOLDER, D)
    hub = _HolderDropsInsideTheSend()
    parties = redialing_parties(
        config, hub, hub.redials, tmp_path / "compliance.key", NAMES, HOLDER, D
    )
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    with caplog.at_level(logging.WARNING, logger="secagg"):
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert hub.dropped, "the key holder's link never dropped"
    assert result.status == "complete", result.reason
    assert len(hub.on_new_session) == 1  # the decryption request, resent once
    assert "left as its request went out" in caplog.text
    assert np.max(np.abs(server.model - 0.2)) < 1e-5  # the mean of the three targets
    for name, party in parties.branches.items():
        assert party.done.wait(BOUND), name
        assert party.error is None, (name, party.error)
    assert parties.holder_party.done.wait(BOUND)
    assert parties.holder_party.error is None, parties.holder_party.error
    assert parties.holder.sessions == 2 and parties.holder.decryptions == 1
