"""A hostile server against a branch's idle timer: messages that look like progress but
move nothing must not restart it.

Why. Since 2026-12-06 the branch's idle timer (``secagg client --idle``) restarts only
on a message that moved something (``FederationClient._progress``), so a stream of
messages it refuses cannot keep it waiting forever. Two kinds of message still restarted
it while moving nothing, each one a server could repeat without end:

* the notice of the very round a branch lost (it reconnected inside its round), taken
  once as that round's deadline, was taken again after a later round's notice: the rule
  "once" compared with the *last* notice only, so the two notices alternately (an honest
  server's two, replayed) were each taken, each restarting the timer and counting one
  more round not sampled, for as long as the server sent them;
* a payload of its round its session took without answering: a protocol round's abort
  (``RoundAbort``), which the session takes again and again once the round is aborted
  (or done), so one abort repeated kept a branch inside its round past the round's
  deadline for good.

Each of those now leaves the timer running: the branch gives up by ``--idle`` plus the
round's deadline (plus the grace), as it does on silence. The branch's clock is a fake
(``secagg.runtime.client.time``) moved by the scripted endpoint (tests/_scripted_clock.py):
no real waiting.
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
from secagg.aggregation.base import Announce
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.wire import (
    NotSampled,
    Relay,
    RoundEnd,
    RoundStart,
    decode_message,
    encode_message,
    round_context,
)

D = 4
COPIES = 2000  # 500 fake seconds of them: far beyond IDLE plus the round's grace
FEDERATION = "idle-hostile"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with fake_time(client_module) as fake:
        yield fake


def _notice(number: int) -> bytes:
    return encode_message(NotSampled(number, 0.0, federation=FEDERATION))


def test_the_lost_rounds_notice_is_taken_once_not_after_every_later_notice(
    clock: FakeClock,
) -> None:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    start = RoundStart(1, 0, spec, np.zeros(D), None, False, 0.0, federation=FEDERATION)
    first = ScriptedEndpoint(clock)
    branch = FederationClient(
        "b",
        lambda m: np.zeros_like(m),
        first,  # type: ignore[arg-type]
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )
    branch.handle(encode_message(start))
    again = ScriptedEndpoint(clock)
    branch.reconnected(again)  # type: ignore[arg-type]  # round 1 is lost
    # the lost round's notice, the next round's, then both again and again
    again.feed([_notice(1), _notice(2)] * (COPIES // 2))
    began = clock.now
    stats = branch.run(idle_timeout=IDLE)
    assert stats.outcome == "idle"
    # both notices taken once (deadline 0: the grace), then nothing restarted the timer
    waited = clock.now - began
    assert waited <= 2 * STEP + ROUND_GRACE_SECONDS + IDLE, f"kept waiting {waited:.0f} s"
    assert stats.rounds_not_sampled == 1  # round 2; round 1 is counted lost
    assert stats.rounds_lost == 1
    assert stats.refused_messages >= 1  # the replays are refused, as any replayed notice


def test_an_abort_repeated_does_not_keep_a_branch_in_its_round(clock: FakeClock) -> None:
    backend = get_backend("secagg+", value_bound=1.0)
    spec = backend.plan(3, D)
    server = backend.server(spec)
    server.bind_round(round_context(1, FEDERATION))
    setup = next(o for o in server.start() if not isinstance(o, Announce) and o.party == 0)
    endpoint = ScriptedEndpoint(clock)
    branch = FederationClient(
        "b",
        lambda m: np.zeros_like(m),
        endpoint,  # type: ignore[arg-type]
        policy=BranchPolicy(federation=FEDERATION),
    )
    start = RoundStart(
        1, 0, encode_spec(spec), np.zeros(D), None, False, 0.0, federation=FEDERATION
    )
    branch.handle(encode_message(start))
    branch.handle(encode_message(Relay(1, setup.payload)))
    assert len(endpoint.sent) == 1  # the premise: its session answered the setup
    aborted = next(o for o in server.abort("the round deadline passed") if o.party == 0)
    endpoint.feed([encode_message(Relay(1, aborted.payload))] * COPIES)
    began = clock.now
    stats = branch.run(idle_timeout=IDLE)
    assert stats.outcome == "idle"
    waited = clock.now - began
    # the round's deadline (0) plus the grace, then the idle timer: not the 500 s of aborts
    assert waited <= ROUND_GRACE_SECONDS + IDLE + STEP, f"kept waiting {waited:.0f} s"
    assert [type(decode_message(p)) for p in endpoint.sent] == [Relay]  # nothing answered


def test_a_notice_of_a_round_does_not_make_the_branch_refuse_that_rounds_start(
    clock: FakeClock,
) -> None:
    """A server that says a round runs without a branch and then sends it that round's
    start (a start it could not send at first, resent; or a server changing its mind)
    has the branch take the round: the notice is a deadline to wait, not a refusal."""
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    endpoint = ScriptedEndpoint(clock)
    branch = FederationClient(
        "b",
        lambda m: np.full_like(m, 0.1),
        endpoint,  # type: ignore[arg-type]
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )
    branch.handle(_notice(1))
    start = RoundStart(1, 0, spec, np.zeros(D), None, False, 60.0, federation=FEDERATION)
    branch.handle(encode_message(start))
    assert branch.stats.rounds_started == 1 and branch.stats.refused_messages == 0
    assert [type(decode_message(p)) for p in endpoint.sent] == [Relay]  # its upload


#: what a server may send a branch between rounds, each any number of times: notices and
#: ends of rounds 1 to 4 (round 1 is the one the branch lost), and junk
POOL = [
    *(_notice(n) for n in range(1, 5)),
    *(encode_message(RoundEnd(n, True)) for n in range(1, 5)),
    b"junk",
]


@settings(max_examples=40, deadline=None)
@given(picks=st.lists(st.integers(0, len(POOL) - 1), max_size=200))
def test_no_message_moves_a_branch_twice(picks: list[int]) -> None:
    """Whatever the server sends, in whatever order and however often, each distinct
    message restarts the branch's idle timer at most once: so the timer runs out at most
    ``len(POOL)`` restarts (and one round's deadline) after the branch started waiting,
    not at the server's pleasure."""
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    branch = FederationClient(
        "b",
        lambda m: np.zeros_like(m),
        ScriptedEndpoint(FakeClock()),  # type: ignore[arg-type]
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )
    start = RoundStart(1, 0, spec, np.zeros(D), None, False, 0.0, federation=FEDERATION)
    branch.handle(encode_message(start))
    branch.reconnected(ScriptedEndpoint(FakeClock()))  # type: ignore[arg-type]  # round 1 is lost
    restarts: list[int] = []  # one entry per timer restart: the pool message that made it
    progress = branch._progress

    def counted() -> None:
        restarts.append(pick)
        progress()

    branch._progress = counted  # type: ignore[method-assign]
    for pick in picks:
        branch.handle(POOL[pick])
    assert len(restarts) == len(set(restarts)), f"restarted again by {sorted(restarts)}"
