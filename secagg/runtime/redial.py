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

#: the first pause after a failed dial; every further failure doubles it
FIRST_REDIAL_PAUSE: Final = 0.25
#: the longest pause between two dials
MAX_REDIAL_PAUSE: Final = 4.0
#: each pause is multiplied by a factor uniform in [1 - spread, 1 + spread]
REDIAL_SPREAD: Final = 0.2
#: the longest one dial may take before its failure is looked at (and logged)
MAX_DIAL_SECONDS: Final = 20.0

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
        """A session opened: the next loss starts from the first pause again."""
        self.failures = 0

    def next_pause(self) -> float:
        """The pause before the next dial (seconds), and count one more failure."""
        base = min(self._cap, self._first * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return base * _CSPRNG.uniform(1.0 - self._spread, 1.0 + self._spread)


def dial_budget(window_end: float) -> float:
    """How long the next dial may take: what is left of the window, within
    [0.5, :data:`MAX_DIAL_SECONDS`] seconds."""
    return min(MAX_DIAL_SECONDS, max(0.5, window_end - time.monotonic()))


def wait_before_redial(
    log: logging.Logger,
    name: str,
    backoff: Backoff,
    cause: NotConnected,
    window_end: float,
) -> None:
    """Log the failed attempt in one line and sleep the back-off (never past the window)."""
    pause = backoff.next_pause()
    left = window_end - time.monotonic()
    log.info(
        "%s: dial attempt %d failed (%s); next in %.1f s, %s",
        name,
        backoff.failures,
        " ".join(str(cause).split()) or type(cause).__name__,
        pause,
        "no give-up time" if left == float("inf") else f"giving up in {max(0.0, left):.0f} s",
    )
    time.sleep(max(0.0, min(pause, left)))


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
    each (:func:`wait_before_redial`). Past the window (or at once without
    ``reconnect``) ``gave_up(message, cause)`` is raised. A
    :class:`~secagg.transport.base.NotAccepted` (the server refuses this party for who it
    is) is raised at once, from a dial or a session: no redial can cure it; except a
    refusal the transport only inferred (``NotAccepted.inferred``) once a session had
    been open, which is redialled like a lost connection."""
    window = connect_timeout
    window_end = time.monotonic() + connect_timeout
    lost = False  # whether a session was open before this dial
    backoff = Backoff()
    while True:
        cause: NotConnected
        try:
            session = dial(dial_budget(window_end))
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
            backoff.reset()
            number = opened()
            if lost:
                log.warning("%s: reconnected (session %d)", name, number)
            try:
                return serve(session)
            except NotAccepted:
                raise
            except NotConnected as exc:
                cause, lost = exc, True
                window = give_up_after if give_up_after is not None else float("inf")
                window_end = time.monotonic() + window
                log.warning(
                    "%s: connection lost (%s); redialling %s",
                    name,
                    exc,
                    "until the federation's end"
                    if give_up_after is None
                    else f"for up to {give_up_after:g} s",
                )
            finally:
                close_session(session)
        if not reconnect or time.monotonic() >= window_end:
            what = (
                f"no session with the server for {window:g} s since the connection was lost"
                if lost
                else f"cannot open a session with the server within {window:g} s"
            )
            raise gave_up(f"{name}: {what} ({cause}); giving up", cause)
        # one line per failed attempt; CSPRNG jitter spreads the parties' redials
        wait_before_redial(log, name, backoff, cause, window_end)


def close_session(session: ClientEndpoint) -> None:
    """Close a session if its transport can be closed (the in-process and gRPC ones can)."""
    close = getattr(session, "close", None)
    if close is not None:
        close()
