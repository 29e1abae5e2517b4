"""A lying server, tampered shares, replays, duplicates, out-of-phase and garbled bytes.

Every refusal must be a typed :class:`~secagg.errors.SecAggError` and must leave
the refusing state machine exactly as it was (compared with a deep
fingerprint), after which the genuine message still completes the round (the
hand-written cases play it to the end; the fuzzed ones stop at the fingerprint,
see :func:`_deliver_forgery`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools

import numpy as np
import pytest
from _harness import SteppedRound, fingerprint, refused_call, wire
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from secagg.errors import (
    ConfigurationError,
    DuplicateMessage,
    InvalidMessage,
    MalformedMessage,
    PrivacyViolation,
    RoundAborted,
    SecAggError,
    SignatureError,
    UnexpectedMessage,
    UnknownParty,
    WrongRound,
)
from secagg.protocol import ServerPhase, decode, encode
from secagg.protocol.messages import (
    Accusation,
    MaskedInput,
    Message,
    PartySignature,
    SealedShare,
    ShareDelivery,
    UnmaskingRequest,
    UnmaskingShares,
)

# Every encoding of a point of order 1, 2, 4 or 8 (RFC 7748 section 5, and the
# list libsodium refuses), with and without the ignored top bit.
_LOW_ORDER_HEX = (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
)
LOW_ORDER_POINTS = tuple(bytes.fromhex(h) for h in _LOW_ORDER_HEX) + tuple(
    bytes.fromhex(h)[:31] + bytes([bytes.fromhex(h)[31] | 0x80]) for h in _LOW_ORDER_HEX
)


def refused(target, message, error: type[Exception]) -> None:
    """``target.handle(message)`` raises ``error`` and changes nothing."""
    refused_call(target, error, target.handle, message)


def finish(r: SteppedRound) -> None:
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step()
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


def to_unmasking(active: bool = False) -> SteppedRound:
    r = SteppedRound(5, 6, active=active)
    stop = ServerPhase.UNMASKING
    while r.server.phase != stop:
        r.step()
    return r


# --- a lying server -------------------------------------------------------------------


def test_client_refuses_to_reveal_both_shares_of_one_party_in_one_request():
    r = to_unmasking()
    honest = r.message_for(0)
    assert isinstance(honest, UnmaskingRequest)
    lying = dataclasses.replace(honest, dropped=(2,))  # 2 is also listed as a survivor
    refused(r.clients[0], wire(lying), PrivacyViolation)
    finish(r)


def test_client_refuses_a_second_request_for_the_other_share():
    r = to_unmasking()
    honest = r.message_for(0)
    r.clients[0].handle(wire(honest))  # reveals self-mask shares of everyone
    survivors = tuple(p for p in honest.survivors if p != 3)
    second = dataclasses.replace(honest, survivors=survivors, dropped=(3,))
    refused(r.clients[0], wire(second), PrivacyViolation)


def test_active_client_refuses_a_survivor_set_other_than_the_one_it_signed():
    r = SteppedRound(5, 6, active=True)
    while r.server.phase != ServerPhase.UNMASKING:
        r.step()
    honest = r.message_for(0)
    # claim that 4 dropped, for this client only, to learn 4's mask key share
    lie = dataclasses.replace(
        honest,
        survivors=tuple(p for p in honest.survivors if p != 4),
        dropped=(4,),
        signatures=tuple(s for s in honest.signatures if s.party != 4),
    )
    refused(r.clients[0], wire(lie), PrivacyViolation)
    finish(r)


def test_active_client_refuses_too_few_or_forged_consistency_signatures():
    r = to_unmasking(active=True)
    honest = r.message_for(1)
    t = r.config.threshold
    few = dataclasses.replace(honest, signatures=honest.signatures[: t - 1])
    refused(r.clients[1], wire(few), PrivacyViolation)
    first = honest.signatures[0]
    forged_sig = PartySignature(first.party, bytes([first.signature[0] ^ 1]) + first.signature[1:])
    forged = dataclasses.replace(honest, signatures=(forged_sig, *honest.signatures[1:]))
    refused(r.clients[1], wire(forged), SignatureError)
    doubled = dataclasses.replace(honest, signatures=(first, *honest.signatures))
    refused(r.clients[1], wire(doubled), DuplicateMessage)
    finish(r)


@pytest.mark.parametrize("position", ["first", "last"])
def test_server_refuses_a_reveal_with_a_share_outside_the_field_and_names_its_owner(
    position: str,
):
    """The server decodes a reveal's shares in one go; a bad one still names its owner."""
    r = to_unmasking()
    replies = r.clients_reply()
    genuine = replies[0]
    assert isinstance(genuine, UnmaskingShares)
    shares = list(genuine.self_mask_shares)
    index = 0 if position == "first" else len(shares) - 1
    bad = shares[index]
    shares[index] = dataclasses.replace(bad, share=b"\xff" * len(bad.share))
    forged = dataclasses.replace(genuine, self_mask_shares=tuple(shares))
    refused(r.server, forged, InvalidMessage)
    with pytest.raises(InvalidMessage, match=f"share of party {bad.owner}: "):
        r.server.handle(forged)
    r.server_receives(replies)
    finish(r)


def test_client_refuses_a_request_that_says_it_dropped_or_omits_it():
    r = to_unmasking()
    honest = r.message_for(2)
    omitted = dataclasses.replace(honest, survivors=tuple(p for p in honest.survivors if p != 2))
    refused(r.clients[2], wire(omitted), InvalidMessage)
    unsorted = dataclasses.replace(honest, survivors=tuple(reversed(honest.survivors)))
    refused(r.clients[2], wire(unsorted), InvalidMessage)
    finish(r)


# --- tampered and misdirected shares: accused, not obeyed (review M3) ---------------------


def _share_delivery_round(n: int = 6, threshold: int = 4) -> SteppedRound:
    """A complete-graph round at share delivery whose t tolerates a couple of missing holders."""
    r = SteppedRound(n, 6, threshold=threshold)
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    return r


def _deliver_and_collect(r: SteppedRound) -> dict[int, tuple[int, ...]]:
    """Deliver the pending shares; return who accused whom, then hand the replies on."""
    replies = r.clients_reply()
    accused = {}
    for reply in replies:
        assert isinstance(reply, MaskedInput)
        if reply.accusations:
            accused[reply.sender] = tuple(a.party for a in reply.accusations)
    r.server_receives(replies)
    return accused


def test_tampered_share_ciphertext_is_accused_and_the_round_completes():
    r = _share_delivery_round()
    honest = r.message_for(0)
    assert isinstance(honest, ShareDelivery)
    first = honest.shares[0]
    flipped = bytearray(first.ciphertext)
    flipped[len(flipped) // 2] ^= 0x01
    tampered = dataclasses.replace(
        honest, shares=(SealedShare(first.peer, bytes(flipped)), *honest.shares[1:])
    )
    r.to_clients = [tampered if m.recipient == 0 else m for m in r.to_clients]
    assert _deliver_and_collect(r) == {0: (first.peer,)}
    finish(r)
    assert r.server.report.accused == {first.peer: {0}}
    assert r.server.report.included == tuple(range(6))  # nobody dropped out


def test_share_relabelled_as_from_another_peer_fails_authentication_and_is_accused():
    r = _share_delivery_round()
    honest = r.message_for(0)
    a, b = honest.shares[0], honest.shares[1]
    swapped = dataclasses.replace(
        honest,
        shares=(
            SealedShare(a.peer, b.ciphertext),
            SealedShare(b.peer, a.ciphertext),
            *honest.shares[2:],
        ),
    )
    # a share sealed for client 1 delivered to client 0 does not open either
    for_other = next(s for s in r.message_for(1).shares if s.peer not in (0, a.peer, b.peer))
    swapped = dataclasses.replace(
        swapped,
        shares=tuple(
            SealedShare(s.peer, for_other.ciphertext) if s.peer == for_other.peer else s
            for s in swapped.shares
        ),
    )
    r.to_clients = [swapped if m.recipient == 0 else m for m in r.to_clients]
    assert _deliver_and_collect(r) == {0: tuple(sorted({a.peer, b.peer, for_other.peer}))}
    finish(r)
    assert set(r.server.report.accused) == {a.peer, b.peer, for_other.peer}


def test_share_bundle_from_a_stranger_or_twice_is_still_refused():
    """Only what the sender controls is accused; a delivery the server garbled is refused."""
    r = _share_delivery_round()
    honest = r.message_for(0)
    first = honest.shares[0]
    doubled = dataclasses.replace(honest, shares=(first, *honest.shares))
    refused(r.clients[0], wire(doubled), DuplicateMessage)
    finish(r)


def test_m3_poisoned_share_round_completes_and_names_sender():
    """attack_poisoned_share.py: a client flips a byte in the share it seals for one neighbour.

    Before, the recipient refused the whole delivery and dropped out; poisoning
    every share made all its neighbours drop and the round abort, anonymously.
    Now the recipient accuses the sender and completes the round: exact sum, the
    sender named in the report. A sender that poisons every share leaves its
    own secrets unrecoverable, and the round aborts naming it.
    """
    n, evil, victim = 10, 3, 7
    for poisoned in ({victim}, set(range(n)) - {evil}):
        r = SteppedRound(n, 6, threshold=8)
        r.step()  # advertise keys
        replies = r.clients_reply()  # ShareKeys
        replies = [
            dataclasses.replace(
                m,
                shares=tuple(
                    SealedShare(s.peer, s.ciphertext[:-1] + bytes([s.ciphertext[-1] ^ 1]))
                    if s.peer in poisoned
                    else s
                    for s in m.shares
                ),
            )
            if m.sender == evil
            else m
            for m in replies
        ]
        r.server_receives(replies)
        refusals = []
        while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            try:
                r.step()
            except SecAggError as exc:  # an honest client refusing a message: must not happen
                refusals.append(exc)
                break
        assert refusals == []
        assert r.server.report.accused == {evil: poisoned}
        if len(poisoned) == 1:
            np.testing.assert_array_equal(r.server.result(), r.expected_sum())
            assert r.server.report.included == tuple(range(n))
        else:
            assert r.server.phase == ServerPhase.ABORTED
            assert f"party {evil}'s shares did not open" in r.server.report.abort_reason


def test_m3_accusations_are_signed_in_the_active_variant():
    r = SteppedRound(6, 6, active=True)
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    honest = r.message_for(2)
    first = honest.shares[0]
    bad = bytes([first.ciphertext[0] ^ 1]) + first.ciphertext[1:]
    r.to_clients = [
        dataclasses.replace(honest, shares=(SealedShare(first.peer, bad), *honest.shares[1:]))
        if m.recipient == 2
        else m
        for m in r.to_clients
    ]
    replies = r.clients_reply(refusal_is_dropout=True)
    (accusing,) = [m for m in replies if m.sender == 2]
    assert [a.party for a in accusing.accusations] == [first.peer] and accusing.signature
    forged_key = dataclasses.replace(
        accusing,
        accusations=(dataclasses.replace(accusing.accusations[0], mask_key=bytes(32)),),
    )
    refused(r.server, forged_key, SignatureError)
    unsigned = dataclasses.replace(accusing, signature=b"")
    refused(r.server, wire(unsigned), SignatureError)
    r.server_receives(replies)
    assert r.server.report.accused == {first.peer: {2}}


def test_server_refuses_accusations_of_a_non_neighbour_or_unsorted():
    r = SteppedRound(6, 6, graph="harary", k=4, threshold=3)
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    replies = r.clients_reply()
    genuine = replies[0]
    stranger = next(p for p in range(6) if p not in r.server.graph.holders(genuine.sender))
    key = bytes(32)
    neighbour = min(r.server.graph.neighbours(genuine.sender))
    for accusations in (
        (Accusation(stranger, key),),
        (Accusation(genuine.sender, key),),
        tuple(Accusation(p, key) for p in sorted(r.server.graph.neighbours(genuine.sender))[::-1]),
        (Accusation(neighbour, key),),  # not the key the neighbour advertised
    ):
        refused(r.server, dataclasses.replace(genuine, accusations=accusations), InvalidMessage)
    refused(r.server, dataclasses.replace(genuine, signature=bytes(64)), InvalidMessage)
    r.server_receives(replies)
    finish(r)


def test_m3_low_order_key_refused():
    """attack_poisoned_share.py "key": an all-zero (low-order) key used to be accepted.

    Every neighbour then failed key agreement on its whole key directory and
    dropped out. The server now refuses such an advertisement with a typed error
    and no state change; the genuine one completes the round.
    """
    r = SteppedRound(5, 6)
    replies = r.clients_reply()
    genuine = replies[0]
    for point in LOW_ORDER_POINTS:
        for field in ("channel_key", "mask_key"):
            refused(r.server, dataclasses.replace(genuine, **{field: point}), InvalidMessage)
    r.server_receives(replies)
    finish(r)


@pytest.mark.parametrize("field", ["channel_key", "mask_key"])
def test_client_refuses_a_key_directory_with_a_low_order_key(field: str):
    """A server that skips the advertisement check cannot slip a low-order key past a client.

    The client's two key agreements with each neighbour (made when the directory
    arrives) are the check: any low-order point, in either slot and in any position
    of the directory, refuses the whole directory with no state change.
    """
    r = SteppedRound(5, 6)
    r.step()
    directory = r.message_for(1)
    for point in LOW_ORDER_POINTS:
        for position in (0, len(directory.entries) - 1):
            entries = tuple(
                dataclasses.replace(e, **{field: point}) if i == position else e
                for i, e in enumerate(directory.entries)
            )
            refused(
                r.clients[1], wire(dataclasses.replace(directory, entries=entries)), InvalidMessage
            )
    finish(r)


# --- replays, duplicates, strangers, out of phase -------------------------------------------------


def test_messages_of_another_round_are_refused_by_both_roles():
    a, b = SteppedRound(4, 6), SteppedRound(4, 6)
    a.step()
    b.step()
    refused(b.clients[0], wire(a.message_for(0)), WrongRound)
    replies_a = a.clients_reply()
    refused(b.server, replies_a[0], WrongRound)
    finish(b)


def test_duplicate_and_unknown_senders_are_refused_by_the_server():
    r = SteppedRound(4, 6)
    replies = r.clients_reply()
    r.server.handle(replies[0])
    refused(r.server, replies[0], DuplicateMessage)
    stranger = dataclasses.replace(replies[1], sender=9)
    refused(r.server, stranger, UnknownParty)
    for reply in replies[1:]:
        r.server.handle(reply)
    assert r.server.phase == ServerPhase.SHARE_KEYS


def test_out_of_phase_messages_are_refused_by_both_roles():
    r = SteppedRound(4, 6)
    setup = r.message_for(0)
    r.step()  # server now in SHARE_KEYS, clients await key directories
    early_input = MaskedInput(r.server.round_id, 0, 32, np.zeros(6, dtype=np.uint32))
    refused(r.server, early_input, UnexpectedMessage)
    refused(r.clients[0], wire(setup), UnexpectedMessage)  # a second setup
    unmask = UnmaskingRequest(r.server.round_id, 0, (0, 1, 2, 3), ())
    refused(r.clients[0], unmask, UnexpectedMessage)
    finish(r)


def test_masked_input_of_the_wrong_shape_or_width_is_refused():
    r = _share_delivery_round()
    replies = r.clients_reply()
    genuine = replies[0]
    short = MaskedInput(genuine.round_id, genuine.sender, 32, genuine.vector[:-1].copy())
    refused(r.server, short, InvalidMessage)
    wide = MaskedInput(genuine.round_id, genuine.sender, 64, genuine.vector.astype(np.uint64))
    refused(r.server, wide, InvalidMessage)
    r.server_receives(replies)
    finish(r)


def test_every_truncation_of_every_message_is_malformed():
    r = SteppedRound(4, 5, active=True)
    seen = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        replies = r.clients_reply()
        for message in [*r.to_clients[:1], *replies[:1]]:
            data = encode(message)
            for cut in range(len(data)):
                with pytest.raises(MalformedMessage):
                    decode(data[:cut])
            with pytest.raises(MalformedMessage):
                decode(data + b"\x00")
            seen += 1
        r.server_receives(replies)
    assert seen >= 9


# --- fuzzing -------------------------------------------------------------------------------------


# random bytes into the decoder: tests/protocol/test_messages.py (the codec's own tests)


#: one edit of a message's bytes: ("flip", position, bit mask), ("set", position, byte),
#: ("insert", position, bytes) or ("delete", position, count)
ByteEdit = tuple[str, int, "int | bytes"]


@st.composite
def byte_edits(draw: st.DrawFn, length: int) -> tuple[ByteEdit, ...]:
    """One to four random edits of a message of ``length`` bytes, each at a position
    within what the edits before it left.

    Why drawn against a length rather than the bytes: the same edits then garble any
    message of that length alike, so the garbling test can try them on a stored
    message first and build a round only when the decoder takes the result (the
    draws are those the bytes-based version made, so a seed gives the same examples)."""
    edits: list[ByteEdit] = []
    size = length
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if kind in ("flip", "set", "delete") and not size:
            continue
        pos = draw(st.integers(0, max(size - 1, 0)))
        if kind == "flip":
            edits.append((kind, pos, 1 << draw(st.integers(0, 7))))
        elif kind == "set":
            edits.append((kind, pos, draw(st.integers(0, 255))))
        elif kind == "insert":
            inserted = draw(st.binary(min_size=1, max_size=8))
            edits.append((kind, pos, inserted))
            size += len(inserted)
        else:
            count = draw(st.integers(1, 8))
            edits.append((kind, pos, count))
            size -= min(count, size - pos)
    return tuple(edits)


def apply_edits(edits: tuple[ByteEdit, ...], data: bytes) -> bytes:
    """``data`` after ``edits``, in order."""
    out = bytearray(data)
    for kind, pos, value in edits:
        if kind == "flip":
            out[pos] ^= value  # type: ignore[operator]
        elif kind == "set":
            out[pos] = value  # type: ignore[call-overload]
        elif kind == "insert":
            out[pos:pos] = value  # type: ignore[assignment]
        else:
            del out[pos : pos + value]  # type: ignore[operator]
    return bytes(out)


def _round_with_garbling_target(
    phase_index: int, to_server: bool, active: bool
) -> tuple[SteppedRound, list | None, Message, object]:
    """A fresh 4-client round at ``phase_index``: the round, the clients' replies (when
    the garbled message goes to the server), the genuine message and its recipient."""
    r = SteppedRound(4, 5, active=active)
    for _ in range(min(phase_index, 4 if active else 3)):
        r.step()
    if to_server:
        replies = r.clients_reply()
        return r, replies, replies[0], r.server
    genuine = r.to_clients[0]
    return r, None, genuine, r.clients[genuine.recipient]  # type: ignore[attr-defined]


@functools.cache
def _stored_genuine_bytes(phase_index: int, to_server: bool, active: bool) -> bytes:
    """The encoding of the message a garbling example starts from, from one round per
    process and message kind (20 of them).

    Why one is enough for the decoder's verdict: the decoder reads structure (magic,
    version, type, flags, counts, lengths, party ids), the same in every round of one
    configuration, and takes keys, round ids, ciphertexts and vectors as opaque bytes
    of a fixed size; so edits the decoder refuses on this message it refuses on any
    round's. Four in five garbled messages are refused there, and they no longer pay
    for a round of five phases each."""
    _, _, genuine, _ = _round_with_garbling_target(phase_index, to_server, active)
    return encode(genuine)


def _deliver_forgery(
    r: SteppedRound, replies: list | None, genuine: Message, target: object, message: Message
) -> None:
    """Hand a forged message in place of ``genuine`` and check what follows.

    A refusal must be typed and change nothing, and the example ends there: with
    the refusing state machine's fingerprint (every field, key and buffer it owns)
    unchanged, the genuine messages can only replay the honest round, which the
    accepted examples and every hand-written refusal above play to the end. Before,
    each refused example played it too (half the garbling fuzz's CPU, a third of the
    field fuzz's), and mutants that change state before a refusing check are caught
    on the same seeds without it (2026-12-07, 8 seeds each: four mutants, 19 of 32
    by the garbling fuzz; two, 9 of 16 by the field fuzz; every catch before was
    the fingerprint's or an accepted forgery's round). A client may also legitimately
    leave the round (``RoundAborted``), e.g. when a directory names fewer
    neighbours than the threshold. An accepted forgery must still end in the
    exact sum of the reported clients, or an abort: never a wrong sum. Masked
    vectors are exempt, their content is the sender's to choose.
    """
    before = fingerprint(target)
    try:
        answers = target.handle(message)  # type: ignore[attr-defined]
    except RoundAborted:
        event(f"client left the round on {type(message).__name__}")
        answers = []
    except SecAggError as exc:
        event(f"refused: {type(exc).__name__}")
        assert fingerprint(target) == before
        return
    else:
        event(f"accepted: {type(message).__name__}")
    if isinstance(message, MaskedInput):
        return
    if replies is not None:
        r.server_receives(replies[1:], refusal_is_dropout=True)
    else:
        r.to_clients = [m for m in r.to_clients if m.recipient != genuine.recipient]  # type: ignore[attr-defined]
        r.server_receives(
            [*answers, *r.clients_reply(refusal_is_dropout=True)],
            refusal_is_dropout=True,
        )
    try:
        while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            r.step(refusal_is_dropout=True)
        np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    except RoundAborted:
        event("then the round aborted")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase_index=st.integers(0, 4),
    to_server=st.booleans(),
    active=st.booleans(),
    data=st.data(),
)
def test_garbled_messages_are_refused_and_leave_the_round_intact(
    phase_index, to_server, active, data
):
    """Random corruption of a genuine message at a random phase, in either direction.

    The decoder refuses it, or the state machine refuses it unchanged, or (for a
    corruption that still makes a well-formed, authentic-looking message, such as
    a flipped bit of a masked vector in the honest-but-curious model) accepts it
    and the round ends in the exact sum of the reported clients or aborts. A
    refusal ends the example (:func:`_deliver_forgery`). Four in five refusals are
    the decoder's, which no state machine sees: the edits are tried first on a
    stored message of the kind (:func:`_stored_genuine_bytes`), and only those the
    decoder takes are made again to a fresh round's genuine message and delivered.
    """
    stored = _stored_genuine_bytes(phase_index, to_server, active)
    edits = data.draw(byte_edits(len(stored)))
    try:
        decode(apply_edits(edits, stored))
    except MalformedMessage:
        event("decoder refused")
        return
    r, replies, genuine, target = _round_with_garbling_target(phase_index, to_server, active)
    fresh = encode(genuine)
    assert len(fresh) == len(stored)  # every round of one configuration: one size a kind
    garbled = apply_edits(edits, fresh)
    note(f"garbled bytes delivered: {garbled!r}")  # what a failure report shows
    try:
        message = decode(garbled)
    except MalformedMessage:  # a decoder that came to read content: still a refusal
        event("decoder refused the fresh round's bytes only")
        return
    _deliver_forgery(r, replies, genuine, target, message)


def test_a_mask_key_altered_in_relay_is_caught_not_summed_wrongly():
    """The relayed key directory shows client 1 a wrong mask key for client 0.

    Pair seeds would then differ between 0 and 1 and the masks would not cancel;
    with nobody dropping, no reconstruction would ever notice. Binding both
    parties' keys into each share's AEAD makes each of the two fail to open the
    other's share: they accuse each other. Accusers mask with the accused (message
    version 3), so 1's mask with 0 is one nobody can remove: 1's accusation names
    the key it saw, not the one 0 advertised, the server refuses its masked input,
    and 1 counts as dropped. The round ends in the exact sum of the others.
    """
    r = SteppedRound(6, 6, threshold=4)
    r.step()  # key directories are now pending
    directory = r.message_for(1)
    entries = tuple(
        dataclasses.replace(e, mask_key=bytes([e.mask_key[0] ^ 1]) + e.mask_key[1:])
        if e.party == 0
        else e
        for e in directory.entries
    )
    r.to_clients = [
        dataclasses.replace(directory, entries=entries) if m.recipient == 1 else m
        for m in r.to_clients
    ]
    r.step()  # clients share keys; 1 sealed its shares for 0 under the wrong key
    replies = r.clients_reply()
    accused = {m.sender: tuple(a.party for a in m.accusations) for m in replies if m.accusations}
    assert accused == {0: (1,), 1: (0,)}
    (from_1,) = [m for m in replies if m.sender == 1]
    refused(r.server, from_1, InvalidMessage)
    r.server_receives([m for m in replies if m.sender != 1])
    finish(r)
    assert r.server.report.accused == {1: {0}}
    assert r.server.report.included == (0, 2, 3, 4, 5)


def _perturb(draw: st.DrawFn, value: object) -> object:
    """A well-typed but different value: the kind a buggy or hostile peer would send."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, enum.Enum):
        return draw(st.sampled_from([v for v in type(value) if v != value] or [value]))
    if isinstance(value, int):
        return draw(st.sampled_from([value + 1, max(value - 1, 0), 0, 7, 2**32 - 1]))
    if isinstance(value, bytes):
        if value and draw(st.booleans()):
            i = draw(st.integers(0, len(value) - 1))
            return value[:i] + bytes([value[i] ^ 0x80]) + value[i + 1 :]
        return draw(st.binary(max_size=70))
    if isinstance(value, np.ndarray):
        return draw(
            st.sampled_from(
                [value[:-1].copy(), np.concatenate([value, value[:1]]), value.astype(np.uint64)]
            )
        )
    if isinstance(value, tuple):
        options: list[tuple] = [(), value[::-1], value + value[:1], value[1:]]
        if value and dataclasses.is_dataclass(value[0]):
            i = draw(st.integers(0, len(value) - 1))
            item = value[i]
            field = draw(st.sampled_from([f.name for f in dataclasses.fields(item)]))
            changed = dataclasses.replace(item, **{field: _perturb(draw, getattr(item, field))})
            options.append((*value[:i], changed, *value[i + 1 :]))
        elif value and isinstance(value[0], int):
            options.append(tuple(sorted({*value, draw(st.integers(0, 9))})))
        return draw(st.sampled_from(options))
    if isinstance(value, str):
        return value + "!"
    raise TypeError(type(value))


@st.composite
def field_mutations(draw: st.DrawFn, message: Message) -> Message:
    names = [f.name for f in dataclasses.fields(message)]
    name = draw(st.sampled_from(names))
    return dataclasses.replace(message, **{name: _perturb(draw, getattr(message, name))})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase_index=st.integers(0, 4),
    to_server=st.booleans(),
    active=st.booleans(),
    data=st.data(),
)
def test_well_formed_but_wrong_messages_never_corrupt_the_sum(phase_index, to_server, active, data):
    """One field of a genuine message replaced by a plausible wrong value.

    Either the codec or the receiving state machine refuses it (with a typed
    error, changing nothing: the example ends there, see :func:`_deliver_forgery`),
    or it is accepted and the round ends in the exact sum of the reported
    clients or aborts. Masked vectors are exempt: their content is the client's
    to choose.
    """
    r = SteppedRound(4, 5, active=active)
    for _ in range(min(phase_index, 4 if active else 3)):
        r.step()
    replies = r.clients_reply() if to_server else None
    genuine = replies[0] if replies else r.to_clients[0]
    target = r.server if to_server else r.clients[genuine.recipient]
    forged = data.draw(field_mutations(genuine))
    try:
        message = decode(encode(forged))
    except MalformedMessage:
        event("codec refused")
        return
    _deliver_forgery(r, replies, genuine, target, message)


@pytest.mark.parametrize("change", [+1, -1, +60_000])
def test_a_sealed_share_of_the_wrong_size_is_refused_by_the_server(change: int):
    """Runtime audit (2026-12-04): the server took sealed shares of any length, so a
    client could pad the one it seals for a neighbour until that neighbour's
    ShareDelivery passed the transport's message limit, and the round aborted without
    the client missing a phase (every round, never benched). Every genuine sealed share
    has one size; another is refused, the state unchanged, and the genuine message
    still completes the round."""
    r = SteppedRound(5, 6)
    r.step()  # advertise keys
    replies = r.clients_reply()
    evil = replies[0]
    first = evil.shares[0]
    size = len(first.ciphertext) + change
    resized = SealedShare(first.peer, (first.ciphertext + bytes(max(change, 0)))[:size])
    forged = dataclasses.replace(evil, shares=(resized, *evil.shares[1:]))
    refused(r.server, wire(forged), InvalidMessage)
    r.server_receives(replies)
    finish(r)


@pytest.mark.parametrize("reason", [None, b"deadline", 42])
def test_an_abort_reason_that_is_not_text_is_refused_before_the_round_changes(reason) -> None:
    """Before, ``Server.abort(None)`` moved the round to ABORTED and returned notices
    whose encoding then failed with an AttributeError: the round was lost and no
    client told. Now the reason's type is checked first: ConfigurationError, state
    unchanged, and a text reason still aborts."""
    r = SteppedRound(4, 4)
    refused_call(r.server, ConfigurationError, r.server.abort, reason)
    assert r.server.phase == ServerPhase.ADVERTISE_KEYS
    notices = r.server.abort("shutting down")
    assert {decode(encode(n)).reason for n in notices} == {"shutting down"}
