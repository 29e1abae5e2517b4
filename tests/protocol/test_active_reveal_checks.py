"""The two checks an active client makes before it reveals shares, pinned one scenario each.

The hostile-server machine (tests/runtime/test_hostile_server_machine.py) reaches these
situations only by chance, and within 375 runs it missed a client that verifies only t - 1
of the consistency signatures (seed 2) and one that reveals against another survivor set
than the one it signed (seed 1). Here each is driven on purpose, with the keys of every
party held by the test, so both mutations fail deterministically:

* a request over the set the client signed, listing exactly t signatures of which only the
  first t - 1 are valid (the t-th garbled, another party's, one its signer made over
  another set, or zeros): fewer than t survivors confirmed the set, so nothing is revealed;
* a split view: the client is shown one survivor set and signs it, the other survivors
  another (one party fewer, or one more) and sign that; the server then asks the client
  to unmask against the others' set, with t valid signatures over it. Revealing would
  hand the server the share the other set asks for (the dropped party's mask key, or the
  self-mask seed of a party the client thought gone), the very split the check prevents.
"""

from __future__ import annotations

import dataclasses

import pytest
from _harness import SteppedRound, refused_call, wire

from secagg.errors import PrivacyViolation, SignatureError
from secagg.protocol import ServerPhase, common
from secagg.protocol.messages import (
    ConsistencyRequest,
    ConsistencySignature,
    PartySignature,
    UnmaskingRequest,
)

N = 7
#: the smallest threshold the clients' default policy accepts for 7 parties: a set one
#: party smaller still has t signers besides the client under test
T = 5
VICTIM = 0


def _round_at(phase: ServerPhase) -> SteppedRound:
    r = SteppedRound(N, 4, active=True, threshold=T)
    assert r.config.threshold == T
    while r.server.phase != phase:
        r.step()
    return r


def _signatures(
    r: SteppedRound, survivors: tuple[int, ...], parties: list[int]
) -> tuple[PartySignature, ...]:
    """Each of ``parties``' signature over ``survivors`` in this round, made with its own key."""
    payload = common.consistency_payload(r.server.round_id, survivors)
    return tuple(PartySignature(p, r.identity[p].sign(payload)) for p in parties)


@pytest.mark.parametrize("tail", ["garbled", "another party's", "over another set", "zeros"])
def test_a_request_with_t_signatures_of_which_only_t_minus_1_verify_reveals_nothing(
    tail: str,
) -> None:
    """Exactly t listed, the first t - 1 valid: a client that verifies only t - 1 of them
    (an off-by-one in the loop that stops at t) revealed on t - 1 confirmations."""
    r = _round_at(ServerPhase.UNMASKING)
    honest = r.message_for(VICTIM)
    assert isinstance(honest, UnmaskingRequest) and len(honest.signatures) >= T
    listed = list(honest.signatures[:T])
    last = listed[-1]
    if tail == "garbled":
        signature = bytes([last.signature[0] ^ 1]) + last.signature[1:]
    elif tail == "another party's":
        other = next(s for s in honest.signatures if s.party != last.party)
        signature = other.signature
    elif tail == "over another set":
        fewer = tuple(p for p in honest.survivors if p != last.party)
        (made,) = _signatures(r, fewer, [last.party])
        signature = made.signature
    else:
        signature = bytes(64)
    listed[-1] = PartySignature(last.party, signature)
    tampered = dataclasses.replace(honest, signatures=tuple(listed))
    client = r.clients[VICTIM]
    refused_call(client, SignatureError, client.handle, wire(tampered))
    assert client.handle(wire(honest))  # the genuine request is still answered


def _victim_signs(r: SteppedRound, shown: tuple[int, ...]) -> None:
    """Show the victim the survivor set ``shown`` (the others' signatures over their own
    set are made with their keys by the test: what the server would collect from them)."""
    for message in r.to_clients:
        assert isinstance(message, ConsistencyRequest)
    request = dataclasses.replace(r.message_for(VICTIM), survivors=shown)
    (signed,) = r.clients[VICTIM].handle(wire(request))
    assert isinstance(signed, ConsistencySignature)
    payload = common.consistency_payload(r.server.round_id, shown)
    r.identity[VICTIM].verify_key.verify(signed.signature, payload)  # it signed what it saw


@pytest.mark.parametrize("shown_to_others", ["one party fewer", "one party more"])
def test_a_request_over_another_set_than_the_one_signed_reveals_nothing(
    shown_to_others: str,
) -> None:
    """A split view, then unmasking against the set the others signed, with t valid
    signatures over it: a client that skipped "the set is the one I signed" revealed."""
    r = _round_at(ServerPhase.CONSISTENCY_CHECK)
    everyone = tuple(range(N))
    without = tuple(p for p in everyone if p != N - 1)  # party N - 1 said to have dropped
    if shown_to_others == "one party fewer":
        shown, others_set = everyone, without
    else:
        shown, others_set = without, everyone
    _victim_signs(r, shown)
    signers = [p for p in others_set if p != VICTIM]
    assert len(signers) >= T
    dropped = tuple(p for p in everyone if p not in others_set)
    request = UnmaskingRequest(
        r.server.round_id, VICTIM, others_set, dropped, _signatures(r, others_set, signers)
    )
    client = r.clients[VICTIM]
    refused_call(client, PrivacyViolation, client.handle, wire(request))
    # over the set it signed, with t valid signatures of it, the client does reveal
    honest_dropped = tuple(p for p in everyone if p not in shown)
    signed_by_others = [p for p in shown if p != VICTIM]
    genuine = UnmaskingRequest(
        r.server.round_id, VICTIM, shown, honest_dropped, _signatures(r, shown, signed_by_others)
    )
    assert client.handle(wire(genuine))
