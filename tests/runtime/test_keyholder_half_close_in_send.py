"""A CKKS key holder that closes its session (a half-close: its normal end, a restart)
as the round's decryption request goes out gets the request again when it is back.

Certificate and transport review (2026-12-07): since a send to a session whose client
has half-closed raises instead of being queued behind the end of the stream and lost
(tests/transport/test_grpc_send_after_half_close.py), the server's runtime met a
:class:`~secagg.transport.base.NotConnected` for a session still listed, under the same
id, until its call ends. It took the key holder for one it could not reach and aborted
the round at once ("could not send to the key holder ..."), every branch's upload lost,
where a key holder whose link dropped inside the send gets the request again on its new
session, the round's one resend (tests/runtime/test_keyholder_drop_in_send.py). The
transport now says which it is (:class:`~secagg.transport.base.PeerClosing`), and the
runtime treats it as the drop it is: nothing more can come on that session.

Forced, not raced: the hub refuses the decryption request as gRPC's server does for a
half-closed session (the session stays listed), ends that session at the server's next
receive (the key holder took the server's end of the stream) and opens its new session.
In process, a real server, branches and key holder; every wait is an event with a
generous bound.
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
from secagg.transport.base import ClientEndpoint, NotConnected, PeerClosing
from secagg.transport.inprocess import InProcessHub

NAMES = ["branch-a", "branch-b", "branch-c"]
HOLDER = "compliance"
D = 8
#: the request the key holder half-closes under: 2, the decryption request
CLOSED_UNDER_REQUEST = 2


class _HolderHalfClosesInTheSend(InProcessHub):
    """Refuses :data:`HOLDER`'s :data:`CLOSED_UNDER_REQUEST`-th request as a half-closed
    session does (nothing queued, the session still listed), then, at the server's next
    receive, ends that session and opens the key holder's new one for its redial."""

    def __init__(self) -> None:
        super().__init__()
        self.redials: queue.Queue[ClientEndpoint] = queue.Queue()
        self.requests = 0
        self.closing: int | None = None  # the half-closed session's id
        self.new_session: int | None = None
        #: the requests queued to the key holder's new session, in order
        self.on_new_session: list[bytes] = []

    def _before(self, name: str, payload: bytes) -> None:
        if name != HOLDER or not isinstance(decode_message(payload), Relay):
            return
        self.requests += 1
        if self.requests == CLOSED_UNDER_REQUEST and self.closing is None:
            self.closing = self.session_id(HOLDER)
            raise PeerClosing(f"client {HOLDER!r} closed its session: nothing more is written")

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
        if self.closing is not None and self.new_session is None:
            self.disconnect(HOLDER)  # the call ends: the key holder took the end
            fresh = self.connect(HOLDER)
            self.new_session = fresh.session
            self.redials.put(fresh)
        return super().receive(timeout)


def test_peer_closing_is_a_kind_of_not_connected() -> None:
    """Every sender that handles NotConnected (a branch's send: a dropout) still does."""
    assert issubclass(PeerClosing, NotConnected)
    assert issubclass(PeerClosing, ConnectionError)


def test_a_key_holder_closing_its_session_under_the_request_is_sent_it_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the round aborted ("could not send to the key holder compliance ...
    PeerClosing"). Now the decryption request reaches the key holder's new session once,
    it decrypts once, and the round completes with the mean of the targets."""
    config = ckks_config(NAMES, HOLDER, D)
    hub = _HolderHalfClosesInTheSend()
    parties = redialing_parties(
        config, hub, hub.redials, tmp_path / "compliance.key", NAMES, HOLDER, D
    )
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    with caplog.at_level(logging.WARNING, logger="secagg"):
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert hub.closing is not None, "the key holder never half-closed under a request"
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
