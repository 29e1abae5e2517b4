"""A superseded session's unread messages are delivered under its name, before the new
session's, and count against the new session's budget of unread data.

Transport review (2026-12-06, noticed by helper 232): :meth:`~GrpcServerTransport.receive`
returns ``(name, message)`` with no session id, so the messages the old session had
delivered but the caller had not read yet come out after the new session opened, under
the same name. f90239c dropped them; but the runtime reads by name, round and phase, not
by session (``FederationServer._receive``), and the in-process hub delivers them, so an
honest branch's upload in the inbox as its link blipped was lost to its redial
(tests/runtime/test_grpc_upload_before_reconnect.py). Now they are delivered, in arrival
order, and counted against the new session's budget, so a branch still holds one budget
however often it reconnects (tests/transport/test_grpc_churn_unread_bound.py).

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


def test_a_superseded_sessions_unread_message_is_delivered_and_counted_as_the_new_ones(
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
    assert received == [("branch-a", OLD), ("branch-a", NEW)]
    assert held == len(OLD)  # the new session's budget holds it from its start
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("1 unread message(s) of the earlier" in line for line in lines), lines
    assert not any(OLD.decode() in line for line in lines)  # counted, never shown


def test_a_session_that_closed_cleanly_keeps_its_unread_messages(
    server: GrpcServerTransport,
) -> None:
    """What a session sent before it closed is still delivered while no new session of
    its name has opened."""
    old = _client(server)
    try:
        old.send(OLD)
        assert wait_until(lambda: server.queued_bytes("branch-a") == len(OLD), BOUND)
    finally:
        old.close()
    assert wait_until(lambda: "branch-a" not in server.connected(), BOUND)
    assert server.receive(timeout=BOUND) == ("branch-a", OLD)
