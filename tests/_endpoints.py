"""Test helpers: the ends of the wire that keep what crosses them.

:class:`SentMessages` is a branch's end, for the runtime tests that drive a
:class:`~secagg.runtime.client.FederationClient` message by message (no server): each
inspects the decoded messages the branch sent. :class:`RecordingHub` is the in-process
transport with the server's inbox kept, for the tests that check what reached it.
:func:`version_2_round_start` is what an older server sends a branch.
"""

from __future__ import annotations

import struct

import numpy as np

from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.spec import Writer, encode_spec
from secagg.runtime.wire import decode_message
from secagg.transport.inprocess import InProcessHub


class SentMessages:
    """A branch's transport that decodes and keeps what the branch sends and never
    receives anything (the test hands the branch its messages with ``handle``)."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, payload: bytes) -> None:
        self.sent.append(decode_message(payload))

    def receive(self, timeout: float | None) -> bytes | None:
        return None


class RecordingHub(InProcessHub):
    """The in-process transport, keeping every (party, payload) the server received."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, bytes]] = []

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None:
            self.received.append(item)
        return item


def version_2_round_start(number: int, dimension: int) -> bytes:
    """A round start as a server of an older secagg sends it: wire version 2, which
    names no federation (a masking round of 3 parties and a zero model)."""
    spec = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, dimension))
    model = np.zeros(dimension, "<f4").tobytes()
    body = Writer().u32(0).f64(1.0).u8(0).blob(spec).blob(model)
    return struct.pack("<4sBBI", b"SAFD", 2, 1, number) + body.bytes()
