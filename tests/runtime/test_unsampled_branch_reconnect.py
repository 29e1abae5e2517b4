"""A branch left out of a round keeps waiting that round's deadline when its session
drops and comes back inside the round.

Why: a :class:`~secagg.runtime.wire.NotSampled` notice tells a branch the round runs
without it and for how long, so its idle timer (``secagg client --idle``) does not run
out while the round goes on. The server tells each client once a round, by name
(``FederationServer._tell_unsampled``), never again a session that reconnects inside
the round, yet the branch dropped the deadline it had been told at every new
session ("the server says it again"): a connection blip inside a long round of which it
was left out put it back on its idle timer, and it gave up (``BranchGaveUp``) while
still eligible, the very failure the notice was added for. The deadline told is a time
on this process's monotonic clock, the same on any session to the same server.
"""

from __future__ import annotations

import numpy as np

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.wire import NotSampled, RoundEnd, RoundStart, encode_message
from secagg.transport.inprocess import InProcessHub

D = 4
IDLE = 0.5  # the branch's idle timer: far below the round's deadline
DEADLINE = 120.0
FEDERATION = "unsampled-reconnect"


def _branch() -> tuple[FederationClient, InProcessHub]:
    hub = InProcessHub()
    client = FederationClient(
        "b", lambda m: np.zeros_like(m), hub.connect("b"), policy=BranchPolicy(allow_plain=True)
    )
    return client, hub


def _notice(number: int) -> bytes:
    return encode_message(NotSampled(number, DEADLINE, federation=FEDERATION))


def _start(number: int) -> bytes:
    """A plain round's start naming a 100 s round deadline."""
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, 100.0, federation=FEDERATION)
    )


def test_a_reconnect_inside_a_round_left_out_of_keeps_its_deadline() -> None:
    client, _ = _branch()
    client.handle(_notice(1))
    assert client._wait(IDLE) > DEADLINE + ROUND_GRACE_SECONDS - 5
    client.reconnected(InProcessHub().connect("b"))  # a blip: a new session inside round 1
    assert client.stats.rounds_lost == 0  # no round of its own was in flight
    assert client._wait(IDLE) > DEADLINE + ROUND_GRACE_SECONDS - 5
    # the server does not say it again, and a repeat would be refused as a replay anyway
    client.handle(_notice(1))
    assert client.stats.refused_messages == 1 and client.stats.rounds_not_sampled == 1


def test_the_kept_deadline_ends_with_the_branchs_next_round() -> None:
    """Kept across sessions, the told deadline still gives way to the branch's own round
    (whose deadline the round start names) and is gone after it."""
    client, _ = _branch()
    client.handle(_notice(1))
    client.reconnected(InProcessHub().connect("b"))
    client.handle(_start(2))
    assert client._wait(IDLE) <= 100.0 + ROUND_GRACE_SECONDS
    client.handle(encode_message(RoundEnd(2, True)))
    assert client._wait(IDLE) == IDLE
