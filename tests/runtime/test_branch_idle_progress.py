"""A branch's idle timer (``secagg client --idle``) counts from the last message that
moved something, not from the last message.

Why: :meth:`FederationClient.run` asked the transport for the next message with the
whole idle timer every time, so any message, one the branch refused included, restarted
the timer. A server (or anything on its channel) sending a message the branch can only
refuse a little more often than ``--idle`` (a stale notice, a replayed start, junk)
kept a branch waiting forever, never sampled, never told it is not, never giving up.
What counts now: a round start the branch takes (its own round, or one its policy
refuses), a not-sampled notice it takes, its round's end, a payload of its round its
session takes, and the federation's end. A message refused, or a late one dropped
quietly, does not.

The branch's clock is a fake (``secagg.runtime.client.time``) moved by the scripted
endpoint (tests/_scripted_clock.py): no real waiting, and the count of messages taken
shows when it gave up.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from _scripted_clock import IDLE, STEP, FakeClock, ScriptedEndpoint, fake_time
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.runtime.client as client_module
from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.wire import NotSampled, Relay, RoundEnd, RoundStart, encode_message

D = 4
FEDERATION = "idle-progress"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with fake_time(client_module) as fake:
        yield fake


def _start(number: int, deadline: float = 0.0) -> bytes:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, deadline, federation=FEDERATION)
    )


def _notice(number: int, deadline: float = 0.0) -> bytes:
    return encode_message(NotSampled(number, deadline, federation=FEDERATION))


def _branch(endpoint: ScriptedEndpoint, hook=None) -> FederationClient:  # type: ignore[no-untyped-def]
    return FederationClient(
        "b",
        hook or (lambda m: np.zeros_like(m)),
        endpoint,  # type: ignore[arg-type]
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )


def _after_round_one(
    clock: FakeClock, junk: bytes, count: int
) -> tuple[FederationClient, ScriptedEndpoint]:
    """A branch whose round 1 has ended (taken by handle, before run), then ``count``
    copies of ``junk`` on the wire."""
    endpoint = ScriptedEndpoint(clock, [junk] * count)
    client = _branch(endpoint)
    client.handle(_start(1))
    client.handle(encode_message(RoundEnd(1, True)))
    return client, endpoint


JUNK = {
    "undecodable": b"not a secagg message at all",
    "replayed-start": _start(1),
    "stale-notice": _notice(1),
    "foreign-notice": encode_message(NotSampled(9, 0.0, federation="another")),
    "unknown-end": encode_message(RoundEnd(7, True)),
    "payload-of-no-round": encode_message(Relay(5, b"\x00" * 8)),
}


@pytest.mark.parametrize("kind", sorted(JUNK))
def test_messages_the_branch_refuses_do_not_keep_it_waiting(clock: FakeClock, kind: str) -> None:
    client, endpoint = _after_round_one(clock, JUNK[kind], 400)  # 100 fake seconds of it
    began = clock.now
    stats = client.run(idle_timeout=IDLE)
    assert stats.outcome == "idle"
    # it gave up once the idle timer had passed since the round's end, junk or not
    assert clock.now - began <= IDLE + 2 * STEP, f"kept waiting {clock.now - began:.1f} s"
    assert endpoint.taken <= IDLE / STEP + 2
    assert "nothing this branch could take" in stats.end_reason


def test_a_late_payload_of_a_round_the_branch_left_does_not_keep_it_waiting(
    clock: FakeClock,
) -> None:
    def failing(model: np.ndarray) -> np.ndarray:
        raise RuntimeError("no data today")

    endpoint = ScriptedEndpoint(clock, [encode_message(Relay(1, b"\x00" * 8))] * 400)
    client = _branch(endpoint, failing)
    client.handle(_start(1))  # it leaves round 1: its late payloads are dropped quietly
    client.handle(encode_message(RoundEnd(1, False, "dropouts")))
    began = clock.now
    assert client.run(idle_timeout=IDLE).outcome == "idle"
    assert clock.now - began <= IDLE + 2 * STEP


def test_a_silent_server_is_still_called_silent(clock: FakeClock) -> None:
    client, _ = _after_round_one(clock, b"", 0)
    stats = client.run(idle_timeout=IDLE)
    assert stats.outcome == "idle"
    assert stats.end_reason == "the server was silent for 1 s between rounds"


def test_the_idle_timer_counts_from_the_rounds_end(clock: FakeClock) -> None:
    """A round's end is progress: the timer starts there, not at the run's start."""
    endpoint = ScriptedEndpoint(clock, [])
    client = _branch(endpoint)
    client.handle(_start(1, deadline=10.0))  # inside it, the deadline rules
    clock.now += 10.0 + ROUND_GRACE_SECONDS - STEP
    endpoint.feed([encode_message(RoundEnd(1, True))])
    ended = clock.now + STEP
    stats = client.run(idle_timeout=IDLE)
    assert stats.outcome == "idle" and client.stats.rounds_completed == 1
    assert clock.now - ended == pytest.approx(IDLE)


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(["notice", "junk"]), min_size=1, max_size=60))
def test_only_progress_restarts_the_timer(kinds: list[str]) -> None:
    """Whatever mix of notices it takes and messages it refuses the server sends, STEP
    apart, the branch gives up exactly when IDLE has passed since the last message it
    took, or since the round it told of may have ended (a notice of deadline 0: its
    ROUND_GRACE_SECONDS), whichever is later (the round's end comes to no branch out
    of it: test_idle_clock_round_wait_restart.py)."""
    with fake_time(client_module) as clock:
        script, number = [], 1
        for kind in kinds:
            number += kind == "notice"
            script.append(_notice(number) if kind == "notice" else JUNK["undecodable"])
        client, endpoint = _after_round_one(clock, b"", 0)
        began = clock.now
        endpoint.feed(script)
        assert client.run(idle_timeout=IDLE).outcome == "idle"
        # replay: when the branch must have given up
        heard, until, arrival = began, began, began
        for kind in kinds:
            arrival += STEP
            if arrival > max(heard, until) + IDLE:
                break  # it had given up before this message came
            if kind == "notice":
                heard, until = arrival, arrival + ROUND_GRACE_SECONDS
        assert clock.now == max(heard, until) + IDLE
