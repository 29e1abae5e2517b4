"""A server cannot write a branch's (or the key holder's) log at will.

Each message a branch or the key holder refused was one log line, so a server sending
junk as fast as the network carries it grew their logs without bound (the server's own
log had the same fault from a branch: 20 000 junk relays, 2.3 MB in one round; network
audit). Now the first few refusals are logged, then one line says the rest are counted,
then one line at every power of ten; progress (a round's end, an answered request)
starts the count again.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.errors import MalformedMessage
from secagg.runtime.client import FederationClient
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.refusals import LOGGED_REFUSALS, RefusalLog, _power_of_ten
from secagg.runtime.wire import Relay, encode_message

JUNK = 1000


def _lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_flood_of_junk_from_the_server_writes_a_few_lines_in_a_branchs_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    branch = FederationClient("branch-a", lambda m: np.zeros_like(m), SentMessages())
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        for i in range(JUNK):
            branch.handle(b"junk %d" % i)
    assert branch.stats.refused_messages == JUNK  # every one counted
    assert len(_lines(caplog, "refused a message")) == LOGGED_REFUSALS
    summaries = _lines(caplog, "messages refused in a row")
    assert [int(line.split()[1]) for line in summaries] == [6, 10, 100, 1000]
    assert len(caplog.records) == LOGGED_REFUSALS + 4  # not one line per message


class _Session:
    """A helper session that refuses junk and answers anything else."""

    decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload.startswith(b"junk"):
            raise MalformedMessage("not a key-holder message")
        return b"answer"


def test_a_flood_of_junk_requests_writes_a_few_lines_in_the_key_holders_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = KeyHolderService("compliance", None, _Session())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        for i in range(JUNK):
            assert holder._answer(encode_message(Relay(1, b"junk %d" % i))) is None
        assert holder.refused == JUNK
        assert len(_lines(caplog, "refused a request")) == LOGGED_REFUSALS
        assert len(_lines(caplog, "messages refused in a row")) == 4
        # an answered request is progress: the next refusals are logged in full again
        assert holder._answer(encode_message(Relay(1, b"a request"))) is not None
        caplog.clear()
        for _ in range(LOGGED_REFUSALS):
            holder._answer(encode_message(Relay(1, b"junk")))
    assert len(_lines(caplog, "refused a request")) == LOGGED_REFUSALS


def test_the_refusal_log_counts_and_resets(caplog: pytest.LogCaptureFixture) -> None:
    refusals = RefusalLog(logging.getLogger("test.refusals"), "party", first=2)
    with caplog.at_level(logging.INFO, logger="test.refusals"):
        for _ in range(12):
            refusals.refused(logging.WARNING, "refused %s", "x")
        assert refusals.count == 12 and len(caplog.records) == 2 + 2  # 3rd and 10th
        refusals.reset()
        refusals.refused(logging.WARNING, "refused %s", "y")
    assert caplog.records[-1].getMessage() == "refused y"
    assert [n for n in range(1, 10001) if _power_of_ten(n)] == [1, 10, 100, 1000, 10000]
