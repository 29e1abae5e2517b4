"""A branch's own training hook failing is the branch's failure, not a refusal.

Known since the review of 2026-12-06 (secagg/runtime/client.py, ``REFUSED_LINE``): a
training hook's own :class:`~secagg.errors.SecAggError` (a DP-SGD trainer's
``ConfigurationError``) went down the path of a refused server message. The branch
logged "refused a message", counted it among the refused messages (``secagg client``'s
summary: "1 messages refused") and left the round saying "could not take part"; and a
hook's ``PolicyRefused`` read as the round refused by the branch's policy, which stopped
the branch (``BranchRefused``, exit 3) naming a setting the round never crossed. Now
every exception of the hook, or of its privacy report, is "local training failed": one
line saying so, a leave, the round counted once in ``rounds_left``, the branch serving on.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.errors import ConfigurationError, InvalidMessage, PolicyRefused, SecAggError
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import Leave, RoundEnd, RoundStart, encode_message

D = 8
NAME = "branch-00"
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))

FAILURES = [
    ConfigurationError("the trainer's budget is spent"),
    PolicyRefused("trainer.max_epsilon", "the trainer's own limit"),
    InvalidMessage("a library the hook calls raised a secagg error"),
    SecAggError("the hook's own secagg error"),
    RuntimeError("the feature store is down"),
]


def _start(number: int) -> bytes:
    return encode_message(
        RoundStart(number, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed")
    )


def _check_left_for_its_training(
    client: FederationClient,
    outbox: SentMessages,
    error: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = type(error).__name__
    assert outbox.sent == [Leave(1, f"local training failed ({kind})")]
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "secagg.client" and r.levelno >= logging.WARNING
    ]
    assert not [line for line in lines if "refused a message" in line], lines
    assert lines == [
        f"{NAME}: its training hook failed in round 1 ({kind}): {error}; it left the round"
    ]
    stats = client.stats
    assert (stats.refused_messages, stats.rounds_refused) == (0, 0)
    client.handle(encode_message(RoundEnd(1, True, "")))
    assert (stats.rounds_left, stats.rounds_completed, stats.refused_messages) == (1, 0, 0)


@pytest.mark.parametrize("error", FAILURES, ids=lambda e: type(e).__name__)
def test_a_hook_that_raises_leaves_the_round_saying_its_training_failed(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: np.ndarray) -> np.ndarray:
        raise error

    outbox = SentMessages()
    client = FederationClient(NAME, broken, outbox)  # stop_on_refusal: the default
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        client.handle(_start(1))  # never BranchRefused: the round was not refused
    _check_left_for_its_training(client, outbox, error, caplog)
    # and the branch takes the next round as usual
    outbox.sent.clear()
    client._train = lambda model: np.full_like(model, 0.1)
    client.handle(_start(2))
    assert client._round == 2 and not [m for m in outbox.sent if isinstance(m, Leave)]


@pytest.mark.parametrize("error", FAILURES[:2], ids=lambda e: type(e).__name__)
def test_a_privacy_report_that_raises_is_the_training_failing_too(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def report() -> dict:
        raise error

    outbox = SentMessages()
    client = FederationClient(
        NAME, lambda model: np.full_like(model, 0.1), outbox, privacy_report=report
    )
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        client.handle(_start(1))
    _check_left_for_its_training(client, outbox, error, caplog)
