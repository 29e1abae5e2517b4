"""A branch that waited inside a round (or a round it was told it is not sampled for)
when its server restarted gives the restarted server a whole idle timer to start the
next round: the wait for a deadline the branch was told is no silence.

Why. Since the idle timer goes on across sessions (connected time without progress,
a57fbc9), the time a branch spent waiting for its round's deadline (others training, a
slow phase) before the session was lost counted as the server's silence. Inside one
session that time never matters (an honest server ends the round, which restarts the
timer), but a server that crashes mid-round never ends it: the branch came back to the
restarted server with the in-round wait used up, and gave up while the restarted server
waited for its quorum, within ``quorum_wait_seconds`` (600 s), below ``--idle`` (900 s):
the very sizing ``secagg client --idle`` asks for. Before a57fbc9 each session began the
timer afresh and the branch took the next round.

A hostile server gains nothing: the deadline windows are set by messages that moved the
branch (a round start, a notice taken), fixed when they are taken, so a server that
cycles sessions still has the branch give up after the window and ``--idle`` of
connected time (checked below too).

Every clock is a fake (``time`` of the client and redial modules, tests/_session_clock.py):
no real waiting.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from _session_clock import SessionClock, SessionDialer, SessionPlan, session_time

import secagg.runtime.client as client_module
import secagg.runtime.redial as redial_module
from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, BranchGaveUp, FederationClient
from secagg.runtime.wire import FederationEnd, NotSampled, RoundStart, encode_message

IDLE = 900.0  # secagg client --idle's default
DEADLINE = 600.0  # deadlines.round_seconds' default: what the round start names
QUORUM_WAIT = 590.0  # the restarted server's wait for a quorum: within quorum_wait_seconds
DOWNTIME = 300.0  # the restart: no session (the redial window's time, not the idle's)
CRASH_AT = DEADLINE - 10.0  # the server dies late in the round the branch waits in
FEDERATION = "restart-mid-round"
D = 4


@pytest.fixture
def clock() -> Iterator[SessionClock]:
    with session_time(client_module, redial_module) as fake:
        yield fake


def _start(number: int) -> bytes:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, DEADLINE, federation=FEDERATION)
    )


def _notice(number: int) -> bytes:
    return encode_message(NotSampled(number, DEADLINE, federation=FEDERATION))


def _end(number: int) -> bytes:
    return encode_message(FederationEnd(number, True))


def _branch() -> FederationClient:
    return FederationClient(
        "b",
        lambda model: np.zeros_like(model),
        None,
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )


@pytest.mark.parametrize("waiting_in", ["its own round", "a round it is not sampled for"])
def test_a_branch_waiting_for_a_deadline_rides_out_the_servers_restart(
    clock: SessionClock, waiting_in: str
) -> None:
    """Round 1 (its start or its notice) at once, then nothing for CRASH_AT s: the
    server dies; it is back after DOWNTIME, waits QUORUM_WAIT (< IDLE) for a quorum,
    then tells the branch of round 2 and ends the federation."""
    first = _start(1) if waiting_in == "its own round" else _notice(1)
    restarted = [(QUORUM_WAIT, _notice(2)), (0.0, _end(2))]
    dial = SessionDialer(clock, [([(0.0, first)], CRASH_AT), (restarted, None)], DOWNTIME)
    stats = _branch().serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)
    assert stats.outcome == "finished", stats.end_reason
    assert stats.rounds_not_sampled == (1 if waiting_in == "its own round" else 2)


def test_a_server_cycling_sessions_inside_a_round_still_is_given_up(clock: SessionClock) -> None:
    """The guard: a round start, then a session ended every 60 s with nothing on it.
    The branch waits the round's deadline (plus the grace) and then ``IDLE`` of connected
    time, not one idle timer a session: the window is the round start's, fixed."""
    sessions: list[SessionPlan] = [([(0.0, _start(1))], 60.0)]
    sessions += [([], 60.0)] * 200
    dial = SessionDialer(clock, sessions, DOWNTIME)
    began = clock.now
    with pytest.raises(BranchGaveUp):
        _branch().serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)
    connected = clock.now - began - (dial.dialled - 1) * DOWNTIME
    assert connected <= DEADLINE + ROUND_GRACE_SECONDS + IDLE + 60.0, connected
    assert dial.dialled < 200


@pytest.mark.parametrize("left_out", ["not sampled", "its session lost"])
def test_a_branch_out_of_a_round_gives_the_server_its_idle_timer_after_the_deadline(
    clock: SessionClock, left_out: str
) -> None:
    """One session, an honest server: round 1 runs without the branch (it is told so,
    or its session was lost inside the round); the round takes its whole deadline, and
    the server then waits QUORUM_WAIT (< IDLE, as ``--idle`` is sized) for a quorum
    before round 2. The branch heard nothing since the notice (no round's end comes to
    a branch out of the round), so its timer ran from the notice, inside the round: it
    gave up IDLE after it, while the server waited for its quorum. Now the timer counts
    from the round's deadline (plus the grace), as a branch in the round counts from its
    end."""
    if left_out == "not sampled":
        later = [(DEADLINE + QUORUM_WAIT, _notice(2)), (0.0, _end(2))]
        sessions = [([(0.0, _notice(1)), *later], None)]
    else:  # its round start, its session lost after 1 s, back 1 s later
        later = [(DEADLINE + QUORUM_WAIT - 2.0, _notice(2)), (0.0, _end(2))]
        sessions = [([(0.0, _start(1))], 1.0), (later, None)]
    dial = SessionDialer(clock, sessions, downtime=1.0)
    stats = _branch().serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)
    assert stats.outcome == "finished", stats.end_reason
