"""Hostile deliveries at every phase of a round, on both sides, under random dropouts.

tests/protocol/test_adversarial.py refuses one example of each kind (mostly in the
first phase) and fuzzes the first message of a phase; this drives whole rounds with
random dropout schedules (a client may vanish before any phase's message, including
after its masked input and before unmasking, or answer after the phase's deadline) and,
at every phase, hands the server and
a random client a hostile message of a random kind: one from another round, a duplicate,
one from an earlier or a later phase, one from a stranger or from a client that already
dropped, one for another recipient, or the genuine bytes truncated or extended. Each
must raise its typed error and leave the refusing object exactly as it was (the deep
fingerprint of ``refused_call``); after all of them the round ends in the exact sum of
the clients it reports, or aborts with a reason: the same outcome as without them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _harness import SteppedRound, fingerprint, refused_call, wire
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from secagg.errors import (
    DuplicateMessage,
    MalformedMessage,
    ProtocolError,
    SecAggError,
    UnexpectedMessage,
    UnknownParty,
    WrongRound,
)
from secagg.protocol import Server, ServerPhase, decode, encode
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    GRAPH_SEED_BYTES,
    ClientMessage,
    GraphKind,
    Message,
    RoundAbort,
    RoundSetup,
    ServerMessage,
)

SERVER_KINDS = ("other_round", "duplicate", "earlier_phase", "later_phase", "stranger", "bytes")
CLIENT_KINDS = ("other_round", "replayed", "later_phase", "wrong_recipient", "bytes")


def _seeded_round(
    n: int, active: bool, graph: str, k: int | None, t: int, seed: bytes
) -> SteppedRound:
    """A stepped round whose neighbour graph comes from ``seed``: who can finish (and so
    what the test draws next) then follows from the draws alone."""
    r = SteppedRound(n, 5, active=active, graph=graph, k=k, threshold=t)
    public = {p: key.verify_key for p, key in r.identity.items()} or None
    r.server = Server(r.config, identity_keys=public, graph_seed=seed)
    r.to_clients = r.server.start()
    return r


def _record(r: SteppedRound, skip_at: dict[int, set[int]]) -> list[dict]:
    """Run ``r`` to its end, keeping every phase's requests and replies (for replays)."""
    phases: list[dict] = []
    index = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        requests = list(r.to_clients)
        replies = r.clients_reply(skip_at.get(index, set()), refusal_is_dropout=True)
        phases.append({"requests": requests, "replies": replies})
        r.server_receives(replies, refusal_is_dropout=True)
        index += 1
    return phases


def _bytes_refused(data: st.DataObject, message: Message) -> None:
    """The genuine message cut short or extended never decodes (the codec refuses it
    before any state machine sees it)."""
    raw = encode(message)
    if data.draw(st.booleans(), label="truncate"):
        cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
        changed = raw[:cut]
    else:
        changed = raw + data.draw(st.binary(min_size=1, max_size=9), label="extra")
    with pytest.raises(MalformedMessage):
        decode(changed)


def _hostile_to_server(
    data: st.DataObject,
    r: SteppedRound,
    accepted: list[ClientMessage],
    pending: list[ClientMessage],
    history: list[dict],
    other: list[dict],
    index: int,
) -> None:
    """One hostile message to the server, midway through phase ``index``."""
    kind = data.draw(st.sampled_from(SERVER_KINDS), label="server kind")
    server = r.server
    sample = (accepted + pending)[:1]
    if kind == "other_round":
        theirs = [m for p in other[index : index + 1] for m in p["replies"]]
        if not theirs:
            return
        message = data.draw(st.sampled_from(theirs), label="their reply")
        error: type[Exception] = WrongRound
    elif kind == "duplicate":
        if not accepted:
            return
        message = data.draw(st.sampled_from(accepted), label="accepted reply")
        error = DuplicateMessage
    elif kind == "earlier_phase":
        earlier = [m for p in history[:index] for m in p["replies"]]
        if not earlier:
            return
        message = data.draw(st.sampled_from(earlier), label="earlier reply")
        error = UnexpectedMessage
    elif kind == "later_phase":
        later = [m for p in other[index + 1 :] for m in p["replies"]]
        if not later:
            return
        theirs_later = data.draw(st.sampled_from(later), label="later reply")
        message = dataclasses.replace(theirs_later, round_id=server.round_id)
        error = UnexpectedMessage
    elif kind == "stranger":
        if not sample:
            return
        outsiders = [p for p in range(r.config.num_clients) if p not in server._expected]
        sender = data.draw(
            st.sampled_from([*outsiders, r.config.num_clients, r.config.num_clients + 7]),
            label="stranger",
        )
        message = dataclasses.replace(sample[0], sender=sender)
        error = UnknownParty
    else:
        if not sample:
            return
        _bytes_refused(data, sample[0])
        event("server: bytes refused by the codec")
        return
    refused_call(server, error, server.handle, message)
    event(f"server refused: {kind}")


def _hostile_to_client(
    data: st.DataObject,
    r: SteppedRound,
    requests: list[ServerMessage],
    history: list[dict],
    other: list[dict],
    index: int,
) -> None:
    """One hostile message to a random client that is still in the round, before its
    genuine message of phase ``index`` arrives."""
    if not requests:
        return
    genuine = data.draw(st.sampled_from(requests), label="victim's request")
    party = genuine.recipient
    client = r.clients[party]
    kind = data.draw(st.sampled_from(CLIENT_KINDS), label="client kind")
    if kind == "other_round":
        theirs = (
            [m for m in other[index]["requests"] if m.recipient == party]
            if index < len(other)
            else []
        )
        if not theirs or isinstance(theirs[0], RoundSetup):
            return  # a client awaiting its setup takes any round's: it has no round yet
        message: Message = theirs[0]
        error: type[Exception] = WrongRound
    elif kind == "replayed":
        earlier = [m for p in history[:index] for m in p["requests"] if m.recipient == party]
        if not earlier:
            return
        message = data.draw(st.sampled_from(earlier), label="replayed request")
        error = UnexpectedMessage
    elif kind == "later_phase":
        later = [
            m
            for p in other[index + 1 :]
            for m in p["requests"]
            if m.recipient == party and not isinstance(m, RoundAbort)
        ]
        if not later:
            return
        message = dataclasses.replace(
            data.draw(st.sampled_from(later), label="later request"), round_id=genuine.round_id
        )
        if type(message) is type(genuine):
            return
        error = UnexpectedMessage
    elif kind == "wrong_recipient":
        others = [m for m in requests if m.recipient != party]
        if not others:
            return
        message = data.draw(st.sampled_from(others), label="someone else's request")
        error = UnknownParty
    else:
        _bytes_refused(data, genuine)
        event("client: bytes refused by the codec")
        return
    refused_call(client, error, client.handle, wire(message))
    event(f"client refused: {kind}")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_messages_at_every_phase_change_nothing_under_random_dropouts(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(4, 10), label="n")
    active = data.draw(st.booleans(), label="active")
    graph = data.draw(st.sampled_from(["complete", "harary"] if n >= 6 else ["complete"]))
    k = data.draw(st.sampled_from(range(4, n - 1, 2)), label="k") if graph == "harary" else None
    degree = n - 1 if k is None else k
    # any threshold the clients' default policy accepts: room for dropouts
    lowest = ClientPolicy().minimum_threshold(
        n, GraphKind.COMPLETE if k is None else GraphKind.HARARY, degree, active=active
    )
    assume(lowest is not None)
    assert lowest is not None
    t = data.draw(st.integers(lowest, degree + 1), label="t")
    seed = data.draw(st.binary(min_size=GRAPH_SEED_BYTES, max_size=GRAPH_SEED_BYTES))
    r = _seeded_round(n, active, graph, k, t, seed)
    # another round of the same shape, run to its end first: its messages of every
    # phase are what a replay from another round (or a later phase) would carry
    other = _record(_seeded_round(n, active, graph, k, t, seed), {})
    # each client vanishes before the request of a random phase, or never: phase 3 is
    # the unmasking request in the passive variant (after the masked input was sent)
    last = 4 if active else 3
    leavers = data.draw(st.sets(st.integers(0, n - 1), max_size=max(1, n // 3)), label="leavers")
    fate: list[int | None] = [None] * n
    for party in sorted(leavers):
        fate[party] = data.draw(st.integers(1, last), label=f"{party} leaves before phase")
    history: list[dict] = []
    late_before_input: set[int] = set()
    index = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        requests = [
            m for m in r.to_clients if fate[m.recipient] is None or fate[m.recipient] > index
        ]
        _hostile_to_client(data, r, requests, history, other, index)
        replies: list[ClientMessage] = []
        for message in requests:
            try:
                answers = r.clients[message.recipient].handle(wire(message))
            except SecAggError:
                continue  # e.g. too few holders left: the client leaves the round
            replies.extend(wire(a) for a in answers)  # type: ignore[misc]
        replies = data.draw(st.permutations(replies), label="arrival order")
        # the last few replies miss the phase's deadline: sent (the client moved on)
        # but arriving after the server closed the phase
        late = int(bool(replies) and data.draw(st.integers(0, 3), label="late reply") == 0)
        on_time, too_late = replies[: len(replies) - late], replies[len(replies) - late :]
        split = data.draw(st.integers(0, len(on_time)), label="hostile arrives after")
        out: list[ServerMessage] = []
        for reply in on_time[:split]:
            out.extend(r.server.handle(reply))
        if r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED) and not out:
            _hostile_to_server(data, r, on_time[:split], on_time[split:], history, other, index)
        for reply in on_time[split:]:
            out.extend(r.server.handle(reply))
        if not out and r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            out = r.server.close_phase()
        for reply in too_late:
            refused_call(r.server, ProtocolError, r.server.handle, reply)
            event("server refused: a reply after its phase closed")
            if index <= 2:  # its masked input (or what it needed) never counted
                late_before_input.add(reply.sender)
        history.append({"requests": requests, "replies": replies})
        r.to_clients = out
        index += 1
    # after the end, any reply and any request are out of phase; nothing changes
    for message in [m for p in history for m in p["replies"]][:3]:
        refused_call(r.server, ProtocolError, r.server.handle, message)
    if r.server.phase == ServerPhase.ABORTED:
        reason = r.server.report.abort_reason
        assert reason
        event(f"aborted: {reason.split(',')[0][-40:]}")
        return
    event("complete")
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    gone_before_input = {p for p, f in enumerate(fate) if f is not None and f <= 2}
    assert set(r.server.report.included).isdisjoint(gone_before_input | late_before_input)
    for p in r.server.report.included:  # a client that finished refuses any request now
        before = fingerprint(r.clients[p])
        for message in [m for q in history for m in q["requests"] if m.recipient == p][:2]:
            with pytest.raises(SecAggError):
                r.clients[p].handle(wire(message))
            assert fingerprint(r.clients[p]) == before
