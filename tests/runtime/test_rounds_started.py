"""``ClientStats.rounds_started``: every round the branch took, refused or not.

Before (review, 2026-12-06) a round the branch's policy refused at its start was left out
of ``rounds_started`` while one refused at the protocol's setup, a phase later, was
counted: two refusals of the same kind, counted two ways, and ``rounds_started`` said
neither how many rounds the branch took nor how many it trained. Now it is the rounds
taken (the round numbers the branch advanced to), each of which ends one way: completed,
aborted, refused, left, or lost.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from _endpoints import SentMessages

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.base import ToParty
from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.protocol import decode, encode
from secagg.protocol.messages import RoundSetup
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import Leave, Relay, RoundEnd, RoundStart, encode_message, round_context

D = 4
FED = "bank-a"
NAME = "branch-00"
SPEC = MaskingBackend(graph="complete", value_bound=4.0).plan(3, D)


def _branch(trained: list[int], **kwargs: object) -> FederationClient:
    def train(model: np.ndarray) -> np.ndarray:
        trained.append(int(model[0]))
        return np.full_like(model, 0.1)

    return FederationClient(NAME, train, SentMessages(), stop_on_refusal=False, **kwargs)  # type: ignore[arg-type]


def _start(number: int, spec: bytes, federation: str = FED) -> bytes:
    model = np.zeros(D)
    model[0] = number
    return encode_message(RoundStart(number, 0, spec, model, 1.0, federation=federation))


def _weakened_setup(number: int) -> bytes:
    """The round's real setup for party 0, its threshold lowered below the branch's own."""
    server = get_backend(SPEC.name).server(SPEC)
    server.bind_round(round_context(number, FED))
    (setup,) = [
        decode(e.payload)
        for e in server.start()
        if isinstance(e, ToParty) and e.party == 0 and isinstance(decode(e.payload), RoundSetup)
    ]
    assert setup.threshold > 1
    return encode_message(Relay(number, encode(dataclasses.replace(setup, threshold=1))))


def test_a_round_refused_at_its_start_and_one_refused_at_its_setup_both_count_as_started() -> None:
    trained: list[int] = []
    client = _branch(trained)
    stats = client.stats
    plain = encode_spec(get_backend("plain").plan(3, D))
    client.handle(_start(1, plain))  # refused at its start: nothing trained
    assert (stats.rounds_started, stats.rounds_refused, trained) == (1, 1, [])
    client.handle(_start(2, encode_spec(SPEC)))  # taken and trained
    assert (stats.rounds_started, trained) == (2, [2])
    client.handle(_weakened_setup(2))  # refused a phase later, by the same policy
    assert (stats.rounds_started, stats.rounds_refused, trained) == (2, 2, [2])
    assert isinstance(client._transport.sent[-1], Leave)  # type: ignore[union-attr]
    for number in (1, 2):  # their ends are taken quietly: each round counted once
        client.handle(encode_message(RoundEnd(number, False)))
    assert stats.rounds_started == stats.rounds_ended + stats.rounds_lost == 2
    assert stats.refused_messages == 1  # round 1's end came after round 2 started
    client.handle(_start(3, encode_spec(SPEC)))
    client.handle(encode_message(RoundEnd(3, True)))
    assert (stats.rounds_started, stats.rounds_completed, stats.rounds_ended) == (3, 1, 3)


def test_a_start_refused_before_it_is_taken_is_not_started(tmp_path) -> None:
    """A replay of the last round, another federation's start and one that does not fit
    the branch never become its round: not started (another federation's is counted
    refused, as its policy's refusal), and the state file's round is unchanged."""
    trained: list[int] = []
    client = _branch(
        trained, policy=BranchPolicy(federation=FED), state=tmp_path / "branch.state", dimension=D
    )
    stats = client.stats
    client.handle(_start(1, encode_spec(SPEC)))
    assert stats.rounds_started == 1
    client.handle(_start(1, encode_spec(SPEC)))  # a replay
    client.handle(_start(2, encode_spec(SPEC), federation="bank-b"))  # another federation's
    wrong = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D + 1))
    client.handle(_start(3, wrong))  # the spec carries another dimension than the model
    assert stats.rounds_started == 1 and trained == [1] and client._mark.last == 1  # type: ignore[union-attr]
    assert stats.rounds_refused == 1 and stats.refused_messages == 2
