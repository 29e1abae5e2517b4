"""A fake clock moved by a party's sessions, scripted sessions that the server ends after
some fake seconds, and a dial that hands them out after a downtime: for the tests of an
idle timer that goes on across sessions (tests/runtime/test_session_cycling_idle.py,
test_idle_clock_round_wait_restart.py and test_keyholder_idle_restart_mid_round.py).

Why: since a57fbc9 a party's idle timer counts the time it is *connected* without
progress, summed over its sessions, and the time without a session is the redial
window's. The cases are a server that ends every session (hostile, or crashing in a
loop) and one that restarts honestly after a long downtime: minutes of ``--idle``
(900 s by default) and of deadlines, which a real clock would make each test wait out.
Here the party's modules (client or key holder, and redial for its pauses) see
:class:`SessionClock` as their ``time`` (:func:`session_time`); a
:class:`ScriptedSession` moves it to each message's arrival, or by the whole timeout of
a receive that gets nothing, and raises :class:`NotConnected` once its fake life is
over; :class:`SessionDialer` moves it by the downtime before each redial. No real
waiting, and the count of dials shows when the party gave up. The three files had each
copied the clock, the session and the dialer (duplicates --change --base 975f052: D1,
D8, D9); the clock is :class:`~_scripted_clock.FakeClock` with a ``sleep``, which the
redial loop's pauses need.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from types import ModuleType, SimpleNamespace

import pytest
from _scripted_clock import FakeClock

from secagg.errors import MalformedMessage
from secagg.transport.base import NotConnected

#: a session's messages, each ``(delay, payload)``: ``delay`` fake seconds after the
#: message before it (the first: after the session opened)
Script = list[tuple[float, bytes]]
#: a session a dial hands out: its script, and the fake seconds after which the server
#: ends it (None: never)
SessionPlan = tuple[Script, float | None]


class SessionClock(FakeClock):
    """:class:`FakeClock` whose ``sleep`` moves it: the redial loop's pauses between
    dials pass on it too, at once."""

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@contextlib.contextmanager
def session_time(*modules: ModuleType) -> Iterator[SessionClock]:
    """A fresh :class:`SessionClock` as the ``time`` (``monotonic`` and ``sleep``) of
    each of ``modules`` until the block ends. Each module must have a ``time`` already:
    a module named by mistake then fails the set-up instead of running on a real clock."""
    clock = SessionClock()
    fake = SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep)
    with pytest.MonkeyPatch.context() as patch:
        for module in modules:
            patch.setattr(module, "time", fake)
        yield clock


def at_once(payloads: Iterable[bytes]) -> Script:
    """A script whose messages all arrive as the session opens."""
    return [(0.0, payload) for payload in payloads]


class ScriptedSession:
    """A session on which each ``(delay, payload)`` of ``script`` arrives ``delay`` fake
    seconds after the one before (the first after the session opened); the server ends
    it ``ends_after`` fake seconds after it opened (None: never): the receive whose
    timeout reaches that end before the next message raises :class:`NotConnected`, the
    clock moved to the end. A receive that gets nothing moves the clock by its timeout."""

    def __init__(self, clock: FakeClock, script: Script, ends_after: float | None) -> None:
        self._clock = clock
        self._script = list(script)
        self._ends = None if ends_after is None else clock.now + ends_after
        self._due = clock.now + (self._script[0][0] if self._script else 0.0)

    def receive(self, timeout: float | None) -> bytes | None:
        assert timeout is not None, "a wait without end"
        horizon = self._clock.now + timeout
        if (
            self._ends is not None
            and self._ends <= horizon
            and (not self._script or self._ends < self._due)
        ):
            self._clock.now = max(self._clock.now, self._ends)
            raise NotConnected("the server ended the session")
        if self._script and self._due <= horizon:
            self._clock.now = max(self._clock.now, self._due)
            _, payload = self._script.pop(0)
            if self._script:
                self._due = self._clock.now + self._script[0][0]
            return payload
        self._clock.now = horizon
        return None

    def send(self, payload: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class KeptWaiting(AssertionError):
    """The party was still dialling after the most dials a test allows: it would have
    waited for good."""


class SessionDialer:
    """The i-th dial gets a :class:`ScriptedSession` of ``sessions[i]``, built when
    dialled, after ``downtime`` fake seconds (the server's restart: no session) for each
    dial but the first. After the last plan the server is gone (:class:`NotConnected`),
    or, with ``repeat_last``, the last plan is handed out again: a server that goes on
    cycling sessions, which ``most`` dials end (:class:`KeptWaiting`) so that a party
    that never gives up fails its test instead of hanging. ``dialled`` counts the dials
    that got a session."""

    def __init__(
        self,
        clock: FakeClock,
        sessions: Iterable[SessionPlan],
        downtime: float,
        *,
        repeat_last: bool = False,
        most: int | None = None,
    ) -> None:
        self._clock, self._sessions, self._downtime = clock, list(sessions), downtime
        self._repeat_last, self._most = repeat_last, most
        self.dialled = 0

    def __call__(self, timeout: float) -> ScriptedSession:
        if self._most is not None and self.dialled >= self._most:
            raise KeptWaiting(f"still dialling after {self.dialled} sessions")
        if not self._repeat_last and self.dialled >= len(self._sessions):
            raise NotConnected("no server any more")
        if self.dialled:
            self._clock.now += self._downtime
        script, ends_after = self._sessions[min(self.dialled, len(self._sessions) - 1)]
        self.dialled += 1
        return ScriptedSession(self._clock, script, ends_after)


class AnswersKeyRequests:
    """A key holder's helper session that answers every key request (``b"key"``),
    whatever its round (the key of the round opened, answered again from what it holds,
    as the CKKS key holder does), and refuses the rest."""

    decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload == b"key":
            return b"public key"
        raise MalformedMessage("a key holder answers key requests only here")

    def refusal(self, error: BaseException) -> bytes:
        return b"refused"
