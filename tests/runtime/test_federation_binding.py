"""Every round is bound to its federation's name as well as its number.

Left alone by earlier work (docs/protocol.md: "use a certificate per federation"): a
round was bound (the masking protocol's round id, on which every signature, AEAD key
and associated data of the round rests) to ``round_context(number)`` only, and the round
start named no federation. A server running two federations with the same branch
certificates could then give a message of round 5 of federation A to federation B's
round 5: every binding agreed. Now ``round_context(number, federation)`` names both,
the round start carries the name (wire version 3 for that message), and a branch whose
session is handed another federation's round leaves it at once instead of sitting in
it until the phase deadline.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _endpoints import RecordingHub, SentMessages, version_2_round_start

from secagg.aggregation import Announce, ToParty
from secagg.aggregation.masking import MaskingBackend, protocol_round_id
from secagg.errors import ConfigurationError, MalformedMessage, WrongRound
from secagg.protocol import decode
from secagg.protocol.messages import KeyDirectory, RoundSetup
from secagg.runtime import server as server_module
from secagg.runtime.client import FederationClient, ServerOutdated
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import (
    ROUND_CONTEXT_LABEL,
    Leave,
    OutdatedMessage,
    Relay,
    RoundStart,
    decode_message,
    encode_message,
    round_context,
)

D = 6
NAMES = [f"branch-{i:02d}" for i in range(3)]
#: deadlines a branch that sits in a spliced round would make the server wait out
TRAINING_SECONDS, PHASE_SECONDS = 120.0, 60.0


def test_a_round_context_names_the_federation_and_no_two_pairs_give_the_same_bytes() -> None:
    names = ["a", "ab", "a1", "bank-a", "bank-b", "b" * 64, "1", "a.b", "a_b"]
    numbers = [0, 1, 5, 49, 2**32, 2**64 - 1]
    contexts = {round_context(n, name) for name in names for n in numbers}
    assert len(contexts) == len(names) * len(numbers)
    assert all(c.startswith(ROUND_CONTEXT_LABEL) for c in contexts)
    assert ROUND_CONTEXT_LABEL == b"secagg/v2/federation-round/"  # v1 named no federation
    # length-prefixed: a name that is a prefix of another, followed by number bytes that
    # spell its rest, is still another context
    assert round_context(0x61, "a") != round_context(0, "aa")
    for bad in ("", "a b", "bank\n", "é", "b" * 65, None, 7, b"bank"):
        with pytest.raises(ConfigurationError, match="federation's name"):
            round_context(1, bad)  # type: ignore[arg-type]


def _deliver_setups(server_events: list[object]) -> dict[int, bytes]:
    return {
        e.party: e.payload
        for e in server_events
        if isinstance(e, ToParty) and isinstance(decode(e.payload), RoundSetup)
    }


def test_a_message_of_federation_as_round_is_refused_by_federation_bs_session() -> None:
    """Two federations, the same spec and round number 5: A's setup is refused by B's
    branch (state unchanged), and once B's branch is in B's round, A's key directory
    (the keys it would seal shares to) is refused too. Before, both rounds ran under
    one protocol id, and either was taken."""
    backend = MaskingBackend(graph="complete", value_bound=1.0)
    spec = backend.plan(3, D)
    a_context, b_context = round_context(5, "bank-a"), round_context(5, "bank-b")
    assert protocol_round_id(a_context, spec) != protocol_round_id(b_context, spec)
    # federation A's round, run as far as its key directories
    a_server = backend.server(spec)
    a_server.bind_round(a_context)
    a_clients = [backend.client(spec, p) for p in range(3)]
    for client in a_clients:
        client.bind_round(a_context)
    replies: list[tuple[int, bytes]] = []
    a_setups = {}
    for event in a_server.start():
        if isinstance(event, Announce):
            for client in a_clients:
                client.set_input(np.zeros(D))
        elif isinstance(event, ToParty):
            a_setups[event.party] = event.payload
            replies.extend((event.party, m) for m in a_clients[event.party].handle(event.payload))
    directories: dict[int, bytes] = {}
    for party, payload in replies:
        for event in a_server.handle(party, payload):
            if isinstance(event, ToParty) and isinstance(decode(event.payload), KeyDirectory):
                directories[event.party] = event.payload
    if not directories:
        for event in a_server.close_phase():
            if isinstance(event, ToParty) and isinstance(decode(event.payload), KeyDirectory):
                directories[event.party] = event.payload
    assert set(directories) == {0, 1, 2}
    # federation B's branch 0, in its round 5
    b_client = backend.client(spec, 0)
    b_client.bind_round(b_context)
    b_client.set_input(np.zeros(D))
    with pytest.raises(WrongRound):
        b_client.handle(a_setups[0])
    assert b_client._protocol.setup is None  # type: ignore[attr-defined]
    b_server = backend.server(spec)
    b_server.bind_round(b_context)
    (own,) = b_client.handle(_deliver_setups(b_server.start())[0])
    assert decode(own).round_id == protocol_round_id(b_context, spec)
    with pytest.raises(WrongRound):
        b_client.handle(directories[0])  # A's keys, spliced into B's round


def _config(name: str) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": name, "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg", "value_bound": 4.0},
            "deadlines": {
                "phase_seconds": PHASE_SECONDS,
                "training_seconds": TRAINING_SECONDS,
                "round_seconds": 600.0,
            },
        }
    )


def test_a_server_that_names_one_federation_and_binds_another_is_left_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server splicing federation A's round into B's: its starts name bank-b, its
    session runs under bank-a's context. Every branch refuses the setup and leaves the
    round at once, with a leave saying so: the round aborts (no sum, the model kept)
    well within the phase deadline. Before, each branch counted a refused message and
    sat in the round: the server waited out the whole 60 s phase."""
    real = round_context
    monkeypatch.setattr(server_module, "round_context", lambda n, _name: real(n, "bank-a"))
    hub = RecordingHub()
    done = {name: threading.Event() for name in NAMES}
    clients = []
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        clients.append(client)

        def run(client: FederationClient = client, name: str = name) -> None:
            try:
                client.run(idle_timeout=TRAINING_SECONDS, rounds=1)
            finally:
                done[name].set()

        threading.Thread(target=run, daemon=True).start()
    results: list[object] = []
    models: list[np.ndarray] = []

    def serve() -> None:  # the store is the server thread's own (SQLite)
        store = ServerStore(Path(tempfile.mkdtemp(prefix="secagg-splice-")) / "state.sqlite")
        server = FederationServer(_config("bank-b"), hub, store)
        before = server.model.copy()
        results.extend(server.run(wait_for_clients=60, max_attempts=1))
        models.extend([before, server.model])

    served = threading.Thread(target=serve, daemon=True)
    began = time.monotonic()
    served.start()
    served.join(timeout=PHASE_SECONDS / 2)
    took = time.monotonic() - began
    assert not served.is_alive(), "the server waited out the phase deadline"
    assert took < PHASE_SECONDS / 2
    (result,) = results
    assert result.status == "aborted" and result.contributed == ()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(models[0], models[1])  # no sum, no step
    for name, client in zip(NAMES, clients, strict=True):
        assert done[name].wait(PHASE_SECONDS / 2)
        sent = [decode_message(p) for party, p in hub.received if party == name]
        assert Leave(1, "refused a payload of another round (WrongRound)") in sent
        assert client.stats.rounds_left == 1 and client.federation == "bank-b"


def test_a_round_start_names_its_federation_on_the_wire() -> None:
    start = RoundStart(3, 1, b"spec", np.zeros(2), 0.5, deadline=9.0, federation="bank-a")
    data = encode_message(start)
    assert data[4] == 3  # the round start's wire version
    back = decode_message(data)
    assert isinstance(back, RoundStart) and back.federation == "bank-a"
    assert back.deadline == 9.0 and back.round == 3
    for bad in ("", "bank a", "bank\nb", "x" * 65):
        with pytest.raises(MalformedMessage, match="federation's name"):
            encode_message(RoundStart(3, 1, b"", np.zeros(2), None, federation=bad))
    # a name that breaks the rule, as a hostile server would send it, is refused too
    raw = bytearray(data)
    at = raw.index(b"bank-a")
    raw[at + 4] = ord(" ")
    with pytest.raises(MalformedMessage, match="federation's name"):
        decode_message(bytes(raw))
    # the other messages keep version 2 (their layout is unchanged)
    assert encode_message(Relay(3, b"x"))[4] == 2 and encode_message(Leave(3, "x"))[4] == 2


def test_an_older_servers_round_start_is_refused_typed_and_the_branch_leaves_it() -> None:
    data = version_2_round_start(4, D)
    with pytest.raises(OutdatedMessage) as caught:
        decode_message(data)
    assert (caught.value.round, caught.value.version) == (4, 2)
    assert "version 2" in str(caught.value) and "upgrade" in str(caught.value)
    assert "\n" not in str(caught.value)
    trained: list[int] = []
    outbox = SentMessages()
    client = FederationClient(NAMES[0], lambda m: trained.append(1) or m, outbox)
    with pytest.raises(ServerOutdated):  # and stops: tests/runtime/test_outdated_server.py
        client.handle(data)
    assert trained == [] and client.stats.rounds_started == 0
    assert client.stats.refused_messages == 1
    # the leave is of the version the older server reads
    assert outbox.sent == [Leave(4, "could not take part (OutdatedMessage: upgrade secagg)")]
    assert encode_message(outbox.sent[0])[4] == 2  # type: ignore[arg-type]
