"""A stop that surfaced in the training hook (or in the branch's handling of a round
start) as another error, with no trace of it in the exception's chain, stops the
branch: no leave saying its training failed, no ERROR.

Second review of eb003c95 (2026-12-07), the branch's analogue of the server's rule (a
failure while a stop is recorded is the stop, announced to nobody): a SIGTERM that a
service manager sends to the branch's whole process group kills a torch DataLoader's
workers too, and the training loop raises ``RuntimeError: DataLoader worker ... exited
unexpectedly``, which holds no ``KeyboardInterrupt``. The branch took it as its own
training's failure: an ERROR line and a ``Leave`` telling the server "local training
failed (RuntimeError)", after the operator's stop; only the next turn of its loop
raised the stop. It is now the stop where it surfaced, as when the chain holds it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend, MaskingClient
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import RoundStart, encode_message
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

D = 8
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture(autouse=True)
def _no_stop_left() -> Iterator[None]:
    """Every test starts without a stop recorded and leaves none (the record is the
    process's: one left would stop the next test's parties in this worker)."""
    assert forget_stop() is None, "a stop was left recorded before this test"
    yield
    forget_stop()


def _start() -> bytes:
    return encode_message(RoundStart(1, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="f"))


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_surfaced_as_a_training_error_is_the_stop_and_tells_the_server_nothing(
    signum: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The hook's loop raises a RuntimeError of its own (no KeyboardInterrupt in the
    chain) after the CLI's handler recorded the stop. Before: ``handle`` returned, the
    branch's only message a leave "local training failed (RuntimeError)", with an ERROR
    line. Now: the stop is raised, nothing is sent, one WARNING names what it surfaced as."""

    def hook(model: np.ndarray) -> np.ndarray:
        ask_stop(signum)  # the CLI's handler, in the main thread
        raise RuntimeError("DataLoader worker (pid(s) 4242) exited unexpectedly")

    outbox = SentMessages()
    client = FederationClient("branch-00", hook, outbox)
    with caplog.at_level(logging.DEBUG, logger="secagg"), pytest.raises(StopAsked) as raised:
        client.handle(_start())
    assert raised.value.signum == signum
    assert outbox.sent == [], f"sent after the stop: {outbox.sent}"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(signal.Signals(signum).name in m and "RuntimeError" in m for m in said), said


def test_a_training_error_without_a_stop_is_still_a_failure_told_in_a_leave() -> None:
    """No stop recorded: the hook's failure is the branch's, as before (a leave saying
    its training failed, and the branch serves on)."""

    def hook(model: np.ndarray) -> np.ndarray:
        raise RuntimeError("out of memory")

    outbox = SentMessages()
    client = FederationClient("branch-00", hook, outbox)
    client.handle(_start())
    assert [type(m).__name__ for m in outbox.sent] == ["Leave"]
    assert "local training failed (RuntimeError)" in outbox.sent[0].reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_surfaced_as_an_error_taking_part_is_the_stop_and_tells_nothing(
    signum: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The round's session takes the update in a C call that took the interrupt and
    raised its own error (no KeyboardInterrupt in the chain). Before: the message's
    catch-all logged "dropped a message" (ERROR) and sent a leave "could not take part
    after training (RuntimeError)". Now: the stop, nothing sent."""

    def set_input(self: MaskingClient, update: np.ndarray) -> list[bytes]:
        ask_stop(signum)  # the CLI's handler; the C call raised its own error
        raise RuntimeError("the operation was interrupted")

    monkeypatch.setattr(MaskingClient, "set_input", set_input)
    outbox = SentMessages()
    client = FederationClient("branch-00", lambda model: model + 0.1, outbox)
    with caplog.at_level(logging.DEBUG, logger="secagg"), pytest.raises(StopAsked) as raised:
        client.handle(_start())
    assert raised.value.signum == signum
    assert outbox.sent == [], f"sent after the stop: {outbox.sent}"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
