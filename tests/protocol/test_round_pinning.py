"""The protocol roles' round-id pinning, which a federation's binding rests on
(``Client.expect_round``, ``Server.bind_round``; docs/protocol.md, "Round ids in a
federation"): a pinned client takes only its round's setup and, in the active variant,
no key signed for another round; both pins are refused once the round is under way.
"""

from __future__ import annotations

import os

import pytest
from _harness import SteppedRound, random_inputs, wire

from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigurationError, CryptoError, UnexpectedMessage, WrongRound
from secagg.protocol import Client, RoundConfig, Server
from secagg.protocol.client import ClientPhase
from secagg.protocol.messages import ROUND_ID_BYTES, AdvertiseKeys, KeyDirectory, KeyEntry

N, D = 4, 8


def _active(round_id: bytes, keys: dict[int, SigningKey]) -> tuple[Server, list[Client]]:
    config = RoundConfig.create(N, D, graph="complete", active=True)
    public = {p: k.verify_key for p, k in keys.items()}
    server = Server(config, identity_keys=public)
    server.bind_round(round_id)
    inputs = random_inputs(N, D, 32)
    clients = [Client(p, inputs[p], signing_key=keys[p], identity_keys=public) for p in range(N)]
    for client in clients:
        client.expect_round(round_id)
    return server, clients


def test_a_pinned_client_refuses_a_setup_of_another_round_unchanged() -> None:
    r = SteppedRound(N, D)
    client = Client(0, r.inputs[0])
    client.expect_round(os.urandom(ROUND_ID_BYTES))
    (setup,) = [m for m in r.to_clients if m.recipient == 0]
    with pytest.raises(WrongRound):
        client.handle(wire(setup))
    assert client.phase == ClientPhase.AWAIT_SETUP and client.setup is None
    own = Client(0, r.inputs[0])
    own.expect_round(setup.round_id)
    (reply,) = own.handle(wire(setup))
    assert isinstance(reply, AdvertiseKeys) and reply.round_id == setup.round_id


def test_an_advertisement_signed_for_another_round_does_not_verify_at_a_pinned_peer() -> None:
    """Active variant: party 0's keys signed in round 1, handed to party 1 in round 2
    (with round 2's id, as a pinned client requires), fail their signature check."""
    keys = {p: SigningKey.generate() for p in range(N)}
    first, clients = _active(os.urandom(ROUND_ID_BYTES), keys)
    setups = first.start()
    old = clients[0].handle(wire(setups[0]))[0]
    assert isinstance(old, AdvertiseKeys)

    second, peers = _active(os.urandom(ROUND_ID_BYTES), keys)
    advertised = [peers[m.recipient].handle(wire(m))[0] for m in second.start()]
    out = [m for message in advertised for m in second.handle(wire(message))]
    directory = next(m for m in out if isinstance(m, KeyDirectory) and m.recipient == 1)
    replayed = KeyEntry(0, old.channel_key, old.mask_key, old.signature)
    forged = KeyDirectory(
        directory.round_id,
        1,
        tuple(replayed if e.party == 0 else e for e in directory.entries),
    )
    with pytest.raises(CryptoError):
        peers[1].handle(wire(forged))
    assert peers[1].phase == ClientPhase.AWAIT_KEYS  # unchanged: it still takes the genuine one
    (reply,) = peers[1].handle(wire(directory))
    assert reply.round_id == second.round_id


def test_pins_are_checked_and_refused_once_the_round_is_under_way() -> None:
    r = SteppedRound(N, D)
    with pytest.raises(UnexpectedMessage):  # started: every message carries its id
        r.server.bind_round(os.urandom(ROUND_ID_BYTES))
    server = Server(RoundConfig.create(N, D, graph="complete"))
    for bad in (b"short", os.urandom(ROUND_ID_BYTES + 1), "x" * ROUND_ID_BYTES):
        with pytest.raises(ConfigurationError):
            server.bind_round(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            Client(0).expect_round(bad)  # type: ignore[arg-type]
    pinned = os.urandom(ROUND_ID_BYTES)
    client = Client(0, round_id=pinned)
    client.expect_round(pinned)  # the same id again: nothing changes
    with pytest.raises(ConfigurationError):  # one client is one round
        client.expect_round(os.urandom(ROUND_ID_BYTES))
    (setup,) = [m for m in r.to_clients if m.recipient == 1]
    taken = Client(1, r.inputs[1])
    taken.handle(wire(setup))
    with pytest.raises(UnexpectedMessage):
        taken.expect_round(setup.round_id)
