"""A branch the sampling leaves out of rounds is told so, and does not give up while
the federation runs without it.

Why: a branch waits for the server between rounds for its idle timer (``secagg client
--idle``), and one left out of a round heard nothing from the server while the round
ran: with ``sampling.rate`` < 1 a branch out of several rounds in a row gave up
(``BranchGaveUp``) while still eligible, so a federation of long rounds and a low rate
lost its branches one by one. The server now sends each connected client the sampling
left out a :class:`~secagg.runtime.wire.NotSampled` notice (the round's number, its
federation and its deadline, nothing private), and the branch waits that round's
deadline before its idle timer counts again. A notice is taken between rounds only.

The federation test: Poisson sampling at rate 0.5 and ``federation.seed`` 57 leave
``branch-3`` out of all three rounds (asserted from the results: the premise, not a
hope), and ``branch-3`` has a short idle timer. The sampled branches' training waits
(with a generous bound) until ``branch-3`` has either given up or is waiting for the
server with a timeout beyond its idle timer, once per round, so each round lasts longer
than ``branch-3``'s idle timer would allow without the notice; no fixed sleep decides
anything.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND, Party, wait_until
from _watched_endpoint import WatchedEndpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import MalformedMessage
from secagg.runtime.client import ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import (
    MAX_DEADLINE_SECONDS,
    NotSampled,
    RoundEnd,
    RoundStart,
    decode_message,
    encode_message,
)
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = [f"branch-{i}" for i in range(4)]
LEFT_OUT = "branch-3"
IDLE = 0.5  # the left-out branch's idle timer: far below every round's length here
FEDERATION = "unsampled"
PLAIN = BranchPolicy(allow_plain=True)


def test_a_branch_left_out_of_rounds_in_a_row_stays_to_the_federations_end(
    tmp_path: Path,
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": FEDERATION,
                "clients": NAMES,
                "dimension": D,
                "rounds": 3,
                "seed": 57,
            },
            "sampling": {"kind": "poisson", "rate": 0.5},
            "backend": {"name": "plain", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = InProcessHub()
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    watched = WatchedEndpoint(hub.connect(LEFT_OUT), IDLE)
    left_out = FederationClient(LEFT_OUT, lambda m: np.zeros_like(m), None, policy=PLAIN)
    gave_up = threading.Event()

    def serve_left_out() -> object:
        try:
            return left_out.serve(
                lambda timeout: watched,  # type: ignore[arg-type,return-value]
                idle_timeout=IDLE,
                reconnect=False,
            )
        finally:
            gave_up.set()

    def train(model: np.ndarray) -> np.ndarray:
        # the round lasts until the left-out branch gave up, or waits past its idle
        # timer for this round (one long wait a notice taken)
        this_round = server.next_round - 1
        assert wait_until(lambda: gave_up.is_set() or watched.long_waits >= this_round)
        return np.full_like(model, 0.1)

    parties = []
    for name in NAMES[:-1]:
        client = FederationClient(name, train, hub.connect(name), policy=PLAIN)
        parties.append(Party(lambda c=client: c.run(idle_timeout=BOUND)))
    lone = Party(serve_left_out)
    results = server.run(wait_for_clients=BOUND, max_attempts=3)
    assert [r.status for r in results] == ["complete"] * 3, [r.reason for r in results]
    assert all(LEFT_OUT not in r.participants for r in results)  # the seed's premise
    assert lone.done.wait(BOUND) and all(p.done.wait(BOUND) for p in parties)
    assert lone.error is None, f"{LEFT_OUT} gave up while eligible: {lone.error}"
    assert lone.value.outcome == "finished"
    assert lone.value.rounds_not_sampled == 3
    assert lone.value.rounds_started == 0 and lone.value.refused_messages == 0


# --- the branch's side: a notice is taken between rounds only ----------------------


def _branch(**kwargs: object) -> tuple[FederationClient, InProcessHub]:
    hub = InProcessHub()
    client = FederationClient(
        "b", lambda m: np.zeros_like(m), hub.connect("b"), policy=PLAIN, **kwargs
    )
    return client, hub


def _notice(number: int, deadline: float = 120.0, federation: str = FEDERATION) -> bytes:
    return encode_message(NotSampled(number, deadline, federation=federation))


def _start(number: int) -> bytes:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, 100.0, federation=FEDERATION)
    )


def test_a_notice_makes_the_branch_wait_the_rounds_deadline() -> None:
    client, _ = _branch()
    assert client._wait(IDLE) == IDLE
    client.handle(_notice(1, deadline=120.0))
    assert client.stats.rounds_not_sampled == 1 and client.stats.refused_messages == 0
    assert client._wait(IDLE) > 120.0 + ROUND_GRACE_SECONDS - 5
    assert client._wait(None) is None  # no idle limit: still none
    client.handle(_start(2))  # its own round: the round's deadline, not the notice's
    assert client._wait(IDLE) <= 100.0 + ROUND_GRACE_SECONDS


def test_a_notice_inside_the_branchs_round_is_refused_and_changes_nothing() -> None:
    client, _ = _branch()
    client.handle(_start(1))
    waited = client._wait(IDLE)
    client.handle(_notice(2))
    assert client.stats.refused_messages == 1 and client.stats.rounds_not_sampled == 0
    assert abs(client._wait(IDLE) - waited) < 5
    client.handle(encode_message(RoundEnd(1, True)))
    assert client.stats.rounds_completed == 1
    client.handle(_notice(2))  # between rounds: taken
    assert client.stats.rounds_not_sampled == 1 and client.stats.refused_messages == 1


def test_a_notice_after_a_lost_sessions_round_is_taken() -> None:
    client, _ = _branch()
    client.handle(_start(1))
    client.reconnected(InProcessHub().connect("b"))
    assert client.stats.rounds_lost == 1
    client.handle(_notice(2))
    assert client.stats.rounds_not_sampled == 1 and client.stats.refused_messages == 0


@pytest.mark.parametrize(
    ("number", "federation"),
    [
        (4, "another-one"),  # another federation than the one it takes the rounds of
        (3, FEDERATION),  # the round this branch started
        (2, FEDERATION),  # below it
    ],
    ids=["another-federation", "its-own-round", "an-older-round"],
)
def test_a_stale_or_foreign_notice_is_refused(number: int, federation: str) -> None:
    client, _ = _branch()
    client.federation = FEDERATION
    client.handle(_start(3))
    client.handle(encode_message(RoundEnd(3, True)))
    waited = client._wait(IDLE)
    client.handle(_notice(number, federation=federation))
    assert client.stats.refused_messages == 1 and client.stats.rounds_not_sampled == 0
    assert client._wait(IDLE) == waited == IDLE


@settings(max_examples=40, deadline=None)
@given(numbers=st.lists(st.integers(1, 12), max_size=12))
def test_notices_are_taken_once_each_in_any_order(numbers: list[int]) -> None:
    """Whatever order the server sends notices in, the branch takes each round's first
    notice and refuses the rest: one round's notice keeps out no other round's (a notice
    of a far-future round made it refuse every honest notice after it,
    tests/runtime/test_far_future_notice.py)."""
    client, _ = _branch()
    for number in numbers:
        client.handle(_notice(number))
    assert client.stats.rounds_not_sampled == len(set(numbers))
    assert client.stats.refused_messages == len(numbers) - len(set(numbers))


# --- the wire --------------------------------------------------------------------


def test_a_notice_round_trips_and_carries_only_its_three_fields() -> None:
    notice = NotSampled(7, 42.5, federation=FEDERATION)
    data = encode_message(notice)
    assert decode_message(data) == notice
    # header (10) + the name's length (4) and bytes + the deadline (8): nothing else
    assert len(data) == 10 + 4 + len(FEDERATION) + 8


@pytest.mark.parametrize("deadline", [-1.0, float("nan"), float("inf"), MAX_DEADLINE_SECONDS + 1])
def test_a_notice_with_a_deadline_out_of_range_is_refused(deadline: float) -> None:
    good = encode_message(NotSampled(1, 1.0, federation=FEDERATION))
    bad = good[:-8] + struct.pack("<d", deadline)
    with pytest.raises(MalformedMessage):
        decode_message(bad)


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=80))
def test_any_notice_body_decodes_or_is_refused_as_malformed(body: bytes) -> None:
    data = struct.pack("<4sBBI", b"SAFD", 2, 6, 1) + body
    try:
        message = decode_message(data)
    except MalformedMessage:
        return
    assert isinstance(message, NotSampled)


def test_a_kind_this_release_does_not_know_is_one_refused_message_naming_an_upgrade() -> None:
    """What an older branch makes of a notice (an unknown kind of version 2), shown with
    the next kind: a refusal, counted, no crash and no leave."""
    client, hub = _branch()
    future = struct.pack("<4sBBI", b"SAFD", 2, 7, 1) + b"\x00" * 8
    with pytest.raises(MalformedMessage, match="upgrade"):
        decode_message(future)
    client.handle(future)
    assert client.stats.refused_messages == 1
    assert hub.receive(timeout=0.0) is None  # nothing sent to the server (no leave)
