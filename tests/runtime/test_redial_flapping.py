"""A server that ends every session as soon as it opens is not redialled forever
(runtime review, 2026-12-06).

Before: every session opened reset the back-off and the give-up window, so a server that
accepted each session and ended it at once (a crash loop after the handshake, a hostile
server) was redialled every 0.25 s without end, two WARNING lines a session (measured:
119 sessions, 238 lines in 30 s). Now a session lost within
:data:`~secagg.runtime.redial.STABLE_SESSION_SECONDS` of opening, after an earlier loss,
is no new start: the pauses grow to the cap and the party gives up ``give_up_after``
seconds after the streak's first loss. A session that held still starts afresh.

Run on a simulated clock (the module's ``time``): no test waits for real.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.runtime import redial
from secagg.transport.base import NotConnected

#: far more sessions than any bounded redialling opens in the windows used here: past
#: it the loop is taken for endless (the test fails rather than hang)
ENDLESS = 10_000


class _Clock:
    """The redial module's ``time``: monotonic reads it, sleep advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += max(0.0, seconds)


class _Server:
    """Accepts every dial; the session it opens lasts ``lasts[i]`` simulated seconds and
    is then lost (the last duration repeats); after ``sessions`` sessions it serves."""

    def __init__(self, clock: _Clock, lasts: list[float], sessions: int = ENDLESS) -> None:
        self.clock, self.lasts, self.sessions = clock, lasts, sessions
        self.opened = 0

    def dial(self, timeout: float) -> int:
        self.opened += 1
        assert self.opened <= ENDLESS, "redialled without end"
        return self.opened

    def serve(self, session: int) -> str:
        if session > self.sessions:
            return "served"
        self.clock.now += self.lasts[min(session - 1, len(self.lasts) - 1)]
        raise NotConnected("server ended the session")


def _run(server: _Server, give_up_after: float | None = 600.0) -> str:
    return redial.serve_sessions(
        logging.getLogger("test.redial.flapping"),
        "branch-a",
        server.dial,
        server.serve,
        opened=lambda: server.opened,
        gave_up=lambda message, cause: NotConnected(message),
        connect_timeout=30.0,
        give_up_after=give_up_after,
        reconnect=True,
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(redial, "time", fake)
    return fake


def test_sessions_ended_at_once_are_given_up_after_the_window(
    clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    server = _Server(clock, [0.01])
    began = clock.now
    with caplog.at_level(logging.WARNING, logger="test.redial.flapping"):
        with pytest.raises(NotConnected) as gave_up:
            _run(server, give_up_after=600.0)
    assert 600.0 <= clock.now - began < 600.0 + 2 * redial.MAX_REDIAL_PAUSE
    assert "every session with the server ended within 10 s of opening" in str(gave_up.value)
    # the pauses grow to the cap: about one session per MAX_REDIAL_PAUSE, not per 0.25 s
    assert server.opened <= 600.0 / (0.8 * redial.MAX_REDIAL_PAUSE) + 8
    assert all(p >= 0.8 * redial.MAX_REDIAL_PAUSE for p in clock.pauses[6:-1])
    assert len(caplog.records) <= 2 * server.opened + 1


def test_a_session_that_held_starts_a_new_window_and_the_first_pause_again(
    clock: _Clock,
) -> None:
    """Sessions of a minute, each then lost: a server restarting now and then. The
    party never gives up (each loss is a new window) and redials after the first pause."""
    server = _Server(clock, [60.0], sessions=50)
    assert _run(server, give_up_after=5.0) == "served"
    assert all(0.8 * 0.25 <= p <= 1.2 * 0.25 for p in clock.pauses)


@settings(max_examples=100, deadline=None)
@given(lasts=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=20))
def test_redialling_always_ends_within_the_window_of_a_flapping_streak(
    lasts: list[float],
) -> None:
    """Whatever the sessions' lengths before it, a streak of sessions that end within
    the stable time ends in giving up: the party never redials without end."""
    clock = _Clock()
    original = redial.time
    redial.time = clock  # type: ignore[assignment]
    try:
        server = _Server(clock, [*lasts, 0.5])  # the streak: sessions of 0.5 s from here
        with pytest.raises(NotConnected):
            _run(server, give_up_after=120.0)
    finally:
        redial.time = original  # type: ignore[assignment]
    assert server.opened < ENDLESS
