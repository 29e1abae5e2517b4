"""Correctness of whole rounds under random inputs, graphs, thresholds and dropouts.

The one property: a round either returns exactly the modular sum of the inputs
of the clients the server says it included, or raises ``RoundAborted``. Never a
wrong sum, never a sum over a set other than the reported one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _harness import random_inputs, wire
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigurationError, InvalidMessage, RoundAborted
from secagg.protocol import (
    PHASES,
    Client,
    RoundConfig,
    Server,
    ServerPhase,
    run_round,
    simulate_round,
)
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    ConsistencyRequest,
    KeyDirectory,
    MaskedInput,
    RoundAbort,
    SealedShare,
    ShareDelivery,
    ShareKeys,
    UnmaskingRequest,
)

DROPOUT_PHASES = ("share_keys", "masked_input", "consistency_check", "unmasking")


@st.composite
def rounds(draw: st.DrawFn) -> dict:
    # up to 40 clients: room for Harary graphs of several degrees and thresholds and for
    # many dropouts; a round's cost grows with n squared, and 60 found nothing 40 cannot
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 40))
    bits = draw(st.sampled_from([32, 64]))
    graph = draw(st.sampled_from(["complete", "harary"]))
    k = None
    if graph == "harary" and n >= 3 and draw(st.booleans()):
        k = 2 * draw(st.integers(1, (n - 1) // 2))
    degree_hint = n - 1 if graph == "complete" or k is None else k
    threshold = None
    if draw(st.booleans()):
        threshold = draw(st.integers(1, degree_hint + 1))
    # a random subset of clients (often small, sometimes most) vanishes, each
    # before a random phase's message
    leavers = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    fate: list[str | None] = [None] * n
    for party in leavers:
        fate[party] = draw(st.sampled_from(("advertise_keys", *DROPOUT_PHASES)))
    dropped: dict[str, list[int]] = {}
    for party, phase in enumerate(fate):
        if phase is not None:
            dropped.setdefault(phase, []).append(party)
    return {
        "inputs": random_inputs(n, d, bits),
        "graph": graph,
        "k": k,
        "threshold": threshold,
        "dropped": dropped,
        "bits": bits,
        "active": draw(st.booleans()),
    }


def _vanished_before_input(dropped: dict[str, list[int]]) -> set[int]:
    early = PHASES[: PHASES.index("masked_input") + 1]
    return {p for phase in early for p in dropped.get(phase, ())}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=rounds())
def test_round_returns_exact_sum_of_included_clients_or_aborts(case):
    inputs = case.pop("inputs")
    try:
        outcome = run_round(inputs, **case)
    except ConfigurationError:
        assume(False)  # e.g. a user threshold the config refuses: not a round
        return
    except RoundAborted as exc:
        assert exc.reason
        event("aborted")
        return
    event("completed with dropouts" if case["dropped"] else "completed, no dropouts")
    included = outcome.report.included
    assert set(included).isdisjoint(_vanished_before_input(case["dropped"]))
    expected = inputs[list(included)].sum(axis=0, dtype=inputs.dtype)
    assert outcome.total.dtype == inputs.dtype
    np.testing.assert_array_equal(outcome.total, expected)
    if not case["dropped"]:  # nobody left: everybody is in the sum
        assert included == tuple(range(len(inputs)))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 24),  # complete and Harary graphs of several degrees; cost is n squared
    d=st.integers(1, 30),
    bits=st.sampled_from([32, 64]),
    graph=st.sampled_from(["complete", "harary"]),
    active=st.booleans(),
)
def test_round_without_dropouts_always_completes_with_every_client(n, d, bits, graph, active):
    inputs = random_inputs(n, d, bits)
    if active and n == 2:  # no threshold keeps 2 clients private from a lying server
        with pytest.raises(ConfigurationError, match="no complete-graph threshold is private"):
            simulate_round(inputs, graph=graph, bits=bits, active=active)
        return
    total = simulate_round(inputs, graph=graph, bits=bits, active=active)
    np.testing.assert_array_equal(total, inputs.sum(axis=0, dtype=inputs.dtype))


@pytest.mark.parametrize("active", [False, True])
@pytest.mark.parametrize("graph", ["complete", "harary"])
def test_tolerated_dropout_at_every_phase_still_yields_the_survivors_sum(graph, active):
    n, d = 40, 64
    inputs = random_inputs(n, d)
    # a small k and t so that a few dropouts in each phase are tolerated
    k, t = (n - 1, 20) if graph == "complete" else (12, 4)
    dropped = {
        "share_keys": [3],
        "masked_input": [11, 29],
        "consistency_check": [17],
        "unmasking": [5],
    }
    outcome = run_round(
        inputs,
        graph=graph,
        k=k if graph == "harary" else None,
        threshold=t,
        dropped=dropped,
        active=active,
    )
    included = [p for p in range(n) if p not in (3, 11, 29)]
    assert list(outcome.report.included) == included
    np.testing.assert_array_equal(outcome.total, inputs[included].sum(axis=0, dtype=np.uint32))
    assert outcome.report.dropped_in("masked_input") == (11, 29)


def test_dropouts_past_the_threshold_abort_with_a_reason():
    inputs = random_inputs(10, 5)
    with pytest.raises(RoundAborted, match="below the threshold"):
        simulate_round(inputs, graph="complete", threshold=8, dropped={"masked_input": [0, 1, 2]})
    with pytest.raises(RoundAborted):
        simulate_round(inputs, graph="complete", threshold=8, dropped={"unmasking": [0, 1, 2]})


def test_sum_wraps_modulo_two_to_the_bits():
    for bits, dtype in ((32, np.uint32), (64, np.uint64)):
        top = np.iinfo(dtype).max
        inputs = np.full((3, 4), top, dtype=dtype)
        total = simulate_round(inputs, graph="complete", bits=bits)
        np.testing.assert_array_equal(total, np.full(4, (3 * int(top)) % (1 << bits), dtype=dtype))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dropped": {"nonsense": [0]}}, "unknown phase"),
        ({"dropped": {"unmasking": [99]}}, "not in"),
        ({"bits": 16}, "bits"),
        ({"graph": "star"}, "graph"),
    ],
)
def test_simulate_round_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        simulate_round(random_inputs(4, 3), **kwargs)


def test_simulate_round_refuses_non_integer_and_oversized_inputs():
    with pytest.raises(ConfigurationError, match="unsigned"):
        simulate_round(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(ConfigurationError, match="fit"):
        simulate_round(np.full((3, 2), 1 << 40, dtype=np.uint64), bits=32)


# --- malicious senders: poisoned shares, with dropouts (security review M3) ----------------


@st.composite
def poisoned_rounds(draw: st.DrawFn) -> dict:
    n = draw(st.integers(4, 16))
    active = draw(st.booleans())
    # random sealed shares garbled by their sender: (sender, recipient) pairs
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n))
    fate = {
        p: draw(st.sampled_from(("share_keys", "masked_input", "consistency_check", "unmasking")))
        for p in draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n // 4))
    }
    return {
        "n": n,
        "d": draw(st.integers(1, 12)),
        "graph": draw(st.sampled_from(["complete", "harary"])),
        "active": active,
        "poisoned": {(s, r) for s, r in pairs if s != r},
        "fate": fate,
        # active: the altered key fails its signature and the directory is refused
        "mutual_key_tamper": not active and draw(st.booleans()),
    }


_VANISHES_BEFORE = {
    KeyDirectory: "share_keys",
    ShareDelivery: "masked_input",
    ConsistencyRequest: "consistency_check",
    UnmaskingRequest: "unmasking",
}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=poisoned_rounds())
def test_poisoned_shares_never_make_honest_clients_refuse_or_the_sum_wrong(case):
    """Random senders garble random sealed shares, a relay may alter one key, clients drop.

    No honest client ever refuses a server message because of another client's
    shares (it accuses the sender instead); every accusation names a garbled
    pair; and the round ends in the exact sum of the reported clients, or
    aborts with a reason. The server never holds both share kinds of one owner.
    """
    n, d = case["n"], case["d"]
    cfg = RoundConfig.create(n, d, graph=case["graph"], active=case["active"])
    # the weakest threshold the clients accept: the most room for losses
    weakest = ClientPolicy().minimum_threshold(n, cfg.graph, cfg.degree, active=cfg.active)
    assert weakest is not None
    cfg = dataclasses.replace(cfg, threshold=weakest)
    inputs = random_inputs(n, d)
    ids = {p: SigningKey.generate() for p in range(n)} if case["active"] else {}
    public = {p: k.verify_key for p, k in ids.items()} or None
    server = Server(cfg, identity_keys=public)
    clients = [Client(p, inputs[p], signing_key=ids.get(p), identity_keys=public) for p in range(n)]
    poisoned = {(s, r) for s, r in case["poisoned"] if r in server.graph.neighbours(s)}
    if case["mutual_key_tamper"]:  # the relay shows 1 a wrong mask key for one neighbour
        tampered = (min(server.graph.neighbours(1)), 1)
    gone: set[int] = set()
    outgoing = server.start()
    while server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        replies = []
        for message in outgoing:
            party = message.recipient
            if party in gone:
                continue
            if isinstance(message, RoundAbort):
                clients[party].handle(wire(message))
                continue
            phase = _VANISHES_BEFORE.get(type(message))
            if phase is not None and case["fate"].get(party) == phase:
                gone.add(party)
                continue
            if case["mutual_key_tamper"] and isinstance(message, KeyDirectory) and party == 1:
                message = dataclasses.replace(
                    message,
                    entries=tuple(
                        dataclasses.replace(e, mask_key=bytes([e.mask_key[0] ^ 2]) + e.mask_key[1:])
                        if e.party == tampered[0]
                        else e
                        for e in message.entries
                    ),
                )
            try:
                answers = clients[party].handle(wire(message))
            except RoundAborted:
                gone.add(party)  # too few holders left: a legitimate way out
                continue
            for answer in answers:
                if isinstance(answer, ShareKeys):
                    answer = dataclasses.replace(
                        answer,
                        shares=tuple(
                            SealedShare(s.peer, s.ciphertext[:-1] + bytes([s.ciphertext[-1] ^ 1]))
                            if (answer.sender, s.peer) in poisoned
                            else s
                            for s in answer.shares
                        ),
                    )
                replies.append(wire(answer))
        outgoing = []
        for reply in replies:
            try:
                outgoing += server.handle(reply)
            except InvalidMessage:
                # only 1's masked input, whose accusation names the altered key: it
                # masked with a seed 0 never used, so it is refused and 1 has dropped
                assert case["mutual_key_tamper"] and isinstance(reply, MaskedInput)
                assert reply.sender == 1 and tampered[0] in {a.party for a in reply.accusations}
                gone.add(1)
        if server.phase in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            break
        if not outgoing:
            outgoing = server.close_phase()
    for accused, accusers in server.report.accused.items():
        for accuser in accusers:
            garbled = (accused, accuser) in poisoned
            relayed = case["mutual_key_tamper"] and {accused, accuser} == set(tampered)
            assert garbled or relayed, (accused, accuser)
    assert not set(server._seed_shares) & set(server._key_shares)
    if server.phase == ServerPhase.ABORTED:
        assert server.report.abort_reason
        event("aborted")
        return
    event("completed with accusations" if server.report.accused else "completed")
    included = list(server.report.included)
    np.testing.assert_array_equal(server.result(), inputs[included].sum(axis=0, dtype=inputs.dtype))
