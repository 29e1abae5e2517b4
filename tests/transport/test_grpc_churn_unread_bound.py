"""One branch holds at most one session's budget of unread data, however often it
reconnects.

Hostile pass over the transport (2026-12-06): the bound of unread data
(``max_queued_bytes``) was a session's, and what an ended session had delivered stayed
in the server's inbox until read. The runtime's server reads only inside a round, so
between rounds a branch could fill its budget, close its session cleanly, open a new
one (ten at once, then one a second, the session rate) and fill that budget too: the
server held one budget per session it opened, against the promise of one per branch
(review finding M2: at the default 64 MiB, 640 MiB from the first burst, then 64 MiB
more a second). Now what a name's earlier sessions left unread counts against the budget
of its new session (and is still delivered: the runtime reads by name, round and phase,
tests/runtime/test_grpc_upload_before_reconnect.py), so a new session of a branch whose
budget is full is ended at its first message over it, everything unread dropped, as any
session over its budget is.

Plaintext clients on loopback, messages of 1000 bytes and a budget of four; every wait
ends on its event, with a generous bound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from _plaintext_grpc import plaintext_client, plaintext_server
from _threads import BOUND, wait_until

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport

LOGGER = "secagg.transport.grpc_transport"
SIZE, PER_SESSION, SESSIONS = 1000, 4, 3
BUDGET = SIZE * PER_SESSION


@pytest.fixture
def server() -> Iterator[GrpcServerTransport]:
    names = iter(["branch-b"])  # the first session is another branch's, then branch-a's
    with plaintext_server(
        max_message_bytes=SIZE,
        max_queued_messages=PER_SESSION,
        max_queued_bytes=BUDGET,
        identify=lambda context: next(names, "branch-a"),
        recheck_interval=None,  # identify runs once per session: the names above hold
    ) as transport:
        yield transport


def _client(server: GrpcServerTransport, name: str) -> GrpcClientTransport:
    client = plaintext_client(server, max_message_bytes=SIZE)
    assert client.connect(timeout=BOUND) == name
    return client


def _fill_and_close(server: GrpcServerTransport, mark: int) -> None:
    """One session that fills its budget with messages marked ``mark`` and closes cleanly,
    its messages left unread."""
    client = _client(server, "branch-a")
    try:
        session = server.session_id("branch-a")
        for _ in range(PER_SESSION):
            client.send(bytes([mark]) * SIZE)
        # delivered, none read: the session's budget is full
        assert wait_until(
            lambda: sum(bytes([mark]) * SIZE == m for m in _unread(server)) == PER_SESSION, BOUND
        )
    finally:
        client.close()
    assert wait_until(lambda: server.session_id("branch-a") != session, BOUND)


def _unread(server: GrpcServerTransport) -> list[bytes]:
    """The payloads in the server's inbox, oldest first (looked at, not taken)."""
    with server._lock:
        return [payload for _, payload in server._inbox]


def test_reconnecting_does_not_hold_one_budget_per_session(
    server: GrpcServerTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    other = _client(server, "branch-b")
    try:
        other.send(b"b" * SIZE)  # another branch's message, unread throughout
        assert wait_until(lambda: server.queued_bytes("branch-b") == SIZE, BOUND)
        _fill_and_close(server, 0)
        # a new session: the first one's unread messages are its budget's, which is full
        client = _client(server, "branch-a")
        try:
            assert server.queued_bytes("branch-a") == BUDGET
            try:
                client.send(bytes([1]) * SIZE)  # one more than the branch's budget
            except ConnectionError:
                pass  # the server ended the session as the send went out
            assert wait_until(lambda: "branch-a" not in server.connected(), BOUND)
        finally:
            client.close()
        assert server.queued_bytes("branch-a") == 0  # over its budget: all of it dropped
        _fill_and_close(server, SESSIONS - 1)  # a session after that has the budget again
    finally:
        other.close()
    held = server.queued_bytes("branch-a")
    assert held <= BUDGET, (
        f"one branch holds {held} unread bytes after {SESSIONS} sessions, its budget is {BUDGET}"
    )
    received = []
    while (item := server.receive(timeout=0)) is not None:
        received.append(item)
    # what is left is the other branch's and the last session's, in arrival order
    assert (
        received
        == [("branch-b", b"b" * SIZE)] + [("branch-a", bytes([SESSIONS - 1]) * SIZE)] * PER_SESSION
    )
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(f"{PER_SESSION} unread message(s) of the earlier" in line for line in lines), lines
    assert any("over its budget" in line for line in lines), lines


def test_an_ended_sessions_unread_messages_come_out_after_a_reconnect(
    server: GrpcServerTransport,
) -> None:
    """Within the budget, what an earlier session left unread is delivered after the new
    session opened, before the new session's own, counted as the new session's."""
    other = _client(server, "branch-b")  # the fixture's first name
    try:
        first = _client(server, "branch-a")
        try:
            first.send(b"old")
            assert wait_until(lambda: server.queued_bytes("branch-a") == 3, BOUND)
        finally:
            first.close()
        second = _client(server, "branch-a")
        try:
            assert server.queued_bytes("branch-a") == 3
            second.send(b"new")
            got = [server.receive(timeout=BOUND), server.receive(timeout=BOUND)]
        finally:
            second.close()
    finally:
        other.close()
    assert got == [("branch-a", b"old"), ("branch-a", b"new")]
