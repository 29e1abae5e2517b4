"""A not-sampled notice of a far-future round does not make the branch refuse the honest
notices after it.

Why. A branch took a :class:`~secagg.runtime.wire.NotSampled` notice only of a round
above every round it had started *or been told of*. One notice of round 2**32 - 1 (the
largest the wire carries), from a hostile server or a buggy one, was taken (nothing
tells it from an honest notice), and from then on every honest notice was "a round at
or below one it has seen": refused, the idle timer running, so a branch the sampling
left out of a few rounds in a row gave up while eligible, until a round start of its
own came (and, with none, for good). A notice is now taken once per round above the
last round the branch *started*: the notices it took since then are remembered one by
one (a bounded set), so a replay is still refused, and a notice of a round far ahead
blocks nothing but itself. A round start, which a branch enforces strictly above the
last one (the replay defence of its signed keys), is not changed: see
docs/deployment.md ("A far-future round number").
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _scripted_clock import FakeClock, PacedEndpoint
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.runtime.client as client_module
from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import MAX_NOTICES_KEPT, ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.wire import (
    MAX_DEADLINE_SECONDS,
    FederationEnd,
    NotSampled,
    RoundEnd,
    RoundStart,
    encode_message,
)
from secagg.transport.inprocess import InProcessHub

D = 4
FEDERATION = "far-future"
FAR = 2**32 - 1  # the largest round number a message carries (u32)
IDLE = 60.0
STEP = 30.0  # fake seconds between two honest notices: inside IDLE


def _branch(transport: object = None) -> FederationClient:
    return FederationClient(
        "b",
        lambda model: np.zeros_like(model),
        transport,  # type: ignore[arg-type]
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )


def _notice(number: int, deadline: float = 0.0) -> bytes:
    return encode_message(NotSampled(number, deadline, federation=FEDERATION))


def _start(number: int) -> bytes:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, 100.0, federation=FEDERATION)
    )


def test_honest_notices_after_a_far_future_one_are_taken() -> None:
    branch = _branch()
    branch.handle(_notice(FAR))
    for number in (2, 3, 4):
        branch.handle(_notice(number))
    assert branch.stats.refused_messages == 0
    assert branch.stats.rounds_not_sampled == 4
    branch.handle(_notice(FAR))  # the far-future notice again: a replay, refused
    branch.handle(_notice(3))  # and an honest one again
    assert branch.stats.refused_messages == 2 and branch.stats.rounds_not_sampled == 4


def test_a_branch_left_out_after_a_far_future_notice_stays_to_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten honest notices, one every STEP (inside the idle timer), then the end: the
    branch sees the federation through instead of giving up after the bogus notice."""
    clock = FakeClock()
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    honest = [_notice(n) for n in range(2, 12)]
    script = [_notice(FAR), *honest, encode_message(FederationEnd(11, True))]
    stats = _branch(PacedEndpoint(clock, script, STEP)).run(idle_timeout=IDLE)
    assert stats.outcome == "finished", stats.end_reason
    assert stats.rounds_not_sampled == 11 and stats.refused_messages == 0


def test_a_start_clears_the_notices_and_older_rounds_stay_refused() -> None:
    """The branch's own round start is the floor again: notices at or below it are
    refused, and after the round a notice of a later round is taken."""
    branch = _branch(InProcessHub().connect("b"))
    branch.handle(_notice(FAR))
    branch.handle(_notice(5))
    branch.handle(_start(6))
    branch.handle(encode_message(RoundEnd(6, True)))
    branch.handle(_notice(5))  # below its own round
    branch.handle(_notice(6))  # its own round
    assert branch.stats.refused_messages == 2
    branch.handle(_notice(7))
    assert branch.stats.rounds_not_sampled == 3 and branch.stats.refused_messages == 2


def test_the_notices_kept_are_bounded_and_later_rounds_still_taken() -> None:
    """A server sending notices of many far-future rounds fills no memory: past
    :data:`MAX_NOTICES_KEPT` the highest kept is forgotten, and the honest notices
    after them are still taken, once each."""
    branch = _branch()
    for k in range(MAX_NOTICES_KEPT + 10):
        branch.handle(_notice(FAR - k))
    assert len(branch._notices_taken) <= MAX_NOTICES_KEPT
    taken = branch.stats.rounds_not_sampled
    for number in range(2, 12):
        branch.handle(_notice(number))
    assert branch.stats.rounds_not_sampled == taken + 10
    assert branch.stats.refused_messages == 0
    assert len(branch._notices_taken) <= MAX_NOTICES_KEPT
    branch.handle(_notice(2))  # the lowest are the ones kept: a replay is refused
    assert branch.stats.refused_messages == 1


@settings(max_examples=40, deadline=None)
@given(numbers=st.lists(st.sampled_from([1, 2, 3, 5, 8, 1000, FAR]), max_size=14))
def test_each_rounds_notice_is_taken_once_whatever_came_before(numbers: list[int]) -> None:
    """No notice keeps another round's notice out: every round's first notice is
    taken, every repeat refused, in any order."""
    branch = _branch()
    for number in numbers:
        branch.handle(_notice(number))
    distinct = len(set(numbers))
    assert branch.stats.rounds_not_sampled == distinct
    assert branch.stats.refused_messages == len(numbers) - distinct


def test_a_far_future_round_start_is_taken_and_later_starts_refused_as_documented() -> None:
    """The limit docs/deployment.md states ("A far-future round number"): a start of a
    far-future round is taken (nothing tells it from an honest one), and an honest
    start below it is then refused as a replay, naming both rounds, and changes nothing;
    the notices after it are still taken (the part that is fixed)."""
    branch = _branch(InProcessHub().connect("b"))
    branch.handle(_start(4_000_000_000))
    branch.handle(encode_message(RoundEnd(4_000_000_000, True)))
    assert branch.stats.rounds_completed == 1
    branch.handle(_start(12))
    assert branch.stats.refused_messages == 1 and branch.stats.rounds_started == 1
    assert branch._started == 4_000_000_000
    branch.handle(_notice(4_000_000_001))
    assert branch.stats.rounds_not_sampled == 1


def test_a_notice_of_the_longest_deadline_is_overruled_by_the_next_rounds_notice() -> None:
    """A far-future *time*: a notice naming the longest deadline the wire takes (a week)
    makes the branch wait that long only until the next round's notice, whose deadline
    is then the one it waits; nothing of the long one stays."""
    branch = _branch()
    branch.handle(_notice(2, deadline=MAX_DEADLINE_SECONDS))
    assert branch._wait(IDLE) > MAX_DEADLINE_SECONDS - 60
    branch.handle(_notice(3, deadline=0.0))
    assert branch._wait(IDLE) <= max(IDLE, ROUND_GRACE_SECONDS) + 1
    assert branch.stats.refused_messages == 0


def test_past_the_bound_a_replay_of_the_highest_is_taken_again_as_documented() -> None:
    """docs/deployment.md: past MAX_NOTICES_KEPT rounds the highest is forgotten, so a
    second notice of it is taken and counted again (the liveness side of the bound: a
    bound that refused would let a server keep honest notices out). Pinned so the page
    stays true; below the bound a replay is refused (the test above)."""
    branch = _branch()
    for number in range(1, MAX_NOTICES_KEPT + 2):
        branch.handle(_notice(number))
    taken = branch.stats.rounds_not_sampled
    branch.handle(_notice(MAX_NOTICES_KEPT + 1))
    assert branch.stats.rounds_not_sampled == taken + 1
    assert branch.stats.refused_messages == 0
    assert len(branch._notices_taken) == MAX_NOTICES_KEPT
