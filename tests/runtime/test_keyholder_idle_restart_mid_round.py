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

Every clock is a fake (``time`` of the key holder and redial modules): no real waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

import secagg.runtime.keyholder as keyholder_module
import secagg.runtime.redial as redial_module
from secagg.errors import MalformedMessage
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import FederationEnd, Relay, encode_message
from secagg.transport.base import NotConnected

QUORUM_WAIT, ROUND, GRACE, SERVER_WAIT = 600.0, 600.0, 30.0, 60.0
IDLE = QUORUM_WAIT + ROUND + GRACE  # key_holder_idle's default sizing
CRASH_AT = ROUND - 5.0  # the server dies as the round's decryption request is due
DOWNTIME = 120.0  # no session: the redial window's time


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    fake_time = SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep)
    for module in (keyholder_module, redial_module):
        monkeypatch.setattr(module, "time", fake_time)
    return fake


class _Session:
    """Answers every key request (``b"key"``), whatever its round."""

    decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload == b"key":
            return b"public key"
        raise MalformedMessage("key requests only")

    def refusal(self, error: BaseException) -> bytes:
        return b"refused"


class _Scripted:
    """``(delay, payload)`` each ``delay`` fake seconds after the one before; the server
    ends the session ``ends_after`` fake seconds after it opened (None: never)."""

    def __init__(
        self, clock: _Clock, script: list[tuple[float, bytes]], ends_after: float | None
    ) -> None:
        self._clock, self._script = clock, list(script)
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
            raise NotConnected("the server process died")
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


def _dialer(
    clock: _Clock, sessions: list[tuple[list[tuple[float, bytes]], float | None]]
) -> tuple[Callable[[float], _Scripted], list[int]]:
    """A dial handing out ``sessions`` in turn (DOWNTIME before each after the first),
    and the count of dials."""
    dialled = [0]

    def dial(timeout: float) -> _Scripted:
        if not sessions:
            raise NotConnected("no server any more")
        if dialled[0]:
            clock.now += DOWNTIME
        dialled[0] += 1
        script, ends_after = sessions.pop(0)
        return _Scripted(clock, script, ends_after)

    return dial, dialled


def _key(number: int) -> bytes:
    return encode_message(Relay(number, b"key"))


def test_a_key_holder_rides_out_a_restart_late_in_a_round(clock: _Clock) -> None:
    """Round 1's key request at once, the server dead CRASH_AT s later; back after
    DOWNTIME, it waits SERVER_WAIT for every party and then most of its quorum wait,
    then opens round 2 and ends the federation."""
    restarted = [
        (SERVER_WAIT + QUORUM_WAIT - 10.0, _key(2)),
        (0.0, encode_message(FederationEnd(2, True))),
    ]
    dial, _ = _dialer(clock, [([(0.0, _key(1))], CRASH_AT), (restarted, None)])
    holder = KeyHolderService("kh", None, _Session())  # type: ignore[arg-type]
    holder.serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)  # type: ignore[arg-type]
    assert holder.outcome == "finished", holder.end_reason
    assert holder.answered == 2


def test_a_server_cycling_sessions_after_a_request_still_is_given_up(clock: _Clock) -> None:
    """The guard: one key request, then sessions ended every 60 s with nothing on them:
    the key holder stops within two idle timers of connected time, not never."""
    sessions: list[tuple[list[tuple[float, bytes]], float | None]] = [([(0.0, _key(1))], 60.0)]
    sessions += [([], 60.0)] * 200
    dial, dialled = _dialer(clock, sessions)
    holder = KeyHolderService("kh", None, _Session())  # type: ignore[arg-type]
    began = clock.now
    holder.serve(dial, idle_timeout=IDLE, give_up_after=2 * DOWNTIME)  # type: ignore[arg-type]
    assert holder.outcome == "idle"
    connected = clock.now - began - (dialled[0] - 1) * DOWNTIME
    assert connected <= 2 * IDLE + 60.0, connected
    assert dialled[0] < 200
