"""The server holds one copy of the model (and spec) at a round start, not one per branch.

Review finding (2026-12-06, the runtime's memory): every branch's round start was
encoded whole (its party index, then the model, then the deadline) and queued in that
branch's outbox until written, so a round start held n copies of the model (and of the
spec: a CKKS round's carries the key holder's public context, megabytes): O(n * d)
server memory, against the design's O(d) (DESIGN.md, "stream-sum ... memory O(d), not
O(n*d)"). 1 000 branches of a 10 MB model held 10 GB; a branch slow to read (a thin
link) kept its copy for as long as it took. Now the model is encoded once, and a
transport that sends a message in parts (gRPC's ``send_parts``) queues each branch's
start around the same model and spec bytes. The bytes on the wire are what they were.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import Announce
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import (
    RoundStart,
    decode_message,
    encode_message,
    round_start_model,
    round_start_parts,
)
from secagg.transport.framing import MessageParts, Reassembler, encode_frames

BRANCHES = 16
D = 250_000  # a model of 1 MB (float32)
#: a spec of 1 MB: a CKKS round's carries the key holder's public context, megabytes
SPEC = b"the round's spec" * 62_500


class _Holding:
    """A server transport whose messages stay queued, as gRPC's do for a branch that has
    not read them yet; with ``send_parts`` as the gRPC transport has it."""

    def __init__(self, names: list[str], parts: bool) -> None:
        self.names = names
        self.held: list[bytes | MessageParts] = []
        if parts:
            self.send_parts = lambda name, parts: self.held.append(MessageParts(parts))

    def send(self, name: str, payload: bytes) -> None:
        self.held.append(bytes(payload))

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        return None

    def connected(self) -> set[str]:
        return set(self.names)


def _held_at_round_start(tmp_path: Path, parts: bool) -> tuple[int, _Holding]:
    names = [f"branch-{i:02d}" for i in range(BRANCHES)]
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "mem", "clients": names, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
        }
    )
    transport = _Holding(names, parts)
    store = ServerStore(tmp_path / f"{'parts' if parts else 'joined'}.sqlite")
    server = FederationServer(config, transport, store, clock=lambda: 100.0)  # type: ignore[arg-type]
    server.model = np.linspace(-1.0, 1.0, D)
    server._round_end = server._clock() + 60.0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        server._dispatch(1, names, [Announce(SPEC)])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held, transport


def test_a_round_start_to_many_branches_holds_the_model_once(tmp_path: Path) -> None:
    held, transport = _held_at_round_start(tmp_path, parts=True)
    bulk = 4 * D + len(SPEC)
    assert len(transport.held) == BRANCHES
    assert held < 3 * bulk, (
        f"{held / 1e6:.1f} MB held for {BRANCHES} round starts of a {bulk / 1e6:.1f} MB model "
        "and spec"
    )
    # each branch's message is its own start: its party, the one model, the round's facts
    for party, message in enumerate(transport.held):
        assert isinstance(message, MessageParts)
        start = decode_message(message.join())
        assert isinstance(start, RoundStart) and start.party == party
        assert start.federation == "mem" and start.spec == SPEC
        np.testing.assert_array_equal(start.model, np.linspace(-1.0, 1.0, D).astype(np.float32))


def test_a_transport_without_parts_is_sent_the_same_bytes(tmp_path: Path) -> None:
    _, joined = _held_at_round_start(tmp_path, parts=False)
    _, parted = _held_at_round_start(tmp_path, parts=True)
    assert all(isinstance(m, bytes) for m in joined.held)
    assert joined.held == [m.join() for m in parted.held]  # type: ignore[union-attr]


_starts = st.builds(
    lambda number, party, spec, size, clip, deadline, federation: RoundStart(
        number,
        party,
        spec,
        np.linspace(-3.0, 3.0, size),
        clip,
        clip is not None,
        deadline,
        federation=federation,
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=64),
    st.integers(0, 300),
    st.none() | st.floats(0.01, 100.0),
    st.none() | st.floats(0.0, 3600.0),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
)


@settings(max_examples=100, deadline=None)
@given(start=_starts)
def test_a_round_start_in_parts_is_its_message(start: RoundStart) -> None:
    parts = round_start_parts(start, round_start_model(start.model))
    assert b"".join(parts) == encode_message(start)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=40), max_size=8),
    chunk=st.integers(1, 24),
    message_id=st.integers(0, 2**32),
)
def test_a_message_in_parts_is_framed_as_the_message_it_makes(
    parts: list[bytes], chunk: int, message_id: int
) -> None:
    whole = b"".join(parts)
    frames = list(encode_frames(message_id, MessageParts(parts), chunk))
    assert frames == list(encode_frames(message_id, whole, chunk))
    reassembler = Reassembler(max(len(whole), 1), chunk)  # a stream's first message: id 0
    got = [reassembler.feed(frame) for frame in encode_frames(0, MessageParts(parts), chunk)]
    assert got[-1] == whole and all(m is None for m in got[:-1])
