"""A superseded session's unread messages are not delivered under its name.

Transport review (2026-12-06, noticed by helper 232): :meth:`~GrpcServerTransport.receive`
returns ``(name, message)`` with no session id. When a party's new session supersedes
its old one (a reconnect the server did not see as a loss yet, or a second process with
the same certificate), the messages the old session had delivered but the caller had not
read yet came out afterwards under the same name, while :meth:`session_id` already named
the new session: the caller took them for the new session's. Now the old session's
unread messages are dropped when the new session opens (counted in an INFO line, never their
content), as they are for a session ended for what it sent or who it is; the new
session's messages are delivered as before. (The same drop bounds what one branch holds
across sessions: tests/transport/test_grpc_churn_unread_bound.py.)

Two plaintext clients on loopback; every wait ends on its event, with a generous bound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND, wait_until

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport

LOGGER = "secagg.transport.grpc_transport"
OLD, NEW = b"of the old session", b"of the new"


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    with plaintext_server(max_message_bytes=1 << 16) as transport:
        yield transport


def _client(server: GrpcServerTransport) -> GrpcClientTransport:
    client = plaintext_client(server, max_message_bytes=1 << 16)
    assert client.connect(timeout=BOUND) == "branch-a"
    return client


def _received_until_new(server: GrpcServerTransport) -> list[tuple[str, bytes]]:
    """What the caller receives, in order, up to the new session's message."""
    received: list[tuple[str, bytes]] = []
    while not received or received[-1][1] != NEW:
        item = server.receive(timeout=BOUND)
        assert item is not None, f"the new session's message never came (got {received})"
        received.append(item)
    return received


def test_a_superseded_sessions_unread_message_is_not_delivered_under_its_name(
    server: GrpcServerTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    old = _client(server)
    new = None
    try:
        old_id = server.session_id("branch-a")
        old.send(OLD)
        # delivered to the server's inbox, not read by the caller
        assert wait_until(lambda: server.queued_bytes("branch-a") == len(OLD), BOUND)
        new = _client(server)  # supersedes the old session
        new_id = server.session_id("branch-a")
        assert new_id is not None and new_id != old_id
        held = server.queued_bytes("branch-a")
        new.send(NEW)
        received = _received_until_new(server)
    finally:
        old.close()
        if new is not None:
            new.close()
    assert received == [("branch-a", NEW)], (
        "a message of the superseded session was delivered under the name of the new one"
    )
    assert held == 0  # its memory was freed when the new session opened
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("dropped 1 unread message" in line for line in lines), lines
    assert not any(OLD.decode() in line for line in lines)  # counted, never shown


def test_a_session_that_closed_cleanly_keeps_its_unread_messages(
    server: GrpcServerTransport,
) -> None:
    """What a session sent before it closed is still delivered while no new session of
    its name has opened: the drop is a new session's, not every end's."""
    old = _client(server)
    try:
        old.send(OLD)
        assert wait_until(lambda: server.queued_bytes("branch-a") == len(OLD), BOUND)
    finally:
        old.close()
    assert wait_until(lambda: "branch-a" not in server.connected(), BOUND)
    assert server.receive(timeout=BOUND) == ("branch-a", OLD)
