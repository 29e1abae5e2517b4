"""A branch whose session drops inside a round it was sampled for: what it waits for on
its new session, and which of the server's next messages it takes.

Why. The server sends nothing of a round to a session that did not take it
(``FederationServer._send``: a participant that reconnected is gone from the round, its
end included), so on its new session a branch hears no more of that round: not its end,
and, as it was sampled, no :class:`~secagg.runtime.wire.NotSampled` notice either.

* A branch that had *left* the round (its training failed, or its policy refused the
  round and it skips refused rounds) before the loss kept the round's end due for good:
  it refused the next round's not-sampled notice as "sent while this branch's round is
  in flight", went back on its idle timer and gave up (``BranchGaveUp``) while still
  eligible; and the round it left was never counted as left (only, at the next start
  it took, as lost).
* A branch still *in* the round when its session dropped waited on its idle timer
  alone (``secagg client --idle``), although it knows the round runs on without it
  until the deadline its round start named: a round longer than the idle timer made it
  give up while eligible, the failure the not-sampled notice exists to prevent.
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.wire import NotSampled, RoundEnd, RoundStart, encode_message
from secagg.transport.inprocess import InProcessHub

D = 4
IDLE = 0.5  # the branch's idle timer: far below the round's deadline
DEADLINE = 100.0  # the round deadline each round start names
FEDERATION = "reconnect-mid-round"


def _start(number: int) -> bytes:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, DEADLINE, federation=FEDERATION)
    )


def _notice(number: int) -> bytes:
    return encode_message(NotSampled(number, DEADLINE, federation=FEDERATION))


def _failing_hook(model: np.ndarray) -> np.ndarray:
    raise RuntimeError("the branch's data store is offline")


def _branch(how: str) -> FederationClient:
    """A branch that takes round 1 and, by ``how``, stays in it, leaves it (its training
    fails) or refuses it by its policy (a plain round it does not accept; it skips)."""
    hub = InProcessHub()
    if how == "left":
        return FederationClient(
            "b", _failing_hook, hub.connect("b"), policy=BranchPolicy(allow_plain=True)
        )
    if how == "refused":
        return FederationClient(
            "b", lambda m: np.zeros_like(m), hub.connect("b"), stop_on_refusal=False
        )
    return FederationClient(
        "b", lambda m: np.zeros_like(m), hub.connect("b"), policy=BranchPolicy(allow_plain=True)
    )


def _ended(client: FederationClient) -> tuple[int, int, int, int, int]:
    s = client.stats
    return s.rounds_completed, s.rounds_aborted, s.rounds_refused, s.rounds_left, s.rounds_lost


@pytest.mark.parametrize("how", ["left", "refused"])
def test_a_branch_out_of_its_round_takes_the_next_notice_after_a_reconnect(how: str) -> None:
    client = _branch(how)
    client.handle(_start(1))
    assert client.stats.rounds_started == 1
    client.reconnected(InProcessHub().connect("b"))  # round 1's end never reaches here
    client.handle(_notice(2))
    assert client.stats.refused_messages == 0, "the next round's notice was refused"
    assert client.stats.rounds_not_sampled == 1
    assert client._wait(IDLE) > DEADLINE + ROUND_GRACE_SECONDS - 5


@pytest.mark.parametrize(
    ("how", "counted"),
    [("left", (0, 0, 0, 1, 0)), ("refused", (0, 0, 1, 0, 0)), ("in", (0, 0, 0, 0, 1))],
)
def test_the_round_is_counted_once_at_the_reconnect_whatever_comes_after(
    how: str, counted: tuple[int, ...]
) -> None:
    """Left: counted left at the loss (its end no longer comes); refused: as refused,
    once; in flight: lost. An end that still arrives (a transport that cannot tell
    sessions apart sends by name) is taken quietly, and a second reconnect counts
    nothing again."""
    client = _branch(how)
    client.handle(_start(1))
    client.reconnected(InProcessHub().connect("b"))
    assert _ended(client) == counted
    assert client.stats.rounds_ended + client.stats.rounds_lost == client.stats.rounds_started
    client.reconnected(InProcessHub().connect("b"))
    client.handle(encode_message(RoundEnd(1, True)))
    assert _ended(client) == counted
    assert client.stats.refused_messages == 0
    client.handle(_start(2))  # not superseded: round 1 was counted already
    assert client.stats.rounds_lost == counted[-1]


def test_a_branch_whose_session_dropped_in_its_round_waits_out_the_rounds_deadline() -> None:
    client = _branch("in")
    client.handle(_start(1))
    client.reconnected(InProcessHub().connect("b"))
    assert client.stats.rounds_lost == 1
    # the round runs on without it until its deadline: not the idle timer alone
    assert client._wait(IDLE) > DEADLINE + ROUND_GRACE_SECONDS - 5
    assert client._wait(None) is None  # no idle limit: still none


def test_the_lost_rounds_deadline_gives_way_to_what_the_server_says_next() -> None:
    """The kept deadline ends with the lost round's end, or the branch's next round."""
    client = _branch("in")
    client.handle(_start(1))
    client.reconnected(InProcessHub().connect("b"))
    client.handle(encode_message(RoundEnd(1, True)))  # by name, on a transport without ids
    assert client._wait(IDLE) == IDLE
    other = _branch("in")
    other.handle(_start(1))
    other.reconnected(InProcessHub().connect("b"))
    other.handle(_start(2))
    other.handle(encode_message(RoundEnd(2, True)))
    assert other._wait(IDLE) == IDLE
    assert other.stats.rounds_lost == 1 and other.stats.rounds_completed == 1


def test_a_branch_that_skips_a_refused_round_waits_out_its_deadline() -> None:
    """The same wait for a round the branch refused by its policy (and skips): the round
    runs on without it until its deadline, across a reconnect too, and ends with the
    round's end."""
    client = _branch("refused")
    client.handle(_start(1))
    assert client.stats.rounds_refused == 1
    assert client._wait(IDLE) > DEADLINE + ROUND_GRACE_SECONDS - 5
    client.reconnected(InProcessHub().connect("b"))
    assert client._wait(IDLE) > DEADLINE + ROUND_GRACE_SECONDS - 5
    client.handle(encode_message(RoundEnd(1, False, "dropouts")))
    assert client._wait(IDLE) == IDLE
    assert client.stats.refused_messages == 0 and client.stats.rounds_refused == 1
