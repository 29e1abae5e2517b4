"""The key holder's idle timer (``secagg keyholder --idle``) counts from the last request
it answered that moved something, not from the last message.

Why: :meth:`KeyHolderService.run` asked the transport for the next message with the
whole idle timer every time, so any message restarted it: a server (or anything on the
key holder's channel) sending junk, requests the key holder refuses, messages that are
not for it, or one request it answers again and again (the key request of the round it
opened, answered from disk each time; the resend of its last decryption) a little more
often than ``--idle`` kept it waiting forever, though the federation moved nowhere.
What counts now: a request its session answered that is not the last one answered
again, and the federation's end. The branch has had the same rule since 2026-12-06
(tests/runtime/test_branch_idle_progress.py).

The key holder's clock is a fake (``secagg.runtime.keyholder.time``) moved by the
scripted endpoint: no real waiting, and the messages taken show when it gave up.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.runtime.keyholder as keyholder_module
from secagg.errors import MalformedMessage
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import FederationEnd, Relay, RoundEnd, encode_message

IDLE = 1.0
STEP = 0.25  # fake seconds between two of the server's messages: well inside IDLE
COPIES = 400  # 100 fake seconds of them


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class _Scripted:
    """The key holder's endpoint: ``script`` arrives ``STEP`` fake seconds apart; a
    receive returns the next message if it arrives within the timeout, else None once
    the timeout has passed on the clock."""

    def __init__(self, clock: _Clock, script: list[bytes]) -> None:
        self._clock = clock
        self.script = list(script)
        self.taken = 0
        self.sent: list[bytes] = []

    def receive(self, timeout: float | None) -> bytes | None:
        arrival = self._clock.now + STEP
        if self.script and (timeout is None or arrival <= self._clock.now + timeout):
            self._clock.now = arrival
            self.taken += 1
            return self.script.pop(0)
        assert timeout is not None, "a wait without end on a silent server"
        self._clock.now += timeout
        return None

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def close(self) -> None:
        pass


class _Session:
    """A helper session: ``b"key"`` opens the request's round (answered again, from what
    it holds, for the round already opened, as the CKKS key holder does) unless it was
    decrypted, ``b"sum"`` decrypts it, once; anything else is refused."""

    def __init__(self) -> None:
        self.decryptions = 0
        self.decrypted: set[int] = set()

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload == b"key" and round_number not in self.decrypted:
            return b"public key"
        if payload == b"sum" and round_number not in self.decrypted:
            self.decrypted.add(round_number)
            self.decryptions += 1
            return b"sum %d" % round_number
        raise MalformedMessage("a key holder answers key and decryption requests only")

    def refusal(self, error: BaseException) -> bytes:
        return b"refused"


def _relay(number: int, body: bytes) -> bytes:
    return encode_message(Relay(number, body))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    # raising=False: a key holder without a clock of its own (before) is tested as well
    monkeypatch.setattr(
        keyholder_module, "time", SimpleNamespace(monotonic=fake.monotonic), raising=False
    )
    return fake


OPENED = [_relay(1, b"key")]
DECRYPTED = [_relay(1, b"key"), _relay(1, b"sum")]
#: what came first (progress), then the message repeated
NO_PROGRESS = {
    "undecodable": (DECRYPTED, b"not a secagg message at all"),
    "refused-request": (DECRYPTED, _relay(1, b"junk")),
    "not-for-the-helper": (DECRYPTED, encode_message(RoundEnd(1, True))),
    "its-key-request-again": (OPENED, _relay(1, b"key")),
    "its-decryption-resent": (DECRYPTED, _relay(1, b"sum")),
}


@pytest.mark.parametrize("kind", sorted(NO_PROGRESS))
def test_messages_that_move_nothing_do_not_keep_the_key_holder_waiting(
    clock: _Clock, kind: str
) -> None:
    first, repeated = NO_PROGRESS[kind]
    endpoint = _Scripted(clock, first + [repeated] * COPIES)
    service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
    began = clock.now
    service.run(idle_timeout=IDLE)
    assert service.outcome == "idle"
    last_progress = began + len(first) * STEP
    waited = clock.now - last_progress
    assert waited <= IDLE + STEP, f"kept waiting {waited:.1f} s after its last progress"
    assert endpoint.taken <= len(first) + IDLE / STEP + 1
    assert service.end_reason.startswith("the server sent nothing this key holder could take")


def test_a_silent_server_is_still_called_silent(clock: _Clock) -> None:
    service = KeyHolderService("compliance", _Scripted(clock, []), _Session())  # type: ignore[arg-type]
    began = clock.now
    service.run(idle_timeout=IDLE)
    assert service.outcome == "idle" and clock.now - began == pytest.approx(IDLE)
    assert service.end_reason == "the server was silent for 1 s"


def test_the_federations_end_ends_it_whatever_came_before(clock: _Clock) -> None:
    script = [b"junk"] * 3 + [encode_message(FederationEnd(4, True, ""))]
    service = KeyHolderService("compliance", _Scripted(clock, script), _Session())  # type: ignore[arg-type]
    service.run(idle_timeout=IDLE)
    assert service.outcome == "finished"


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(["new", "again", "junk"]), min_size=1, max_size=60))
def test_only_a_request_answered_anew_restarts_the_timer(kinds: list[str]) -> None:
    """Whatever mix of new requests (the next round's key request), the same request
    again and junk the server sends, STEP apart, the key holder gives up exactly when
    IDLE has passed since the last new request it answered (or since it started)."""
    clock = _Clock()
    saved = getattr(keyholder_module, "time", None)
    keyholder_module.time = SimpleNamespace(monotonic=clock.monotonic)  # type: ignore[attr-defined]
    try:
        script, number = [], 0
        for kind in kinds:
            if kind == "new" or (kind == "again" and number == 0):
                number += 1
            script.append(_relay(number, b"key") if kind != "junk" else b"junk")
        endpoint = _Scripted(clock, script)
        service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
        began = clock.now
        service.run(idle_timeout=IDLE)
        assert service.outcome == "idle"
        # replay: when it must have given up
        heard, arrival, last = began, began, None
        for message in script:
            arrival += STEP
            if arrival > heard + IDLE:
                break  # it had given up before this message came
            if message != b"junk" and message != last:
                heard, last = arrival, message
        assert clock.now == pytest.approx(heard + IDLE)
    finally:
        if saved is None:
            del keyholder_module.time  # type: ignore[attr-defined]
        else:
            keyholder_module.time = saved  # type: ignore[attr-defined]
