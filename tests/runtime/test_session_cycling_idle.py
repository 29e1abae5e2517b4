"""A server that ends the party's session every few seconds and accepts the redial cannot
keep the party waiting forever: the idle timer goes on across sessions.

Why. Each session's :meth:`FederationClient.run` (and :meth:`KeyHolderService.run`)
started its idle timer afresh, and a session that held :data:`STABLE_SESSION_SECONDS`
starts a new give-up window in the redial loop. So a server (hostile, or in a crash loop
after the handshake) that ended every session after ~10 s and accepted the next one at
once restarted both clocks each time: with ``--idle 30`` the party waited for good,
though nothing ever moved. Now the idle timer counts the time the party is *connected*
without progress, summed over its sessions; the time without a session is the redial
window's alone, so an honest server's restart (a long outage, then a prompt round) is
still ridden out.

Every clock is a fake (``time`` of the client, key holder and redial modules), moved by
the scripted sessions and the redial pauses (tests/_session_clock.py): no real waiting.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from _session_clock import (
    AnswersKeyRequests,
    ScriptedSession,
    SessionClock,
    SessionDialer,
    at_once,
    session_time,
)

import secagg.runtime.client as client_module
import secagg.runtime.keyholder as keyholder_module
import secagg.runtime.redial as redial_module
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, BranchGaveUp, FederationClient
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.redial import STABLE_SESSION_SECONDS
from secagg.runtime.wire import FederationEnd, NotSampled, Relay, encode_message
from secagg.transport.base import NotConnected
from secagg.transport.framing import MessageTooLarge

IDLE = 30.0
#: each session's life: long enough to count as a session that held (a new window)
SESSION = STABLE_SESSION_SECONDS + 0.5
#: far more sessions than IDLE / SESSION: the old code was still waiting after them all
MAX_SESSIONS = 200
FEDERATION = "cycling"


def _dialer(
    clock: SessionClock,
    scripts: list[list[bytes]],
    lives: list[float | None],
    downtime: float = 0.0,
) -> SessionDialer:
    """Hands out sessions: ``scripts[i]`` (arriving at once, and ``lives[i]``) for the
    i-th, the last one again after them; ``downtime`` fake seconds pass before each dial
    after the first; a dial after :data:`MAX_SESSIONS` fails the test."""
    plans = [(at_once(script), life) for script, life in zip(scripts, lives, strict=True)]
    return SessionDialer(clock, plans, downtime, repeat_last=True, most=MAX_SESSIONS)


@pytest.fixture
def clock() -> Iterator[SessionClock]:
    with session_time(client_module, keyholder_module, redial_module) as fake:
        yield fake


def _branch() -> FederationClient:
    return FederationClient(
        "b",
        lambda model: np.zeros_like(model),
        None,
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )


def _notice(number: int, deadline: float = 0.0) -> bytes:
    return encode_message(NotSampled(number, deadline, federation=FEDERATION))


def test_a_branch_whose_sessions_the_server_keeps_ending_gives_up_by_its_idle_timer(
    clock: SessionClock,
) -> None:
    dial = _dialer(clock, [[]], [SESSION])
    began = clock.now
    with pytest.raises(BranchGaveUp) as gave_up:
        _branch().serve(dial, idle_timeout=IDLE, give_up_after=60.0)
    connected = IDLE // SESSION + 1
    assert dial.dialled <= connected + 1, dial.dialled
    # the connected time is the idle timer's; the redial pauses (at most 4 s each) add
    assert clock.now - began <= IDLE + SESSION + dial.dialled * 5.0
    message = str(gave_up.value)
    assert "sent nothing" in message or "silent" in message, message
    assert f"over {dial.dialled} sessions" in message, message


def test_a_branch_rides_out_an_honest_restart_longer_than_its_idle_timer(
    clock: SessionClock,
) -> None:
    """The time without a session is not the server's silence: a restart that took
    three idle timers, then a notice at once and the federation's end, is seen through."""
    honest = [[_notice(1, deadline=5.0)], [_notice(2), encode_message(FederationEnd(2, True))]]
    dial = _dialer(clock, honest, [SESSION, None], downtime=3 * IDLE)
    stats = _branch().serve(dial, idle_timeout=IDLE, give_up_after=10 * IDLE)
    assert stats.outcome == "finished" and stats.rounds_not_sampled == 2


def test_progress_on_any_session_restarts_the_timer(clock: SessionClock) -> None:
    """A notice taken on the third session gives the branch a whole idle timer again,
    whatever the sessions before it used up."""
    scripts: list[list[bytes]] = [[], [], [_notice(1)], []]
    dial = _dialer(clock, scripts, [SESSION] * 4)
    with pytest.raises(BranchGaveUp):
        _branch().serve(dial, idle_timeout=IDLE, give_up_after=60.0)
    # from the notice: its round's wait (deadline 0 plus the grace), then the idle
    # timer, on the third session and those after it (the sessions lost inside the
    # round's wait do not spend the timer: test_idle_clock_round_wait_restart.py)
    after = math.ceil((IDLE + ROUND_GRACE_SECONDS) / SESSION)
    assert 2 + after <= dial.dialled <= 3 + after, dial.dialled


def test_a_key_holder_whose_sessions_the_server_keeps_ending_stops_by_its_idle_timer(
    clock: SessionClock,
) -> None:
    dial = _dialer(clock, [[]], [SESSION])
    holder = KeyHolderService("kh", None, AnswersKeyRequests())  # type: ignore[arg-type]
    began = clock.now
    holder.serve(dial, idle_timeout=IDLE, give_up_after=60.0)
    assert holder.outcome == "idle"
    assert dial.dialled <= IDLE // SESSION + 2, dial.dialled
    assert clock.now - began <= IDLE + SESSION + dial.dialled * 5.0
    assert f"over {dial.dialled} sessions" in holder.end_reason, holder.end_reason


def test_a_key_holder_rides_out_an_honest_restart_longer_than_its_idle_timer(
    clock: SessionClock,
) -> None:
    honest = [[], [encode_message(FederationEnd(2, True))]]
    dial = _dialer(clock, honest, [SESSION, None], downtime=3 * IDLE)
    holder = KeyHolderService("kh", None, AnswersKeyRequests())  # type: ignore[arg-type]
    holder.serve(dial, idle_timeout=IDLE, give_up_after=10 * IDLE)
    assert holder.outcome == "finished"


def test_the_same_request_on_every_new_session_is_no_progress(clock: SessionClock) -> None:
    """The key request of the round opened, sent again on each new session (as the
    server does after the key holder's session changed), is answered each time, but
    only the first answer restarts the timer: the round moved nowhere."""
    dial = _dialer(clock, [[encode_message(Relay(1, b"key"))]], [SESSION])
    holder = KeyHolderService("kh", None, AnswersKeyRequests())  # type: ignore[arg-type]
    holder.serve(dial, idle_timeout=IDLE, give_up_after=60.0)
    assert holder.outcome == "idle"
    assert holder.answered == dial.dialled
    assert dial.dialled <= IDLE // SESSION + 2, dial.dialled


class _LateRequestThenCut:
    """A session on which a key request arrives ``LATE`` fake seconds after it opened,
    and breaks under the key holder's reply (a network cut as the reply leaves)."""

    def __init__(self, clock: SessionClock) -> None:
        self._clock = clock
        self._sent = False

    def receive(self, timeout: float | None) -> bytes | None:
        assert timeout is not None and not self._sent
        self._clock.now += LATE
        return encode_message(Relay(1, b"key"))

    def send(self, payload: bytes) -> None:
        self._sent = True
        raise NotConnected("the session broke under the reply")

    def close(self) -> None:
        pass


LATE = IDLE - 5.0  # the request comes with 5 s of the idle timer left


def test_a_request_answered_as_the_session_broke_is_progress(clock: SessionClock) -> None:
    """The key holder answered a new request and the session broke under the reply:
    the answer was progress (the round moved: its key made, or its sum decrypted and
    counted), so the timer restarts from it. Before, the timer restarted only after
    the reply left, so with the idle timer carried across sessions the key holder gave
    up 5 s into the next session, the request's progress lost."""
    sessions: list[object] = [_LateRequestThenCut(clock)]

    def dial(timeout: float) -> object:
        if sessions:
            return sessions.pop(0)
        return ScriptedSession(clock, [], None)  # the server, back, quiet after that

    holder = KeyHolderService("kh", None, AnswersKeyRequests())  # type: ignore[arg-type]
    holder.serve(dial, idle_timeout=IDLE, give_up_after=60.0)  # type: ignore[arg-type]
    assert holder.outcome == "idle" and holder.answered == 1
    # a whole idle timer after the answer, on the second session (its redial pause aside)
    assert clock.now - (1000.0 + LATE) >= IDLE, clock.now - 1000.0


class _RefusesEveryReply:
    """A session on which ``script`` arrives one message per fake second, and whose
    transport refuses every reply (above its size limit): each request is a refused one."""

    def __init__(self, clock: SessionClock, script: list[bytes]) -> None:
        self._clock = clock
        self._script = list(script)

    def receive(self, timeout: float | None) -> bytes | None:
        assert timeout is not None
        if self._script and timeout >= 1.0:
            self._clock.now += 1.0
            return self._script.pop(0)
        self._clock.now += timeout
        return None

    def send(self, payload: bytes) -> None:
        raise MessageTooLarge("a reply above the session's max_message_bytes")

    def close(self) -> None:
        pass


def test_requests_whose_replies_the_transport_refuses_are_no_progress(clock: SessionClock) -> None:
    """Two requests alternately, each answered but its reply refused by the transport
    (so counted refused): nothing moved, and the timer runs out (a guard of the order
    in which an answer counts: before its reply leaves only when the session breaks)."""
    script = [encode_message(Relay(r, b"key")) for r in (1, 2)] * 200
    holder = KeyHolderService("kh", _RefusesEveryReply(clock, script), AnswersKeyRequests())  # type: ignore[arg-type]
    began = clock.now
    holder.run(idle_timeout=IDLE)
    assert holder.outcome == "idle" and holder.answered == 0
    assert clock.now - began <= IDLE + 1.0
