"""A Ctrl-C or SIGTERM that stops the key holder after a request spent a decryption and
before its sum left warns of the spent decryption, whatever form the stop takes: the
interrupt itself (Python's Ctrl-C, raised where the decryption's Python code was), or a
stop swallowed inside the decryption and found before the reply is sent.

Second review of helper-313's f540c80d (2026-12-07): it had a stop in the chain of a
request's error warn "one decryption spent without release", as a stop recorded with
another error did. The plain forms were left out: a ``KeyboardInterrupt`` (or
:class:`~secagg.transport.waiting.StopAsked`) raised by the session after it recorded
its decryption passed the catch-all (``except Exception``) unsaid, and a stop that the
decryption's library swallowed, looked at before the built reply went out, dropped the
sum unsaid too: a decryption of the lifetime cap spent on nothing, said for the rarest
form of the stop and not for the commonest.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

import pytest

from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import Relay, encode_message
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

REQUEST = encode_message(Relay(1, b"request"))


def _ctrl_c() -> None:
    raise KeyboardInterrupt


def _sigterm() -> None:
    ask_stop(signal.SIGTERM)  # as the CLI's handler does before it raises
    raise StopAsked(signal.SIGTERM)


def _swallowed() -> None:
    ask_stop(signal.SIGTERM)  # the handler's record; its exception taken by the library


class _SpentThenStopped:
    """A session that records its decryption, then meets ``stop``; returns a reply
    when the stop was swallowed."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self.decryptions = 0
        self.stop = stop

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        self.decryptions += 1
        self.stop()
        return b"the noised sum"


class _OneRequest:
    """A transport that delivers :data:`REQUEST` once and records what is sent."""

    def __init__(self) -> None:
        self.delivered = False
        self.sent: list[bytes] = []

    def receive(self, timeout: float | None = None) -> bytes | None:
        if self.delivered:
            raise AssertionError("the key holder served on after its stop")
        self.delivered = True
        return REQUEST

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)


STOPS = {"ctrl-c": _ctrl_c, "sigterm": _sigterm, "swallowed-sigterm": _swallowed}


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_a_stop_after_a_spent_decryption_warns_of_it_once(
    caplog: pytest.LogCaptureFixture, stop: str
) -> None:
    """Before: no warning for any of the three (the chained form alone had one). Now
    one WARNING, no ERROR, the stop raised, nothing sent."""
    session = _SpentThenStopped(STOPS[stop])
    transport = _OneRequest()
    holder = KeyHolderService("compliance", transport, session)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
            with pytest.raises(KeyboardInterrupt):
                holder._serve_session(idle_timeout=None)
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
    assert session.decryptions == 1
    assert transport.sent == [], "a sum left after the stop"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    spent = [r for r in caplog.records if "decryption spent without release" in r.getMessage()]
    assert len(spent) == 1, [r.getMessage() for r in caplog.records]
    assert spent[0].levelno == logging.WARNING


def test_a_stop_before_any_decryption_warns_of_none(caplog: pytest.LogCaptureFixture) -> None:
    """A stop before the session counted anything spent nothing: no warning."""

    class _StoppedFirst:
        decryptions = 0

        def handle(self, payload: bytes, *, round_number: int) -> bytes:
            raise KeyboardInterrupt

    holder = KeyHolderService("compliance", _OneRequest(), _StoppedFirst())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        with pytest.raises(KeyboardInterrupt):
            holder._serve_session(idle_timeout=None)
    assert not [r for r in caplog.records if "decryption spent" in r.getMessage()]
