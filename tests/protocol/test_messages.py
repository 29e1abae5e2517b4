"""The codec: every message round-trips; anything else is a MalformedMessage, never a crash."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import MalformedMessage
from secagg.protocol import messages as m

rid = st.binary(min_size=16, max_size=16)
party = st.integers(0, 2**32 - 1)
key = st.binary(min_size=32, max_size=32)
sig = st.one_of(st.just(b""), st.binary(min_size=64, max_size=64))
sig64 = st.binary(min_size=64, max_size=64)
ids = st.lists(st.integers(0, 2**32 - 1), max_size=20).map(tuple)


def vectors(draw_bits):
    return st.integers(0, 50).map(
        lambda n: np.frombuffer(
            os.urandom(n * draw_bits // 8), dtype=np.uint32 if draw_bits == 32 else np.uint64
        )
    )


messages = st.one_of(
    st.builds(
        m.RoundSetup,
        rid,
        party,
        st.integers(2, 2**32 - 1),
        st.integers(1, 2**64 - 1),
        st.sampled_from([32, 64]),
        st.integers(0, 2**32 - 1),
        st.sampled_from(list(m.GraphKind)),
        st.integers(0, 2**32 - 1),
        st.binary(min_size=32, max_size=32),
        st.booleans(),
    ),
    st.builds(m.AdvertiseKeys, rid, party, key, key, sig),
    st.builds(
        m.KeyDirectory,
        rid,
        party,
        st.lists(st.builds(m.KeyEntry, party, key, key, sig), max_size=5).map(tuple),
    ),
    st.builds(
        m.ShareKeys,
        rid,
        party,
        st.binary(min_size=32, max_size=32),
        st.lists(st.builds(m.SealedShare, party, st.binary(max_size=100)), max_size=5).map(tuple),
    ),
    st.builds(
        m.ShareDelivery,
        rid,
        party,
        st.lists(st.builds(m.SealedShare, party, st.binary(max_size=100)), max_size=5).map(tuple),
    ),
    st.builds(m.ConsistencyRequest, rid, party, ids),
    st.builds(m.ConsistencySignature, rid, party, sig64),
    st.builds(
        m.UnmaskingRequest,
        rid,
        party,
        ids,
        ids,
        st.lists(st.builds(m.PartySignature, party, sig64), max_size=4).map(tuple),
    ),
    st.builds(
        m.UnmaskingShares,
        rid,
        party,
        st.lists(st.builds(m.RevealedShare, party, st.binary(max_size=40)), max_size=4).map(tuple),
        st.lists(st.builds(m.RevealedShare, party, st.binary(max_size=40)), max_size=4).map(tuple),
    ),
    st.builds(m.RoundAbort, rid, party, st.text(max_size=100)),
)


@given(messages)
@settings(max_examples=300)
def test_every_message_round_trips(msg):
    assert m.decode(m.encode(msg)) == msg


@given(bits=st.sampled_from([32, 64]), data=st.data())
def test_masked_input_round_trips_zero_copy(bits, data):
    vec = data.draw(vectors(bits))
    msg = m.MaskedInput(b"r" * 16, 7, bits, vec)
    out = m.decode(m.encode(msg))
    assert isinstance(out, m.MaskedInput) and out.bits == bits and out.sender == 7
    assert np.array_equal(out.vector, vec)
    assert not out.vector.flags.writeable  # a view of the received bytes, immutable


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_random_bytes_never_crash_the_decoder(data):
    try:
        m.decode(data)
    except MalformedMessage:
        pass


@given(messages, st.data())
@settings(max_examples=300)
def test_truncated_or_extended_encodings_are_refused(msg, data):
    raw = m.encode(msg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(MalformedMessage):
        m.decode(raw[:cut])
    with pytest.raises(MalformedMessage):
        m.decode(raw + data.draw(st.binary(min_size=1, max_size=8)))


@given(messages, st.data())
@settings(max_examples=300)
def test_mutated_encodings_decode_or_raise_malformed(msg, data):
    raw = bytearray(m.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        out = m.decode(bytes(raw))
    except MalformedMessage:
        return
    assert m.decode(m.encode(out)) == out or isinstance(out, m.MaskedInput)


def test_header_checks_name_the_problem():
    raw = m.encode(m.RoundAbort(b"r" * 16, 1, "x"))
    with pytest.raises(MalformedMessage, match="magic"):
        m.decode(b"XX" + raw[2:])
    with pytest.raises(MalformedMessage, match="version"):
        m.decode(raw[:2] + b"\x09" + raw[3:])
    with pytest.raises(MalformedMessage, match="type"):
        m.decode(raw[:3] + b"\x63" + raw[4:])


def test_huge_declared_counts_do_not_allocate():
    header = m.encode(m.ConsistencyRequest(b"r" * 16, 1, ()))[:-4]
    with pytest.raises(MalformedMessage, match="cannot fit"):
        m.decode(header + (2**32 - 1).to_bytes(4, "big"))


accusation_lists = st.lists(
    st.builds(m.Accusation, party, st.binary(min_size=32, max_size=32)), max_size=5
).map(tuple)


@given(bits=st.sampled_from([32, 64]), accusations=accusation_lists, signature=sig, data=st.data())
@settings(max_examples=200)
def test_masked_input_with_accusations_round_trips_exactly(bits, accusations, signature, data):
    vec = data.draw(vectors(bits))
    msg = m.MaskedInput(b"r" * 16, 7, bits, vec, accusations, signature)
    raw = m.encode(msg)
    out = m.decode(raw)
    assert isinstance(out, m.MaskedInput)
    assert (out.bits, out.accusations, out.signature) == (bits, accusations, signature)
    assert np.array_equal(out.vector, vec) and not out.vector.flags.writeable
    assert m.encode(out) == raw
    # exact: header, bits, count, 36 bytes per accusation, signature flag (+64), length, words
    assert len(raw) == 24 + 1 + 4 + 36 * len(accusations) + 1 + len(signature) + 8 + vec.nbytes
    for cut in range(len(raw)):
        with pytest.raises(MalformedMessage):
            m.decode(raw[:cut])


def test_masked_input_accusation_fields_are_checked_on_encode_and_decode():
    vec = np.zeros(3, dtype=np.uint32)
    with pytest.raises(MalformedMessage, match="accused mask key"):
        m.encode(m.MaskedInput(b"r" * 16, 1, 32, vec, (m.Accusation(2, b"short"),)))
    with pytest.raises(MalformedMessage, match="signature"):
        m.encode(m.MaskedInput(b"r" * 16, 1, 32, vec, (), b"x" * 10))
    raw = bytearray(m.encode(m.MaskedInput(b"r" * 16, 1, 32, vec)))
    raw[29] = 2  # the signature flag after bits and an empty accusation count
    with pytest.raises(MalformedMessage, match="0 or 1"):
        m.decode(bytes(raw))


@pytest.mark.parametrize("old", [1, 2, 3])
def test_version_one_messages_are_refused_not_misread(old: int):
    """v2 added accusations to MaskedInput, v3 replaced their pair seed by the accused's
    mask key (a v2 accuser skips a mask and reveals a seed that v3 neither removes nor
    wants), v4 the population to RoundSetup (a v3 client counts a sampled round's own
    colluders only): an older peer's bytes must not decode as v4."""
    assert m.VERSION == 4
    raw = m.encode(m.MaskedInput(b"r" * 16, 1, 32, np.zeros(3, dtype=np.uint32)))
    with pytest.raises(MalformedMessage, match=f"version {old}"):
        m.decode(raw[:2] + bytes([old]) + raw[3:])


# --- the abort reason and wrongly typed fields (hostile-input audit 2026-12-05) ----------


@settings(max_examples=300)
@given(
    pad=st.integers(990, 1030),
    char=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)),
    tail=st.text(max_size=20),
)
def test_a_long_reason_is_cut_on_a_character_boundary_and_still_decodes(pad, char, tail):
    """Before, the reason was cut at byte 1024 wherever it fell: a multi-byte character
    across the cut gave bytes the decoder refused ("reason is not UTF-8"), so clients
    refused the abort itself and never learned their round had ended."""
    reason = "a" * pad + char * 12 + tail
    raw = m.encode(m.RoundAbort(b"r" * 16, 3, reason))
    got = m.decode(raw)
    assert isinstance(got, m.RoundAbort)
    assert reason.startswith(got.reason)
    assert len(got.reason.encode("utf-8")) <= m.MAX_REASON_BYTES
    # nothing is cut that fits, and no more than the one character that straddles
    assert len(got.reason.encode("utf-8")) > m.MAX_REASON_BYTES - 4 or got.reason == reason


def test_the_reason_that_straddled_the_limit() -> None:
    reason = "a" + "é" * 600  # 1201 bytes: byte 1024 falls inside an "é"
    got = m.decode(m.encode(m.RoundAbort(b"r" * 16, 0, reason)))
    assert got.reason == "a" + "é" * 511


@pytest.mark.parametrize(
    "record",
    [
        m.RoundAbort(b"r" * 16, 0, None),  # type: ignore[arg-type]
        m.RoundAbort(b"r" * 16, 0, b"bytes"),  # type: ignore[arg-type]
        m.RoundAbort(None, 0, "x"),  # type: ignore[arg-type]
        m.AdvertiseKeys(b"r" * 16, 0, None, b"k" * 32),  # type: ignore[arg-type]
        m.ConsistencyRequest(b"r" * 16, 0, None),  # type: ignore[arg-type]
        m.ShareDelivery(b"r" * 16, 0, (m.SealedShare(1, None),)),  # type: ignore[arg-type]
        m.UnmaskingShares(b"r" * 16, 0, (m.RevealedShare(1, 5),), ()),  # type: ignore[arg-type]
    ],
)
def test_a_wrongly_typed_field_is_malformed_on_encode_not_a_type_error(record):
    """``encode`` promises MalformedMessage for a record the format cannot carry; a
    None or an int where bytes or text belong raised TypeError or AttributeError."""
    with pytest.raises(MalformedMessage):
        m.encode(record)
