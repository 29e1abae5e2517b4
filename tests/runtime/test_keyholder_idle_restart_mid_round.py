"""A key holder whose server died between a round's key request and its decryption
request gives the restarted server its whole idle timer, as each session did before the
timer went on across sessions (a57fbc9).

Why. The key holder's idle timer is sized, by default, as the longest silence of the
configured server towards it: ``quorum_wait_seconds`` + ``round_seconds`` + 30 s
(:func:`secagg.runtime.launch.key_holder_idle`), the round's wait between its key
request and its decryption request included. Carried across sessions, that in-round
wait was spent when the server died late in a round: back on the restarted server, which
first waits ``--wait`` for every party and then for a quorum (each within its bound),
the key holder gave up before the next round's key request came, and the federation
stopped for want of its key holder. Now the first session lost after a request answered
anew does not spend the timer (the wait for the round's next request is no silence);
later sessions without progress do, so a server that cycles sessions still has the key
holder give up (within two timers of connected time, checked below).

Every clock is a fake (``time`` of the key holder and redial modules,
tests/_session_clock.py): no real waiting.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _session_clock import (
    AnswersKeyRequests,
    SessionClock,
    SessionDialer,
    SessionPlan,
    session_time,
)

import secagg.runtime.keyholder as keyholder_module
import secagg.runtime.redial as redial_module
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import FederationEnd, Relay, encode_message

QUORUM_WAIT, ROUND, GRACE, SERVER_WAIT = 600.0, 600.0, 30.0, 60.0
IDLE = QUORUM_WAIT + ROUND + GRACE  # key_holder_idle's default sizing
CRASH_AT = ROUND - 5.0  # the server dies as the round's decryption request is due
DOWNTIME = 120.0  # no session: the redial window's time


@pytest.fixture
def clock() -> Iterator[SessionClock]:
    with session_time(keyholder_module, redial_module) as fake:
        yield fake


def _key(number: int) -> bytes:
    return encode_message(Relay(number, b"key"))


def test_a_key_holder_rides_out_a_restart_late_in_a_round(clock: SessionClock) -> None:
    """Round 1's key request at once, the server dead CRASH_AT s later; back after
    DOWNTIME, it waits SERVER_WAIT for every party and then most of its quorum wait,
    then opens round 2 and ends the federation."""
    restarted = [
        (SERVER_WAIT + QUORUM_WAIT - 10.0, _key(2)),
        (0.0, encode_message(FederationEnd(2, True))),
    ]
    dial = SessionDialer(clock, [([(0.0, _key(1))], CRASH_AT), (restarted, None)], DOWNTIME)
    holder = KeyHolderService("kh", None, AnswersKeyRequests())  # type: ignore[arg-type]
    holder.serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)  # type: ignore[arg-type]
    assert holder.outcome == "finished", holder.end_reason
    assert holder.answered == 2


def test_a_server_cycling_sessions_after_a_request_still_is_given_up(clock: SessionClock) -> None:
    """The guard: one key request, then sessions ended every 60 s with nothing on them:
    the key holder stops within two idle timers of connected time, not never."""
    sessions: list[SessionPlan] = [([(0.0, _key(1))], 60.0)]
    sessions += [([], 60.0)] * 200
    dial = SessionDialer(clock, sessions, DOWNTIME)
    holder = KeyHolderService("kh", None, AnswersKeyRequests())  # type: ignore[arg-type]
    began = clock.now
    holder.serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)  # type: ignore[arg-type]
    assert holder.outcome == "idle"
    connected = clock.now - began - (dial.dialled - 1) * DOWNTIME
    assert connected <= 2 * IDLE + 60.0, connected
    assert dial.dialled < 200
