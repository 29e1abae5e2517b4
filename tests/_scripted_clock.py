"""A fake monotonic clock and an endpoint whose messages arrive on it, for the tests of a
party's idle timer (tests/runtime/test_branch_idle_progress.py, test_branch_idle_hostile.py
and test_keyholder_idle_progress.py).

Why: an idle timer is a question of when messages arrive, and a real clock made each case
wait its timer out (a second or more) and race a busy machine. Here the party's module
sees :class:`FakeClock` as its ``time`` (:func:`fake_time`), and :class:`ScriptedEndpoint`
moves it: a script's messages arrive :data:`STEP` fake seconds apart, a receive whose
timeout ends before the next arrival returns None once the clock has moved by the
timeout. No real waiting, and the count of messages taken shows when the party gave up.
The three files had each copied the clock and the endpoint (duplicates D1, D8, D10).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from types import ModuleType, SimpleNamespace

import pytest

#: the idle timer the tests give a party, in fake seconds
IDLE = 1.0
#: fake seconds between two of a script's messages: well inside :data:`IDLE`
STEP = 0.25


class FakeClock:
    """A monotonic clock that moves only when told (``now`` is set or added to)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class ScriptedEndpoint:
    """A party's endpoint on which ``script``'s messages arrive :data:`STEP` fake seconds
    apart, the first :data:`STEP` after the endpoint is made (or :meth:`feed` is called);
    a receive returns the next one if it arrives within the timeout (the clock moved to
    its arrival), else None once the timeout has passed on the clock. ``taken`` counts
    the messages received, ``sent`` holds what the party sent."""

    def __init__(self, clock: FakeClock, script: Iterable[bytes] = ()) -> None:
        self._clock = clock
        self._script = list(script)
        self._next = clock.now + STEP
        self.taken = 0
        self.sent: list[bytes] = []

    def feed(self, script: Iterable[bytes]) -> None:
        """Replace what is still to come with ``script``, its first message
        :data:`STEP` from now."""
        self._script, self._next = list(script), self._clock.now + STEP

    def receive(self, timeout: float | None) -> bytes | None:
        if self._script and (timeout is None or self._next <= self._clock.now + timeout):
            self._clock.now = max(self._clock.now, self._next)
            self._next = self._clock.now + STEP
            self.taken += 1
            return self._script.pop(0)
        assert timeout is not None, "a wait without end on a silent server"
        self._clock.now += timeout
        return None

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def close(self) -> None:
        pass


class PacedEndpoint:
    """A party's endpoint on which each of ``script``'s messages arrives ``step`` fake
    seconds after the party asks for it, if its wait is that long (else the wait passes
    on the clock and None comes back). Unlike :class:`ScriptedEndpoint` the pace counts
    from each receive, not from the last arrival: a server that sends one notice per
    round, a round every ``step``, whatever the party did in between
    (test_far_future_notice.py, test_endless_unsampled_rounds.py)."""

    def __init__(self, clock: FakeClock, script: Iterable[bytes], step: float) -> None:
        self._clock = clock
        self._step = step
        self.script = list(script)

    def receive(self, timeout: float | None) -> bytes | None:
        assert timeout is not None, "a wait without end"
        if self.script and self._step <= timeout:
            self._clock.now += self._step
            return self.script.pop(0)
        self._clock.now += timeout
        return None

    def send(self, payload: bytes) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def fake_time(module: ModuleType) -> Iterator[FakeClock]:
    """A fresh :class:`FakeClock` as ``module.time`` (its ``monotonic`` only) until the
    block ends. For a fixture and, inside a Hypothesis test (which may not use a
    function-scoped fixture), for each example. ``module`` need not have a ``time`` of its
    own yet (a party's module before it had a clock is tested as well): it is then
    removed again at the end."""
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "time", SimpleNamespace(monotonic=clock.monotonic), raising=False)
        yield clock
