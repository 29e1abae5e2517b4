"""A stop recorded while the key holder answers a request, which a library surfaced as
its own error, is the stop: not "a request raised ...; ignored, serving on" at ERROR
beside the command's "stopped by SIGTERM" (second review of 2026-12-07, left by it;
the branch's and the server's handlers were mended the same day)."""

from __future__ import annotations

import logging
import signal

import pytest

from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import Relay, encode_message
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop


class _StoppedSession:
    """A session whose request is stopped by ``signum`` half-way, surfacing as another
    error (as a SIGTERM that killed a worker does), or failing with no stop at all."""

    decryptions = 0

    def __init__(self, signum: int | None) -> None:
        self.signum = signum

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if self.signum is not None:
            ask_stop(self.signum)
        raise RuntimeError("cannot release un-acquired lock")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_that_surfaced_as_another_error_is_the_stop(
    caplog: pytest.LogCaptureFixture, signum: int
) -> None:
    holder = KeyHolderService("compliance", None, _StoppedSession(signum))  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
            with pytest.raises(StopAsked) as stopped:
                holder._answer(encode_message(Relay(1, b"request")))
    finally:
        forget_stop()
    assert stopped.value.signum == signum
    assert isinstance(stopped.value.__context__, RuntimeError)
    assert holder.refused == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_same_error_without_a_stop_is_refused_and_served_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = KeyHolderService("compliance", None, _StoppedSession(None))  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        holder._answer(encode_message(Relay(1, b"request")))
    assert holder.refused == 1
    assert any("ignored, serving on" in r.getMessage() for r in caplog.records)
