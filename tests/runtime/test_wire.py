"""The runtime's typed messages: exact round trips, and nothing but MalformedMessage otherwise."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.spec import Writer
from secagg.dp.release import RecordReport
from secagg.errors import MalformedMessage
from secagg.runtime.wire import (
    MAX_HISTORY,
    ROUND_START_VERSION,
    Message,
    Relay,
    RoundEnd,
    RoundStart,
    decode_message,
    encode_message,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=50, deadline=None)
@given(
    number=st.integers(0, 2**32 - 1),
    party=st.integers(0, 10**6),
    spec=st.binary(max_size=100),
    model=st.lists(finite, max_size=50),
    clip=st.one_of(st.none(), st.floats(1e-6, 1e6)),
)
def test_round_start_round_trips_and_the_model_travels_as_float32(
    number: int, party: int, spec: bytes, model: list[float], clip: float | None
) -> None:
    vector = np.asarray(model, dtype=np.float64)
    message = decode_message(
        encode_message(RoundStart(number, party, spec, vector, clip, federation="fed"))
    )
    assert isinstance(message, RoundStart)
    assert (message.round, message.party, message.spec, message.clip) == (number, party, spec, clip)
    np.testing.assert_array_equal(message.model, vector.astype(np.float32))
    assert len(encode_message(RoundStart(number, party, spec, vector, clip, federation="fed"))) == (
        4 * vector.size + len(spec) + 31 + 4 + len("fed")
    )  # 4 bytes per parameter: half of float64; the federation's name, length-prefixed


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=200), steps=st.lists(st.integers(0, 10**6), max_size=5))
def test_relay_round_trips_with_and_without_a_privacy_report(
    payload: bytes, steps: list[int]
) -> None:
    report = RecordReport("prv", 1e-5, 2.5, tuple((1.1, 0.01, s) for s in steps), 1.0)
    for privacy in (None, report):
        back = decode_message(encode_message(Relay(7, payload, privacy)))
        assert back == Relay(7, payload, privacy)


def test_the_count_report_flag_round_trips_and_needs_a_clip() -> None:
    start = RoundStart(2, 1, b"spec", np.zeros(3), 0.5, True, federation="fed")
    back = decode_message(encode_message(start))
    assert isinstance(back, RoundStart) and back.report_unclipped and back.clip == 0.5
    with pytest.raises(MalformedMessage, match="clip"):
        decode_message(
            encode_message(RoundStart(2, 1, b"spec", np.zeros(3), None, True, federation="fed"))
        )


def test_round_end_round_trips() -> None:
    for end in (RoundEnd(3, True), RoundEnd(4, False, "below threshold")):
        assert decode_message(encode_message(end)) == end


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120))
def test_random_bytes_raise_only_malformed(data: bytes) -> None:
    try:
        decode_message(b"SAFD\x02" + data)
    except MalformedMessage:
        pass


@pytest.mark.parametrize(
    "report",
    [
        {"accountant": "xyz", "delta": 1e-5, "epsilon": 1.0, "history": []},
        {"accountant": "prv", "delta": 2.0, "epsilon": 1.0, "history": []},
        {"accountant": "prv", "delta": 1e-5, "epsilon": math.nan, "history": []},
        {"accountant": "prv", "delta": 1e-5, "epsilon": 1.0, "history": [[1.0, 2.0, 3]]},
        {"accountant": "prv", "delta": 1e-5, "epsilon": 1.0, "history": "x"},
    ],
)
def test_bad_privacy_reports_are_malformed(report: dict) -> None:
    with pytest.raises(MalformedMessage):
        RecordReport.from_dict(report)


def test_a_model_with_nan_is_refused() -> None:
    data = encode_message(RoundStart(1, 0, b"", np.array([1.0, np.nan]), None, federation="fed"))
    with pytest.raises(MalformedMessage, match="NaN"):
        decode_message(data)


# --- totality (review findings H1 and L3) -------------------------------------------------
# Whatever a peer sends, decode_message returns a message or raises MalformedMessage:
# any other exception would escape a receive loop that catches the protocol's errors.

_HEAD = struct.Struct("<4sBBI")
NAN, INF = math.nan, math.inf


def _head(kind: int, number: int = 1) -> bytes:
    """A header of the current version of ``kind`` (a round start's is 3)."""
    return _HEAD.pack(b"SAFD", ROUND_START_VERSION if kind == 1 else 2, kind, number)


#: a round start's body begins with its federation's name
FEDERATION = struct.pack("<I", 3) + b"fed"


def _decodes_or_refuses(data: bytes) -> Message | None:
    """The message, or None if refused; any exception but MalformedMessage fails the test."""
    try:
        return decode_message(data)
    except MalformedMessage:
        return None


def _report_bytes(
    *,
    accountant: str = "prv",
    delta: float = 1e-5,
    epsilon: float = 1.0,
    norm: float = 1.0,
    history: tuple[tuple[float, float, int], ...] = ((1.1, 0.01, 5),),
    count: int | None = None,
    unit: str = "record",
) -> bytes:
    """A relay carrying a privacy report written field by field (no validation on the way)."""
    w = Writer().u8(1).text(accountant).text(unit).f64(delta).f64(epsilon).f64(norm)
    w.u32(len(history) if count is None else count)
    for z, q, steps in history:
        w.f64(z).f64(q).u32(steps)
    return _head(2) + w.bytes() + b"payload"


def _valid_messages() -> list[bytes]:
    report = RecordReport("prv", 1e-5, 2.5, ((1.1, 0.01, 10), (0.9, 0.02, 3)), 1.0, "customer")
    return [
        encode_message(
            RoundStart(3, 2, b"spec-bytes", np.arange(6.0), 0.5, True, federation="fed")
        ),
        encode_message(RoundStart(3, 2, b"", np.zeros(0), None, federation="fed")),
        encode_message(Relay(4, b"\x00payload", report)),
        encode_message(Relay(4, b"payload")),
        encode_message(RoundEnd(5, False, "deadline")),
    ]


VALID = _valid_messages()
HUGE_U32 = (0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, MAX_HISTORY + 1, 1 << 24)
SPECIAL_FLOATS = (NAN, INF, -INF, 1e308, -1e308, 5e-324, 0.0, -0.0)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding, truncated, bit-flipped, extended, or with a field set huge."""
    data = bytearray(draw(st.sampled_from(VALID)))
    how = draw(st.sampled_from(("cut", "flip", "u32", "f64", "junk")))
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return bytes(data[:at])
    if how == "flip":
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "u32":
        data[at : at + 4] = struct.pack("<I", draw(st.sampled_from(HUGE_U32)))
    elif how == "f64":
        data[at : at + 8] = struct.pack("<d", draw(st.sampled_from(SPECIAL_FLOATS)))
    else:
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=500, deadline=None)
@given(data=mutated())
def test_mutated_valid_messages_decode_or_raise_only_malformed(data: bytes) -> None:
    message = _decodes_or_refuses(data)
    if message is not None:  # whatever decodes is within every range: it re-encodes stably
        again = encode_message(message)
        assert encode_message(decode_message(again)) == again


@settings(max_examples=300, deadline=None)
@given(kind=st.integers(0, 255), body=st.binary(max_size=200))
def test_random_bodies_of_every_kind_raise_only_malformed(kind: int, body: bytes) -> None:
    _decodes_or_refuses(_head(kind) + body)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_bytes_with_any_header_raise_only_malformed(data: bytes) -> None:
    _decodes_or_refuses(data)


@pytest.mark.parametrize("kind", [1, 2, 3])
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30000 + b"]" * 30000,  # H1: RecursionError in a JSON parser
        b'{"a":' + b"1" * 5000 + b"}",  # H1: int/str conversion limit
        b"\x01" + b"\xff" * 64,  # a flagged relay whose report claims huge lengths
    ],
)
def test_the_review_vectors_are_refused_or_opaque(kind: int, body: bytes) -> None:
    message = _decodes_or_refuses(_head(kind) + body)
    assert message is None or (isinstance(message, Relay) and message.payload == body[1:])


@pytest.mark.parametrize(
    "fields",
    [
        {"epsilon": NAN},
        {"epsilon": -INF},
        {"epsilon": -1.0},
        {"delta": NAN},
        {"delta": INF},
        {"delta": 0.0},
        {"norm": INF},
        {"norm": -1.0},
        {"history": ((INF, 0.01, 5),)},
        {"history": ((NAN, 0.01, 5),)},
        {"history": ((1.0, NAN, 5),)},
        {"history": ((1.0, 2.0, 5),)},
        {"history": ((-1.0, 0.5, 5),)},
        {"accountant": "x" * 17},
        {"accountant": "json"},
        {"count": MAX_HISTORY + 1},
        {"count": 0xFFFFFFFF},
        {"count": 1000},  # claims more entries than the bytes hold
    ],
)
def test_a_privacy_report_with_a_bad_number_or_size_is_malformed(fields: dict) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(_report_bytes(**fields))


@pytest.mark.parametrize("unit", ["customer", "transaction", "record"])
def test_a_privacy_report_carries_its_unit(unit: str) -> None:
    """A customer-level branch's report reached the ledger as a plain record-level one."""
    message = decode_message(_report_bytes(unit=unit))
    assert isinstance(message, Relay) and message.privacy is not None
    assert message.privacy.unit == unit


def test_an_unknown_privacy_unit_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="unit"):
        decode_message(_report_bytes(unit="household"))


def test_a_privacy_report_without_noise_keeps_its_infinite_epsilon() -> None:
    message = decode_message(_report_bytes(epsilon=INF, norm=NAN, history=((0.0, 0.1, 2**32 - 1),)))
    assert isinstance(message, Relay) and message.privacy is not None
    assert message.privacy.epsilon == INF and message.privacy.max_grad_norm is None
    assert message.privacy.history == ((0.0, 0.1, 2**32 - 1),)


@pytest.mark.parametrize(
    "data",
    [
        _head(1) + FEDERATION + struct.pack("<IdB", 0, NAN, 0) + struct.pack("<I", 0xFFFFFFFF),
        _head(1)
        + FEDERATION
        + struct.pack("<IdBI", 0, NAN, 0, 0)
        + struct.pack("<I", 0x7FFFFFFF),  # model
        _head(3) + b"\x01" + struct.pack("<I", 0xFFFFFFFF),  # round-end reason
    ],
)
def test_huge_length_fields_are_refused_without_allocating(data: bytes) -> None:
    with pytest.raises(MalformedMessage, match=r"too long|truncated"):
        decode_message(data)


@pytest.mark.parametrize("data", ["SAFD", None, 12, [1, 2]])
def test_a_non_bytes_message_is_malformed(data: object) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(data)  # type: ignore[arg-type]
