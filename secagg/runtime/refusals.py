"""Logging a party's refusals without letting the peer write the log.

A server (or a branch) can send junk as fast as the network carries it, and each
message refused was one warning line: the server's log grew 2.3 MB in one round of
20 000 junk relays (network audit), and a branch's or key holder's log grew the same
way at the server's will. :class:`RefusalLog` logs the first :data:`LOGGED_REFUSALS`
refusals, then one line saying the rest are counted, then one line at every power of
ten; the count starts again when the session makes progress (:meth:`RefusalLog.reset`:
a round ended, a request answered), so an honest hiccup is always logged in full.
"""

from __future__ import annotations

import logging
from typing import Final

#: refusals logged line by line before the rest are only counted
LOGGED_REFUSALS: Final = 5


class RefusalLog:
    """Logs refusals one line each up to a limit, then only counts them."""

    def __init__(self, log: logging.Logger, who: str, first: int = LOGGED_REFUSALS) -> None:
        self._log = log
        self._who = who
        self._first = first
        self.count = 0  # refusals since the last reset

    def refused(self, level: int, message: str, *args: object) -> None:
        """Count one refusal and log it (``message % args`` at ``level``) if within the limit."""
        self.count += 1
        if self.count <= self._first:
            self._log.log(level, message, *args)
            return
        if self.count == self._first + 1 or _power_of_ten(self.count):
            self._log.warning(
                "%s: %d messages refused in a row; past the first %d they are counted, "
                "logged at every power of ten",
                self._who,
                self.count,
                self._first,
            )

    def reset(self) -> None:
        """The session made progress: log the next refusals in full again."""
        self.count = 0


def _power_of_ten(count: int) -> bool:
    while count % 10 == 0 and count > 1:
        count //= 10
    return count == 1
