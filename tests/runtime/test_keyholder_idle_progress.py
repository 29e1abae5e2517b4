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
scripted endpoint (tests/_scripted_clock.py): no real waiting, and the messages taken
show when it gave up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _scripted_clock import IDLE, STEP, FakeClock, ScriptedEndpoint, fake_time
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.runtime.keyholder as keyholder_module
from secagg.errors import MalformedMessage
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.wire import FederationEnd, Relay, RoundEnd, encode_message

COPIES = 400  # 100 fake seconds of them


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
def clock() -> Iterator[FakeClock]:
    # a key holder without a clock of its own (before) is tested as well: fake_time adds it
    with fake_time(keyholder_module) as fake:
        yield fake


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
    clock: FakeClock, kind: str
) -> None:
    first, repeated = NO_PROGRESS[kind]
    endpoint = ScriptedEndpoint(clock, first + [repeated] * COPIES)
    service = KeyHolderService("compliance", endpoint, _Session())  # type: ignore[arg-type]
    began = clock.now
    service.run(idle_timeout=IDLE)
    assert service.outcome == "idle"
    last_progress = began + len(first) * STEP
    waited = clock.now - last_progress
    assert waited <= IDLE + STEP, f"kept waiting {waited:.1f} s after its last progress"
    assert endpoint.taken <= len(first) + IDLE / STEP + 1
    assert service.end_reason.startswith("the server sent nothing this key holder could take")


def test_a_silent_server_is_still_called_silent(clock: FakeClock) -> None:
    service = KeyHolderService("compliance", ScriptedEndpoint(clock, []), _Session())  # type: ignore[arg-type]
    began = clock.now
    service.run(idle_timeout=IDLE)
    assert service.outcome == "idle" and clock.now - began == pytest.approx(IDLE)
    assert service.end_reason == "the server was silent for 1 s"


def test_the_federations_end_ends_it_whatever_came_before(clock: FakeClock) -> None:
    script = [b"junk"] * 3 + [encode_message(FederationEnd(4, True, ""))]
    service = KeyHolderService("compliance", ScriptedEndpoint(clock, script), _Session())  # type: ignore[arg-type]
    service.run(idle_timeout=IDLE)
    assert service.outcome == "finished"


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(["new", "again", "junk"]), min_size=1, max_size=60))
def test_only_a_request_answered_anew_restarts_the_timer(kinds: list[str]) -> None:
    """Whatever mix of new requests (the next round's key request), the same request
    again and junk the server sends, STEP apart, the key holder gives up exactly when
    IDLE has passed since the last new request it answered (or since it started)."""
    with fake_time(keyholder_module) as clock:
        script, number = [], 0
        for kind in kinds:
            if kind == "new" or (kind == "again" and number == 0):
                number += 1
            script.append(_relay(number, b"key") if kind != "junk" else b"junk")
        endpoint = ScriptedEndpoint(clock, script)
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
