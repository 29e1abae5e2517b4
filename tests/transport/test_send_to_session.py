"""``send_to_session``: a message queued to a party only while its open session is the
one named, compared and queued in one step (see :mod:`secagg.transport.base`).

Why: the server looked at a participant's session and then sent by name, so a reconnect
between the two put a round's message on a new session that never took the round
(``tests/runtime/test_round_send_race.py`` forces that interleaving through the server).
Here each transport's own promise: the named session gets the message, any other
session or none gets a NotConnected and nothing is queued. The gRPC server is driven
below gRPC (never started, its sessions made by hand): the check is the transport's
bookkeeping, not the network's.
"""

from __future__ import annotations

import pytest

from secagg.transport.base import NotConnected
from secagg.transport.grpc_transport import GrpcServerTransport, _Session
from secagg.transport.inprocess import InProcessHub


def test_the_hub_queues_to_the_named_session_only() -> None:
    hub = InProcessHub()
    first = hub.connect("branch-a")
    hub.send_to_session("branch-a", first.session, [b"he", b"llo"])
    assert first.receive(timeout=0.0) == b"hello"
    first.close()
    second = hub.connect("branch-a")  # back at once under the same name
    with pytest.raises(NotConnected, match="another session"):
        hub.send_to_session("branch-a", first.session, [b"late"])
    assert second.receive(timeout=0.0) is None  # nothing reached the new session
    second.close()
    with pytest.raises(NotConnected, match="not connected"):
        hub.send_to_session("branch-a", second.session, [b"gone"])


def test_the_grpc_server_queues_to_the_named_session_only() -> None:
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "unused",
    )
    old = _Session("branch-a", "peer-a", None, {}, None)  # type: ignore[arg-type]
    new = _Session("branch-a", "peer-a", None, {}, None)  # type: ignore[arg-type]
    old.id, new.id = 1, 2
    server._sessions["branch-a"] = old
    server.send_to_session("branch-a", 1, [b"he", b"llo"])
    assert old.outbox.qsize() == 1 and old.outbox_bytes == 5
    server._sessions["branch-a"] = new  # the branch reconnected
    with pytest.raises(NotConnected, match="another session"):
        server.send_to_session("branch-a", 1, [b"late"])
    assert new.outbox.qsize() == 0 and new.outbox_bytes == 0
    del server._sessions["branch-a"]
    with pytest.raises(NotConnected, match="not connected"):
        server.send_to_session("branch-a", 2, [b"gone"])
