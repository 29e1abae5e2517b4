"""A stop recorded while the key holder's after-reply notes or a refusal's reply are
built, which a library surfaced as its own error, is the stop: not one more ERROR line
("its notes on the last request failed", "could not build a refusal") before the next
turn of the loop ends the key holder on the stop anyway. Those two catch-alls looked
at the exception's chain only, not at the stop record (left by the second review of
2026-12-07's stop changes); a real failure there still logs and serves on."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import pytest

from secagg.errors import SecAggError
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import Relay, encode_message
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop


class _Session:
    """A session whose after-reply notes or refusal fail, with the stop ``signum``
    recorded first (None: a failure of its own)."""

    decryptions = 0

    def __init__(self, signum: int | None) -> None:
        self.signum = signum

    def _fail(self) -> None:
        if self.signum is not None:
            ask_stop(self.signum)
        raise RuntimeError("cannot release un-acquired lock")

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        raise SecAggError("refused: not a request of this federation")

    def refusal(self, error: BaseException) -> bytes | None:
        self._fail()
        return None

    def after_reply(self) -> None:
        self._fail()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    here = threading.get_ident()
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.thread == here
    ]


def _after_reply(holder: KeyHolderService) -> object:
    return holder._after_reply()


def _refused_request(holder: KeyHolderService) -> object:
    return holder._answer(encode_message(Relay(1, b"request")))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("step", [_after_reply, _refused_request], ids=["notes", "refusal"])
def test_a_stop_recorded_while_the_notes_or_a_refusal_fail_is_the_stop(
    caplog: pytest.LogCaptureFixture, signum: int, step: Callable[[KeyHolderService], object]
) -> None:
    holder = KeyHolderService("compliance", None, _Session(signum))  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
            with pytest.raises(StopAsked) as stopped:
                step(holder)
    finally:
        forget_stop()
    assert stopped.value.signum == signum
    assert _errors(caplog) == []


def test_without_a_stop_both_failures_are_logged_and_served_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = KeyHolderService("compliance", None, _Session(None))  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        holder._after_reply()
        assert holder._answer(encode_message(Relay(1, b"request"))) is None
    errors = _errors(caplog)
    assert any("its notes on the last request failed" in m for m in errors), errors
    assert any("could not build a refusal" in m for m in errors), errors
    assert holder.refused == 1
