"""Messages of a type a role has no handler for, and senders that are not party ids.

Both roles promise a typed error and no change for any message they refuse. Two
in-memory inputs broke that (the codec never produces them, but a transport or a
test that builds messages does):

* a client handed a ``ServerMessage`` of a type it has no handler for (the base
  class, or a subclass of a known message) failed as a bare ``KeyError`` from its
  handler table;
* the server took ``sender=True`` or ``sender=1.0`` as party 1 (``True == 1`` and
  ``1.0 == 1`` hash alike): the message was accepted in party 1's place, and party 1's
  own message was then refused as a duplicate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _harness import SteppedRound, refused_call

from secagg.errors import MalformedMessage, UnexpectedMessage
from secagg.protocol import ServerPhase
from secagg.protocol.messages import AdvertiseKeys, KeyDirectory, ServerMessage


@dataclasses.dataclass(frozen=True)
class _DirectoryLookalike(KeyDirectory):
    """A subclass of a known message: not the type the client's handler table names."""


def test_a_client_refuses_a_server_message_it_has_no_handler_for_unchanged() -> None:
    r = SteppedRound(4, 2)
    r.step()  # the clients advertised; each awaits its key directory
    client = r.clients[0]
    directory = r.message_for(0)
    assert isinstance(directory, KeyDirectory)
    for message in (
        ServerMessage(directory.round_id, 0),
        _DirectoryLookalike(directory.round_id, 0, directory.entries),
    ):
        refused_call(client, UnexpectedMessage, client.handle, message)
    r.step()  # the genuine directory is still taken
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


@pytest.mark.parametrize("sender", [True, 1.0])
def test_the_server_refuses_a_sender_that_is_not_a_party_id_unchanged(sender: object) -> None:
    r = SteppedRound(4, 2)
    adverts = {m.sender: m for m in r.clients_reply()}
    genuine = adverts[1]
    assert isinstance(genuine, AdvertiseKeys)
    forged = dataclasses.replace(genuine, sender=sender)
    refused_call(r.server, MalformedMessage, r.server.handle, forged)
    r.server.handle(genuine)  # party 1's own message is taken, not a "duplicate"
    assert 1 in r.server._received
