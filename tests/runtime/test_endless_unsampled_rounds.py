"""A server that runs round after round without this branch keeps it waiting: the
documented limit (docs/deployment.md, "Endless rounds without this branch").

Why not a bound on the rounds a branch sits out: an honest server sends a
:class:`~secagg.runtime.wire.NotSampled` notice each round to every connected branch it
leaves out, a benched, excluded or budget-spent branch included, for as long as the
federation runs (:meth:`FederationServer._tell_unsampled`), so a branch cannot tell a
server that never samples it from an honest one that has excluded it or samples at a
low rate; and a notice carries nothing and asks nothing, so waiting costs the branch
no privacy. What the branch does bound: each round's notice is taken once (a replay,
or one of a round at or below the last it started, moves nothing), and the count is
in its summary (``rounds_not_sampled``). The clock is a fake: no real waiting.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _scripted_clock import FakeClock, PacedEndpoint

import secagg.runtime.client as client_module
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import FederationEnd, NotSampled, encode_message

FEDERATION = "endless"
IDLE = 60.0
STEP = 30.0  # fake seconds between two rounds' notices: inside IDLE
ROUNDS = 2000  # 60 000 fake seconds: a thousand idle timers


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def _branch(script: list[bytes], clock: FakeClock) -> FederationClient:
    return FederationClient(
        "b",
        lambda model: np.zeros_like(model),
        PacedEndpoint(clock, script, STEP),  # type: ignore[arg-type]
        policy=BranchPolicy(allow_plain=True, federation=FEDERATION),
    )


def _notice(number: int) -> bytes:
    return encode_message(NotSampled(number, 0.0, federation=FEDERATION))


def test_a_branch_left_out_of_every_round_waits_and_counts_them(clock: FakeClock) -> None:
    script = [_notice(n) for n in range(1, ROUNDS + 1)]
    script.append(encode_message(FederationEnd(ROUNDS, True)))
    stats = _branch(script, clock).run(idle_timeout=IDLE)
    assert stats.outcome == "finished"
    assert stats.rounds_not_sampled == ROUNDS and stats.rounds_started == 0


def test_the_same_rounds_notices_again_do_not_keep_it(clock: FakeClock) -> None:
    """Endless *new* rounds keep it; the old rounds' notices again do not: each is
    refused, the idle timer runs, and the branch gives up."""
    script = [_notice(n) for n in range(1, 11)] * (ROUNDS // 10)
    stats = _branch(script, clock).run(idle_timeout=IDLE)
    assert stats.outcome == "idle"
    assert stats.rounds_not_sampled == 10
