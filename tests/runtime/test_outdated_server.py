"""A branch facing a server of an older secagg release stops, saying what to upgrade.

Runtime review, 2026-12-05: a round start of an older wire version (v2, which named
no federation) was refused and the branch left that round, but kept waiting for the
next one, which it refused too, for as long as the server ran: a branch that could
never take part, saying so only in its log. It now leaves the round and stops with
:class:`~secagg.runtime.client.ServerOutdated` (one line: both versions, and that the
server is what to upgrade); ``stats.outcome`` is "outdated". An outdated message
that is not a round start is no proof of an older server and stops nothing.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from _endpoints import SentMessages, version_2_round_start

from secagg.runtime import client as client_module
from secagg.runtime.client import ClientStats, FederationClient, ServerOutdated
from secagg.runtime.wire import (
    RELAY,
    FederationEnd,
    Leave,
    OutdatedMessage,
    decode_message,
    encode_message,
)
from secagg.transport.inprocess import InProcessHub

D = 6
NAME = "branch-00"
#: generous upper bounds: only a broken branch comes near them
WAIT = 60.0


def version_2_start(number: int) -> bytes:
    return version_2_round_start(number, D)


def test_a_branch_facing_an_older_server_leaves_its_round_and_stops_in_one_line() -> None:
    """Over the in-process transport, through ``serve`` (what ``secagg client`` runs):
    the server's next message (here its end) is never waited for."""
    hub = InProcessHub()
    session = hub.connect(NAME)  # the one session the branch dials
    trained: list[int] = []
    client = FederationClient(NAME, lambda m: trained.append(1) or m, None)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def branch() -> None:
        try:
            outcome["stats"] = client.serve(lambda timeout: session, idle_timeout=WAIT)
        except Exception as exc:  # the test reads what it was
            outcome["error"] = exc
        finally:
            done.set()

    hub.send(NAME, version_2_start(4))
    # before: the branch left round 4 and waited for the next message, this end
    hub.send(NAME, encode_message(FederationEnd(4, False, "the test's end")))
    threading.Thread(target=branch, daemon=True).start()
    assert done.wait(WAIT), "the branch did not stop"
    error = outcome.get("error")
    assert isinstance(error, ServerOutdated), outcome
    text = str(error)
    assert text == (
        f"{NAME}: the server speaks an older secagg wire version (round 4's start is v2, "
        "this branch needs v3): upgrade secagg on the server to this branch's release, "
        "then start the branch again"
    )
    assert (error.round, error.version) == (4, 2)
    stats: ClientStats = error.stats
    assert stats is client.stats and stats.outcome == "outdated" and stats.end_reason == text
    assert stats.sessions == 1  # not redialled: no new session mends an older server
    assert trained == [] and stats.rounds_started == 0
    received = hub.receive(WAIT)
    assert received is not None
    assert received[0] == NAME
    assert decode_message(received[1]) == Leave(
        4, "could not take part (OutdatedMessage: upgrade secagg)"
    )


def test_an_outdated_message_other_than_a_round_start_stops_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the round start's wire version moved (the other messages are v2 at both
    ends), so no other message is outdated today; one that ever is (a stale message of
    a later change) is refused like any malformed message and the branch goes on."""

    def outdated_relay(payload: bytes) -> Any:
        raise OutdatedMessage(RELAY, 4, 1, 2)

    outbox = SentMessages()
    client = FederationClient(NAME, lambda m: m, outbox)
    with monkeypatch.context() as patched:
        patched.setattr(client_module, "decode_message", outdated_relay)
        client.handle(b"an outdated relay")
    assert client.stats.refused_messages == 1 and client.stats.outcome is None
    assert outbox.sent == []  # no round left: it was in none
    with pytest.raises(ServerOutdated):  # a round start of an older version does stop it
        client.handle(version_2_start(5))
    assert outbox.sent == [Leave(5, "could not take part (OutdatedMessage: upgrade secagg)")]
