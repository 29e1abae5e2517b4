"""A party's verdict on its run: one logger, which a front end that says it itself silences.

When a federation ends, the server's :meth:`~secagg.runtime.server.FederationServer.run`
and a branch's :meth:`~secagg.runtime.client.FederationClient.serve` return the verdict
(``stop_reason``, ``ClientStats.outcome``) and also log it, for a library caller whose
logging shows nothing else. Those records go to the logger :data:`OUTCOME_LOGGER` only.

Why a logger of its own: on an early stop the server logged an ERROR record
("federation cli stopped before finishing (0 of 1 rounds complete): no quorum ...") and
``secagg server`` then printed its one line saying the same; ``secagg simulate`` printed
the record beside its console's line, and a branch logged the server's announcement
beside ``secagg client``'s line (review, 2026-12-05). A command that prints the verdict
itself runs the federation inside :func:`reported_by_caller`, and the user reads the
failure once. The runtime still never names a front end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Final

#: the logger of every party's verdict on its run (finished, stopped and why)
OUTCOME_LOGGER: Final = "secagg.outcome"

log = logging.getLogger(OUTCOME_LOGGER)

#: above every level: a logger at it emits nothing
_SILENT: Final = logging.CRITICAL + 1


@contextlib.contextmanager
def reported_by_caller() -> Iterator[None]:
    """Within this block the verdict records are not emitted: the caller says the
    verdict itself. The logger's level is restored after, so a caller in the same
    process (a test, a notebook) keeps its logging."""
    before = log.level
    log.setLevel(_SILENT)
    try:
        yield
    finally:
        log.setLevel(before)
