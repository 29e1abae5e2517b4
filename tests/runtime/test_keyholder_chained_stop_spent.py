"""A Ctrl-C that a library turned into its own error while the key holder answered a
request (the interrupt in the error's chain, nothing recorded: the key holder run by a
library without the CLI's signal handlers), after the request had spent a decryption:
the stop is raised, and the spent decryption is warned of, as for a stop recorded.

Found with the runtime's stop leftovers (2026-12-07): the key holder's catch-all raised
a stop in the chain before it looked at the decryptions (``raise_stop_within`` first),
so a decryption of the lifetime cap spent on nothing went unsaid, where the same stop
recorded for the process (a SIGTERM's) said it. One helper now tells a stop from a
failure for the server, the branch and the key holder
(:func:`~secagg.transport.waiting.stop_behind`).
"""

from __future__ import annotations

import logging
import signal

import pytest

from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import Relay, encode_message
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop


class _SpentThenStopped:
    """A session that records its decryption, then is stopped before its reply is
    built: by a Ctrl-C its library turned into a RuntimeError (``recorded`` False), or
    by a SIGTERM recorded for the process that surfaced as one."""

    def __init__(self, *, recorded: bool) -> None:
        self.decryptions = 0
        self.recorded = recorded
        self.interrupt = KeyboardInterrupt()

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        self.decryptions += 1
        if self.recorded:
            ask_stop(signal.SIGTERM)
            raise RuntimeError("the worker was killed")
        raise RuntimeError("the worker was interrupted") from self.interrupt


@pytest.mark.parametrize("recorded", [False, True], ids=["ctrl-c-in-the-chain", "sigterm-recorded"])
def test_a_stop_after_a_spent_decryption_warns_of_it(
    caplog: pytest.LogCaptureFixture, recorded: bool
) -> None:
    session = _SpentThenStopped(recorded=recorded)
    holder = KeyHolderService("compliance", None, session)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
            with pytest.raises(KeyboardInterrupt) as stopped:
                holder._answer(encode_message(Relay(1, b"request")))
    finally:
        forget_stop()
    if recorded:
        assert isinstance(stopped.value, StopAsked) and stopped.value.signum == signal.SIGTERM
    else:
        assert stopped.value is session.interrupt, "not the very interrupt"
    assert holder.refused == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    spent = [r for r in caplog.records if "decryption spent without release" in r.getMessage()]
    assert len(spent) == 1, [r.getMessage() for r in caplog.records]
    assert spent[0].levelno == logging.WARNING
