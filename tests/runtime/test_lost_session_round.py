"""A round whose session was lost is counted lost, whatever its end says.

Before (review, 2026-12-06) :meth:`FederationClient.reconnected` kept the round the branch
had started and its end still due, so a branch that lost its session mid-round and then
heard that round's end on its new session counted it completed (or aborted) by the
server's verdict. The server had counted the branch gone from the round the moment its
session ended (its masked input in the sum or not): the branch's summary line claimed a
round it had not seen through. It is counted lost now, once, when the branch goes on on
its new session; the round's end, when it comes, is taken quietly (not refused).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ClientStats, FederationClient
from secagg.runtime.wire import (
    FederationEnd,
    Leave,
    Relay,
    RoundEnd,
    RoundStart,
    encode_message,
)
from secagg.transport.base import NotConnected

D = 4
FED = "bank-a"
NAME = "branch-00"
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))
PLAIN = encode_spec(get_backend("plain").plan(3, D))


def _branch(train=None) -> FederationClient:  # type: ignore[no-untyped-def]
    hook = train if train is not None else (lambda model: np.full_like(model, 0.1))
    return FederationClient(
        NAME,
        hook,
        SentMessages(),  # type: ignore[arg-type]
        policy=BranchPolicy(federation=FED),
        stop_on_refusal=False,
    )


def _start(number: int, spec: bytes = SPEC) -> bytes:
    return encode_message(RoundStart(number, 0, spec, np.zeros(D), 1.0, federation=FED))


def _counts(branch: FederationClient) -> tuple[int, int, int, int, int]:
    return _counts_of(branch.stats)


@pytest.mark.parametrize("complete", [True, False], ids=["completed", "aborted"])
def test_a_round_whose_session_was_lost_is_lost_though_its_end_comes(complete: bool) -> None:
    branch = _branch()
    branch.handle(_start(1))  # trained; its masked input went out on the first session
    branch.reconnected(SentMessages())  # type: ignore[arg-type]  # that session was lost
    assert branch.stats.rounds_lost == 1  # over for the branch from here
    branch.handle(encode_message(RoundEnd(1, complete)))  # the server's verdict, heard late
    # lost once: not completed nor aborted, and the end is not refused either
    assert _counts(branch) == (0, 0, 0, 1, 0)
    assert branch.stats.rounds_ended == 0 and branch.stats.rounds_started == 1
    branch.handle(encode_message(RoundEnd(1, complete)))  # a replay is still refused
    assert _counts(branch) == (0, 0, 0, 1, 1)


def test_a_lost_round_whose_end_never_comes_is_counted_once() -> None:
    branch = _branch()
    branch.handle(_start(1))
    branch.reconnected(SentMessages())  # type: ignore[arg-type]
    branch.reconnected(SentMessages())  # type: ignore[arg-type]  # lost again, still round 1
    branch.handle(_start(2))  # round 1's end never came: not counted again as superseded
    branch.handle(encode_message(RoundEnd(2, True)))
    assert _counts(branch) == (1, 0, 0, 1, 0)
    assert branch.stats.rounds_started == 2


def test_a_round_left_or_refused_before_the_loss_keeps_its_own_count() -> None:
    """Guards: a round the branch left on its own, or refused by its policy, is counted as
    that (once), not also lost (these held before the fix too)."""

    def broken(model: np.ndarray) -> np.ndarray:
        raise RuntimeError("the hook's data source is down")

    left = _branch(broken)
    left.handle(_start(1))
    assert any(isinstance(m, Leave) for m in left._transport.sent)  # type: ignore[union-attr]
    left.reconnected(SentMessages())  # type: ignore[arg-type]
    left.handle(encode_message(RoundEnd(1, True)))
    assert _counts(left) == (0, 0, 1, 0, 0)

    refused = _branch()
    refused.handle(_start(1, PLAIN))  # plain is refused by the default policy: skipped
    refused.reconnected(SentMessages())  # type: ignore[arg-type]
    refused.handle(encode_message(RoundEnd(1, True)))
    assert _counts(refused) == (0, 0, 0, 0, 0) and refused.stats.rounds_refused == 1


def test_no_round_in_flight_no_round_lost() -> None:
    branch = _branch()
    branch.reconnected(SentMessages())  # type: ignore[arg-type]  # the first session
    branch.handle(_start(1))
    branch.handle(encode_message(RoundEnd(1, True)))
    branch.reconnected(SentMessages())  # type: ignore[arg-type]  # between rounds
    assert _counts(branch) == (1, 0, 0, 0, 0)


def test_a_late_payload_of_the_lost_round_is_late_not_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server sends a round's payloads by name: one of the round whose session was
    lost (an unmask request, its masked input having arrived before the loss) reaches
    the new session. It is late, not malformed: dropped at DEBUG, counted nowhere (it
    was one refused message, logged "refused a message (MalformedMessage): a payload
    for round 1, not ours", against a server that did nothing wrong)."""
    branch = _branch()
    branch.handle(_start(1))
    branch.reconnected(SentMessages())  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="secagg.client"):
        branch.handle(encode_message(Relay(1, b"an unmask request of round 1")))
    assert _counts(branch) == (0, 0, 0, 1, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "refused" in r.message]
    assert any("late payload of round 1" in r.message for r in caplog.records)
    assert branch._transport.sent == []  # type: ignore[union-attr]  # nothing answered
    branch.handle(encode_message(RoundEnd(1, True)))  # its end, then, taken quietly too
    assert _counts(branch) == (0, 0, 0, 1, 0)
    # once the round's end came (and the next round started), a payload of it is a
    # payload of no round in flight: refused as before
    branch.handle(encode_message(Relay(1, b"after the end")))
    assert _counts(branch) == (0, 0, 0, 1, 1)
    branch.handle(_start(2))
    branch.handle(encode_message(Relay(3, b"a round never started")))
    assert branch.stats.refused_messages == 2


def test_a_payload_of_another_round_than_the_lost_one_is_still_refused() -> None:
    """Guard: only the lost round's payloads are late; one of a round this branch never
    took is refused, as before (this held before the fix too)."""
    branch = _branch()
    branch.handle(_start(1))
    branch.reconnected(SentMessages())  # type: ignore[arg-type]
    branch.handle(encode_message(Relay(2, b"a round not started")))
    assert _counts(branch) == (0, 0, 0, 1, 1)


def _restartable(state: Path) -> FederationClient:
    return FederationClient(
        NAME,
        lambda model: np.full_like(model, 0.1),
        SentMessages(),  # type: ignore[arg-type]
        policy=BranchPolicy(federation=FED),
        stop_on_refusal=False,
        state=state,
    )


def test_a_restarted_process_takes_the_late_end_and_payloads_of_its_last_round_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A branch killed mid-round and restarted at once (its state file kept) is on a new
    session before the round ends; the server sends the round's payloads and its end by
    name, so they reach the new process. It took them for a server's mistakes: WARNING
    "refused a message (MalformedMessage): a payload for round 1, not ours", then "round
    1 has already ended", two refused messages at every such restart. They are late:
    dropped, counted nowhere (the round was the dead process's, not this one's)."""
    state = tmp_path / "branch.state"
    _restartable(state).handle(_start(1))  # took round 1, then was killed
    restarted = _restartable(state)
    restarted.reconnected(SentMessages())  # type: ignore[arg-type]  # its first session
    with caplog.at_level(logging.DEBUG, logger="secagg.client"):
        restarted.handle(encode_message(Relay(1, b"an unmask request of round 1")))
        restarted.handle(encode_message(RoundEnd(1, True)))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
    assert _counts(restarted) == (0, 0, 0, 0, 0) and restarted.stats.rounds_started == 0
    restarted.handle(encode_message(RoundEnd(1, True)))  # the end again: a replay, refused
    assert _counts(restarted) == (0, 0, 0, 0, 1)
    restarted.handle(_start(1))  # round 1 itself is still refused (the mark)
    assert restarted.stats.rounds_started == 0
    restarted.handle(_start(2))
    restarted.handle(encode_message(RoundEnd(2, True)))
    assert _counts(restarted) == (1, 0, 0, 0, 2) and restarted.stats.rounds_started == 1


def test_a_restarted_process_whose_last_round_never_ends_goes_on(tmp_path: Path) -> None:
    """Guard: the next round's start supersedes the dead process's round without counting
    it (this process never took it), and a fresh state file has no such round."""
    state = tmp_path / "branch.state"
    _restartable(state).handle(_start(3))
    restarted = _restartable(state)
    restarted.handle(_start(4))
    restarted.handle(encode_message(RoundEnd(4, False)))
    assert _counts(restarted) == (0, 1, 0, 0, 0)
    fresh = _restartable(tmp_path / "other.state")
    fresh.handle(encode_message(RoundEnd(1, True)))  # no round taken: refused
    assert _counts(fresh) == (0, 0, 0, 0, 1)


class _Session:
    """A session that hands the branch ``messages``, then ends (``NotConnected``) or, with
    ``lost=False``, stays silent."""

    def __init__(self, messages: list[bytes], *, lost: bool) -> None:
        self._messages, self._lost = list(messages), lost
        self.sent: list[object] = []

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def receive(self, timeout: float | None) -> bytes | None:
        if self._messages:
            return self._messages.pop(0)
        if self._lost:
            raise NotConnected("the server's connection reset")
        return None

    def close(self) -> None:
        pass


def test_serve_counts_the_round_of_a_lost_session_lost() -> None:
    """The same through :meth:`FederationClient.serve`: the first session ends mid-round,
    the branch redials, and the new session brings that round's end, then the
    federation's: the summary says 1 lost, 0 completed."""
    sessions = [
        _Session([_start(1)], lost=True),
        _Session(
            [encode_message(RoundEnd(1, True)), encode_message(FederationEnd(1, True))],
            lost=False,
        ),
    ]
    stats = _branch().serve(lambda timeout: sessions.pop(0), give_up_after=60.0)  # type: ignore[arg-type,return-value]
    assert stats.outcome == "finished" and stats.sessions == 2
    assert _counts_of(stats) == (0, 0, 0, 1, 0)


def _counts_of(stats: ClientStats) -> tuple[int, int, int, int, int]:
    return (
        stats.rounds_completed,
        stats.rounds_aborted,
        stats.rounds_left,
        stats.rounds_lost,
        stats.refused_messages,
    )
