"""The frame reassembler is total: any frame sequence gives messages or a typed refusal.

The reader thread of a gRPC session feeds every frame a peer sends to a
:class:`~secagg.transport.framing.Reassembler`; a refusal ends that stream, anything
else would be a bug in the one place that sees raw network input (review findings H1
and L3). Bytes held are bounded by ``max_message_bytes`` whatever the frames claim.
"""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import MalformedMessage
from secagg.transport.framing import (
    HEADER_BYTES,
    MalformedFrame,
    MessageTooLarge,
    Reassembler,
    encode_frames,
)

CHUNK = 64
LIMIT = 1000
_HEADER = struct.Struct(">BBHQIIQ")


def _feed_all(frames: list[bytes]) -> list[bytes]:
    """The messages the frames complete, stopping at the first (typed) refusal."""
    reassembler = Reassembler(LIMIT, CHUNK)
    out = []
    try:
        for frame in frames:
            message = reassembler.feed(frame)
            assert reassembler.buffered <= LIMIT
            if message is not None:
                out.append(message)
    except (MalformedFrame, MessageTooLarge):
        pass
    return out


def _stream(payloads: list[bytes]) -> list[bytes]:
    return [f for i, p in enumerate(payloads) for f in encode_frames(i, p, CHUNK)]


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.binary(max_size=HEADER_BYTES + CHUNK + 8), max_size=12))
def test_random_frames_give_messages_or_a_typed_refusal(frames: list[bytes]) -> None:
    _feed_all(frames)


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_valid_streams_round_trip(payloads: list[bytes]) -> None:
    assert _feed_all(_stream(payloads)) == payloads


@st.composite
def mutated_stream(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    payloads = draw(st.lists(st.binary(max_size=300), min_size=1, max_size=3))
    frames = _stream(payloads)
    at = draw(st.integers(0, len(frames) - 1))
    frame = bytearray(frames[at])
    how = draw(st.sampled_from(("cut", "flip", "huge", "drop", "repeat")))
    if how == "cut":
        frames[at] = bytes(frame[: draw(st.integers(0, len(frame) - 1))])
    elif how == "flip":
        pos = draw(st.integers(0, len(frame) - 1))
        frame[pos] ^= 1 << draw(st.integers(0, 7))
        frames[at] = bytes(frame)
    elif how == "huge":  # set the id, index, count or total field to an absurd value
        field = draw(st.sampled_from([(4, ">Q"), (12, ">I"), (16, ">I"), (20, ">Q")]))
        value = draw(st.sampled_from([2**32 - 1, 2**31, LIMIT + 1, 2**63]))
        offset, fmt = field
        frame[offset : offset + struct.calcsize(fmt)] = struct.pack(
            fmt, value % (1 << (8 * struct.calcsize(fmt)))
        )
        frames[at] = bytes(frame)
    elif how == "drop":
        del frames[at]
    else:
        frames.insert(at, frames[at])
    return payloads, frames


@settings(max_examples=500, deadline=None)
@given(case=mutated_stream())
def test_mutated_streams_deliver_a_prefix_or_refuse(case: tuple[list[bytes], list[bytes]]) -> None:
    payloads, frames = case
    delivered = _feed_all(frames)
    # what gets through is never invented: a prefix of the messages, except that a flip inside
    # chunk data changes that message's bytes (framing carries no checksum; TLS protects it)
    assert len(delivered) <= len(payloads)
    for got, sent in zip(delivered, payloads, strict=False):
        assert len(got) == len(sent)


def test_a_declared_huge_total_is_refused_on_the_first_frame() -> None:
    reassembler = Reassembler(LIMIT, CHUNK)
    frame = _HEADER.pack(1, 0, 0, 0, 0, 2**32 - 1, 2**64 - 1) + b"x"
    with pytest.raises(MessageTooLarge):
        reassembler.feed(frame)
    assert reassembler.buffered == 0


def test_a_non_bytes_frame_is_malformed() -> None:
    with pytest.raises(MalformedFrame) as caught:
        Reassembler(LIMIT, CHUNK).feed("frame")  # type: ignore[arg-type]
    assert isinstance(caught.value, MalformedMessage)


def test_buffered_counts_the_message_being_reassembled() -> None:
    reassembler = Reassembler(LIMIT, CHUNK)
    frames = list(encode_frames(0, bytes(200), CHUNK))
    for index, frame in enumerate(frames[:-1]):
        assert reassembler.feed(frame) is None
        assert reassembler.buffered == CHUNK * (index + 1)
    assert reassembler.feed(frames[-1]) == bytes(200)
    assert reassembler.buffered == 0


# --- canonical chunking (audit finding A) ------------------------------------------------


def test_tiny_chunks_are_refused_on_the_first_frame() -> None:
    """A: a message cut finer than ``chunk_bytes`` would hold one object per chunk, some
    fifty bytes of memory for every two counted; only encode_frames' cut is accepted."""
    reassembler = Reassembler(LIMIT, CHUNK)
    frame = _HEADER.pack(1, 0, 0, 0, 0, 100, 200) + b"xy"
    with pytest.raises(MalformedFrame, match="cannot carry 200 bytes in chunks of 64"):
        reassembler.feed(frame)
    assert reassembler.buffered == 0 and not reassembler.partial


def test_a_short_chunk_before_the_last_is_refused_and_changes_nothing() -> None:
    """A: the right chunk count but a short chunk before the last is refused, and the
    reassembler's state is as before it: the frame encode_frames made is still taken."""
    reassembler = Reassembler(LIMIT, CHUNK)
    payload = bytes(range(200))
    frames = list(encode_frames(0, payload, CHUNK))
    assert reassembler.feed(frames[0]) is None
    short = frames[1][: HEADER_BYTES + 10]
    with pytest.raises(MalformedFrame, match="every chunk but the last carries 64"):
        reassembler.feed(short)
    assert reassembler.buffered == CHUNK and reassembler.partial
    assert [reassembler.feed(f) for f in frames[1:]] == [None, None, payload]
    assert reassembler.buffered == 0 and not reassembler.partial


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, LIMIT), count=st.integers(1, 40), cut=st.integers(1, CHUNK))
def test_only_the_canonical_cut_is_accepted(total: int, count: int, cut: int) -> None:
    """A: frames of ``cut`` bytes declaring ``count`` chunks give the message only when
    that is exactly how encode_frames cuts it; otherwise a typed refusal."""
    payload = bytes(total)
    reassembler = Reassembler(LIMIT, CHUNK)
    views = [payload[i : i + cut] for i in range(0, total, cut)] or [b""]
    frames = [_HEADER.pack(1, 0, 0, 0, i, count, total) + v for i, v in enumerate(views)]
    canonical = frames == list(encode_frames(0, payload, CHUNK))
    try:
        results = [reassembler.feed(f) for f in frames]
    except MalformedFrame:
        assert not canonical
    else:
        assert canonical and results[-1] == payload


def test_a_partial_message_holds_about_its_payload_in_memory() -> None:
    """A: what the budget counts (``buffered``) is what a partial message costs: the
    chunks are copied into one buffer, not kept as one object each."""
    chunk, chunks = 64, 4000
    reassembler = Reassembler(chunk * (chunks + 1), chunk)
    total = chunk * (chunks + 1)
    frames = [
        _HEADER.pack(1, 0, 0, 0, i, chunks + 1, total) + bytes([i % 251]) * chunk
        for i in range(chunks)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for frame in frames:
            assert reassembler.feed(frame) is None
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert reassembler.buffered == chunk * chunks
    assert held <= 1.25 * reassembler.buffered + 4096
