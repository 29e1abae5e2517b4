"""Redialling a lost session: the one back-off of the branch and of the key holder.

Both outbound parties (a branch, :class:`~secagg.runtime.client.FederationClient`,
and the CKKS key holder, :class:`~secagg.runtime.keyholder.KeyHolderService`) keep
one session with the server and, when it is lost (a server restart, a network cut),
dial again until a *give-up window* runs out. The window starts when the connection
is lost, so a long-lived session and a short one ride out a restart alike (reliability
review D1); the first session is dialled for ``connect_timeout`` instead.

Between two dials the party waits a bounded exponential back-off: from
:data:`FIRST_REDIAL_PAUSE` doubling to at most :data:`MAX_REDIAL_PAUSE`, each pause
spread by a factor drawn from the OS CSPRNG (:class:`secrets.SystemRandom`, never
``random``), so that the branches of a federation do not redial a restarted server in
lock step, and so that no party's timing is predictable from a seeded generator. Each
failed attempt logs one line (the attempt's number, the transport's reason, the next
pause and the time left); the reasons name addresses and status codes, never a key.
A lost session logs its own line (``session lost (...)``, with the pause before the
first redial); the dial attempts after it are numbered from 1. A session lost as soon as
it opened (within :data:`STABLE_SESSION_SECONDS`) after an earlier loss counts as no
session: the pauses go on growing and the window goes on running.

One dial may take :data:`FIRST_DIAL_SECONDS` at first, doubling with each failed
attempt of the window up to :data:`MAX_DIAL_SECONDS`. Why: a gRPC dial to a dead port
keeps retrying inside its budget and fails only when the budget ends, so with 20 s
from the first attempt a branch said nothing for 20 s; now the first line comes after
about 2 s, and a slow server still gets the longer dials after it.

:func:`serve_sessions` is the one dial-serve-redial loop of both parties: what a party
does with a session (and what it raises when it gives up) is passed in, so the windows,
the refusals that are never redialled and the log lines cannot drift apart (they were
two parallel copies, in ``client.py`` and ``keyholder.py``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Final, TypeVar

from secagg.transport.base import ClientEndpoint, NotAccepted, NotConnected
from secagg.transport.waiting import raise_if_stop_asked

#: the first pause after a failed dial; every further failure doubles it
FIRST_REDIAL_PAUSE: Final = 0.25
#: the longest pause between two dials
MAX_REDIAL_PAUSE: Final = 4.0
#: each pause is multiplied by a factor uniform in [1 - spread, 1 + spread]
REDIAL_SPREAD: Final = 0.2
#: the longest one dial may take before its failure is looked at (and logged)
MAX_DIAL_SECONDS: Final = 20.0
#: the first dial of a window may take this long; each failed attempt doubles it
FIRST_DIAL_SECONDS: Final = 2.0
#: a session that lasted less than this was lost "at once": it does not reset the
#: back-off or the give-up window (see :func:`serve_sessions`)
STABLE_SESSION_SECONDS: Final = 10.0

_CSPRNG = secrets.SystemRandom()  # os.urandom underneath


class Backoff:
    """Bounded exponential back-off with jitter from the OS CSPRNG."""

    def __init__(
        self,
        first: float = FIRST_REDIAL_PAUSE,
        cap: float = MAX_REDIAL_PAUSE,
        spread: float = REDIAL_SPREAD,
    ) -> None:
        if not 0 < first <= cap or not 0 <= spread < 1:
            raise ValueError("a back-off needs 0 < first <= cap and 0 <= spread < 1")
        self._first = first
        self._cap = cap
        self._spread = spread
        self.failures = 0

    def reset(self) -> None:
        """A session held (or was the first lost): the next pause is the first again."""
        self.failures = 0

    def next_pause(self) -> float:
        """The pause before the next dial (seconds), and count one more failure."""
        base = min(self._cap, self._first * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return base * _CSPRNG.uniform(1.0 - self._spread, 1.0 + self._spread)


def idle_start_on_new_session(heard: float, session_lost_at: float | None, now: float) -> float:
    """Where a party's idle timer starts when a session opens at ``now``.

    A first session (``session_lost_at`` None) starts it at ``now``. After a lost
    session the start moves on by the time spent without a session: the quiet time
    connected so far still counts, so a server that keeps ending sessions cannot reset
    the timer, and the time between sessions does not (it belongs to the redial
    window). Branch and key holder share this one rule."""
    if session_lost_at is None:
        return now
    return min(now, heard + (now - session_lost_at))


def dial_budget(window_end: float, failed: int = 0) -> float:
    """How long the next dial may take after ``failed`` failed attempts of its window:
    :data:`FIRST_DIAL_SECONDS` doubled per failure, at most :data:`MAX_DIAL_SECONDS` and
    what is left of the window, and never below 0.5 s."""
    grown = FIRST_DIAL_SECONDS * 2.0 ** min(max(failed, 0), 32)
    return max(0.5, min(MAX_DIAL_SECONDS, grown, window_end - time.monotonic()))


def wait_before_redial(
    log: logging.Logger,
    name: str,
    backoff: Backoff,
    cause: NotConnected,
    window_end: float,
    attempt: int,
) -> None:
    """Log failed dial ``attempt`` (1 for the first of its window) in one line and sleep
    the back-off (never past the window)."""
    pause = backoff.next_pause()
    left = window_end - time.monotonic()
    log.info(
        "%s: dial attempt %d failed (%s); next in %.1f s, %s",
        name,
        attempt,
        _reason(cause),
        pause,
        _left(left),
    )
    _pause(min(pause, left))


def _pause(seconds: float) -> None:
    """Sleep ``seconds`` (none when not positive), looking at the stop record before and
    after: a stop swallowed in the dial that just failed (grpcio's C core) or in the
    session just lost ends the party here, not after the pause and one dial more. (The
    sleep itself swallows nothing: a signal's exception comes out of it as itself.)"""
    raise_if_stop_asked()
    time.sleep(max(0.0, seconds))
    raise_if_stop_asked()


def _reason(cause: BaseException) -> str:
    """The transport's reason on one line (it names addresses, never a key)."""
    return " ".join(str(cause).split()) or type(cause).__name__


def _left(left: float) -> str:
    return "no give-up time" if left == float("inf") else f"giving up in {max(0.0, left):.0f} s"


Served = TypeVar("Served")


def serve_sessions(
    log: logging.Logger,
    name: str,
    dial: Callable[[float], ClientEndpoint],
    serve: Callable[[ClientEndpoint], Served],
    *,
    opened: Callable[[], int],
    gave_up: Callable[[str, NotConnected], NotConnected],
    connect_timeout: float,
    give_up_after: float | None,
    reconnect: bool,
) -> Served:
    """Dial, ``serve`` the session, and redial a lost one; returns what ``serve`` returned.

    ``dial(timeout)`` opens a session or raises
    :class:`~secagg.transport.base.NotConnected`; ``serve(session)`` uses it until it
    returns or raises NotConnected (the session was lost); the session is closed either
    way. ``opened()`` counts a session opened and returns its number (the log names a
    reconnection by it). The first session is dialled for up to ``connect_timeout``
    seconds; a lost one is redialled for up to ``give_up_after`` seconds counted from
    the loss (None: without end), with :class:`Backoff` between dials and one log line
    each (:func:`wait_before_redial`); the loss itself is one WARNING line
    (``session lost (...); redialling ..., first dial in 0.3 s``), not a failed dial.
    Each dial's budget is :func:`dial_budget`. Past the window (or at once without
    ``reconnect``, once a session is lost) ``gave_up(message, cause)`` is raised. A
    :class:`~secagg.transport.base.NotAccepted` (the server refuses this party for who it
    is) is raised at once, from a dial or a session: no redial can cure it; except a
    refusal the transport only inferred (``NotAccepted.inferred``) once a session had
    been open, which is redialled like a lost connection (so is a host name DNS denies,
    gRPC's ``UnknownHost``: it did resolve once, and may again).

    A session lost within :data:`STABLE_SESSION_SECONDS` of opening, after an earlier
    loss, neither resets the back-off nor starts a new window: the pauses keep growing
    to :data:`MAX_REDIAL_PAUSE` and the party gives up ``give_up_after`` seconds after
    the first loss of the streak. Why: every session opened reset both, so a server that
    accepted each session and ended it at once (a crash loop after the handshake, a
    hostile server) was redialled every 0.25 s forever, with two WARNING lines each
    (measured: 119 sessions and 238 lines in 30 s, and no end)."""
    window = connect_timeout
    window_end = time.monotonic() + connect_timeout
    lost = False  # whether a session was open before this dial
    backoff = Backoff()
    failed = 0  # the dials of this window that failed (the log numbers them from 1)
    flapping = False  # a session of this window was lost as soon as it opened
    while True:
        raise_if_stop_asked()  # a stop a dial or a session swallowed: no dial more
        cause: NotConnected
        just_lost = False  # the session served just now was lost (no dial failed)
        try:
            session = dial(dial_budget(window_end, failed))
        except NotAccepted as exc:
            # a refusal only inferred (a server closing right after two handshakes)
            # after this certificate was accepted in this run: more likely a server
            # restarting than one that changed its CA; redialled within the window
            if not (lost and exc.inferred):
                raise
            cause = exc
        except NotConnected as exc:
            cause = exc
        else:
            failed = 0
            number = opened()
            if lost:
                log.warning("%s: reconnected (session %d)", name, number)
            began = time.monotonic()
            try:
                return serve(session)
            except NotAccepted:
                raise
            except NotConnected as exc:
                if lost and time.monotonic() - began < STABLE_SESSION_SECONDS:
                    flapping = True  # lost at once again: the streak's pauses and window go on
                else:  # the first loss, or of a session that held: a new window
                    backoff.reset()
                    flapping = False
                    window = give_up_after if give_up_after is not None else float("inf")
                    window_end = time.monotonic() + window
                cause, lost, just_lost = exc, True, True
            finally:
                close_session(session)
        # without ``reconnect`` only a *lost* session ends it at once: the first session
        # is still dialled for the whole connect_timeout, as the callers document (one
        # short first dial gave up after 2 s)
        if (lost and not reconnect) or time.monotonic() >= window_end:
            if just_lost:
                log.warning("%s: session lost (%s)", name, _reason(cause))
            if lost and not reconnect:
                what = "the session with the server was lost and reconnecting is off"
            elif flapping:
                what = (
                    f"every session with the server ended within {STABLE_SESSION_SECONDS:g} s "
                    f"of opening for {window:g} s since the connection was lost"
                )
            elif lost:
                what = f"no session with the server for {window:g} s since the connection was lost"
            else:
                what = f"cannot open a session with the server within {window:g} s"
            raise gave_up(f"{name}: {what} ({cause}); giving up", cause)
        if just_lost:
            # the loss is no failed dial: its own line, then the pause before the first
            # redial (the same back-off as before), and the dials numbered from 1
            pause = backoff.next_pause()
            log.warning(
                "%s: session lost (%s); redialling %s, first dial in %.1f s",
                name,
                _reason(cause),
                "until the federation's end"
                if give_up_after is None
                else f"for up to {give_up_after:g} s",
                pause,
            )
            _pause(min(pause, window_end - time.monotonic()))
            continue
        # one line per failed attempt; CSPRNG jitter spreads the parties' redials
        failed += 1
        wait_before_redial(log, name, backoff, cause, window_end, failed)


def close_session(session: ClientEndpoint) -> None:
    """Close a session if its transport can be closed (the in-process and gRPC ones can)."""
    close = getattr(session, "close", None)
    if close is not None:
        close()
