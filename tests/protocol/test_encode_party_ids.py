"""``encode`` refuses a party id inside a tuple or record that the peer would read as
another value or type.

The scalar fields were checked at encode (tests/protocol/test_encode_field_types.py),
the tuples were left to ``struct``, which packs ``True`` as 1 and ``np.int64(3)`` as 3:
an unmasking request whose survivors held ``True``, or a revealed share whose owner was
``True``, went out naming party 1, a value nobody set, while ``check_fields`` refuses
the same object handed over in process. Now every id in a list or record must be an
``int`` as ``check_fields`` has it, or ``encode`` raises MalformedMessage naming the
field; well-typed messages encode as before, and the survivor list is still read once.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import MalformedMessage
from secagg.protocol.messages import (
    Accusation,
    ConsistencyRequest,
    KeyDirectory,
    KeyEntry,
    MaskedInput,
    Message,
    PartySignature,
    RevealedShare,
    SealedShare,
    ShareDelivery,
    ShareKeys,
    UnmaskingRequest,
    UnmaskingShares,
    check_fields,
    decode,
    encode,
)

ROUND = bytes(range(16))
KEY = bytes(range(1, 33))
SIGNATURE = bytes(64)


def _messages(party: Any) -> dict[str, Message]:
    """One message per place a party id sits inside a tuple, holding ``party`` there."""
    return {
        "ConsistencyRequest.survivors": ConsistencyRequest(ROUND, 0, (party, 5)),
        "UnmaskingRequest.survivors": UnmaskingRequest(ROUND, 0, (party, 5), ()),
        "UnmaskingRequest.dropped": UnmaskingRequest(ROUND, 0, (0,), (party,)),
        "PartySignature.party": UnmaskingRequest(
            ROUND, 0, (0, 5), (), (PartySignature(party, SIGNATURE),)
        ),
        "KeyDirectory.entries[].party": KeyDirectory(ROUND, 0, (KeyEntry(party, KEY, KEY),)),
        "SealedShare.peer": ShareKeys(ROUND, 0, bytes(32), (SealedShare(party, b"x"),)),
        "ShareDelivery": ShareDelivery(ROUND, 0, (SealedShare(party, b"x"),)),
        "RevealedShare.owner": UnmaskingShares(ROUND, 0, (), (RevealedShare(party, b"ab"),)),
        "Accusation.party": MaskedInput(
            ROUND, 0, 32, np.zeros(2, dtype=np.uint32), (Accusation(party, KEY),)
        ),
    }


@pytest.mark.parametrize("party", [True, False, np.int64(1), np.uint32(3)], ids=repr)
@pytest.mark.parametrize("place", sorted(_messages(1)))
def test_a_party_id_that_is_not_an_int_is_refused_at_encode(place: str, party: Any) -> None:
    message = _messages(party)[place]
    with pytest.raises(MalformedMessage, match="must"):
        encode(message)


@pytest.mark.parametrize("place", sorted(_messages(1)))
def test_the_same_messages_with_int_ids_round_trip(place: str) -> None:
    message = _messages(1)[place]
    decoded = decode(encode(message))
    for field in dataclasses.fields(message):
        got, want = getattr(decoded, field.name), getattr(message, field.name)
        assert np.array_equal(got, want) if isinstance(want, np.ndarray) else got == want


_ANY_ID = st.one_of(
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.sampled_from([np.int64(2), np.uint32(7), 1.0, "1", None]),
)


@settings(max_examples=40, deadline=None)
@given(
    survivors=st.lists(_ANY_ID, max_size=6).map(tuple),
    dropped=st.lists(_ANY_ID, max_size=3).map(tuple),
)
def test_encode_refuses_or_sends_what_check_fields_takes(
    survivors: tuple[Any, ...], dropped: tuple[Any, ...]
) -> None:
    """Property: an unmasking request is refused at encode exactly when ``check_fields``
    refuses it, and what goes out decodes to the very ids (same values, same types)."""
    message = UnmaskingRequest(ROUND, 0, survivors, dropped)
    try:
        check_fields(message)
        well_typed = True
    except MalformedMessage:
        well_typed = False
    if not well_typed:
        with pytest.raises(MalformedMessage):
            encode(message)
        return
    decoded = decode(encode(message))
    assert isinstance(decoded, UnmaskingRequest)
    for got, want in ((decoded.survivors, survivors), (decoded.dropped, dropped)):
        assert [(type(v), v) for v in got] == [(type(v), v) for v in want]


def test_a_large_survivor_list_is_still_read_once() -> None:
    """The check reads the copy, not the caller's sequence again."""

    class CountingTuple(tuple):  # type: ignore[type-arg]
        reads = 0

        def __iter__(self):  # type: ignore[no-untyped-def]
            CountingTuple.reads += 1
            return super().__iter__()

    survivors = CountingTuple((*range(999), True))
    with pytest.raises(MalformedMessage, match="survivors must hold ints, not bool True"):
        encode(UnmaskingRequest(os.urandom(16), 3, survivors, ()))
    assert CountingTuple.reads <= 1
