"""The runtime's typed messages: exact round trips, and nothing but MalformedMessage otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.release import RecordReport
from secagg.errors import MalformedMessage
from secagg.runtime.wire import Relay, RoundEnd, RoundStart, decode_message, encode_message

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
    message = decode_message(encode_message(RoundStart(number, party, spec, vector, clip)))
    assert isinstance(message, RoundStart)
    assert (message.round, message.party, message.spec, message.clip) == (number, party, spec, clip)
    np.testing.assert_array_equal(message.model, vector.astype(np.float32))
    assert len(encode_message(RoundStart(number, party, spec, vector, clip))) == (
        4 * vector.size + len(spec) + 31
    )  # 4 bytes per parameter: half of float64


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
    start = RoundStart(2, 1, b"spec", np.zeros(3), 0.5, True)
    back = decode_message(encode_message(start))
    assert isinstance(back, RoundStart) and back.report_unclipped and back.clip == 0.5
    with pytest.raises(MalformedMessage, match="clip"):
        decode_message(encode_message(RoundStart(2, 1, b"spec", np.zeros(3), None, True)))


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
    data = encode_message(RoundStart(1, 0, b"", np.array([1.0, np.nan]), None))
    with pytest.raises(MalformedMessage, match="NaN"):
        decode_message(data)
