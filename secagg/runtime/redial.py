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
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Final

from secagg.transport.base import NotConnected

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
