"""The runtime's envelope around protocol messages: round start, protocol, round end.

Every transport carries opaque bytes; this is what they mean between a
federation server and its clients. Layout::

    magic "SAFD" | version u8 | kind u8 | round u32 | header length u32 | header | body

``header`` is a small JSON object (round parameters, outcome); ``body`` is raw
bytes (the global model as little-endian float64, or one protocol message in
the protocol's own codec). JSON and raw arrays only: nothing from the wire is
unpickled. Lengths are checked exactly; anything else raises
:class:`~secagg.errors.MalformedMessage`.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secagg.errors import MalformedMessage

_MAGIC = b"SAFD"
_VERSION = 1
_HEAD = struct.Struct("<4sBBII")
MAX_HEADER_BYTES = 64 * 1024


class Kind(enum.IntEnum):
    ROUND_START = 1  # server -> client: header = round parameters, body = global model
    PROTOCOL = 2  # both ways: body = one masking-protocol message (or a plain contribution)
    ROUND_END = 3  # server -> client: header = outcome
    KEY_REQUEST = 4  # server -> key holder: header = CKKS design point
    KEY_PUBLIC = 5  # key holder -> server: body = public context (no secret key)
    DECRYPT = 6  # server -> key holder: body = the encrypted sum, header = noise std
    DECRYPTED = 7  # key holder -> server: body = the noised sum (float64)


@dataclass(frozen=True)
class Envelope:
    kind: Kind
    round: int
    header: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    def encode(self) -> bytes:
        header = json.dumps(self.header, separators=(",", ":")).encode()
        return _HEAD.pack(_MAGIC, _VERSION, self.kind, self.round, len(header)) + header + self.body

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        if len(data) < _HEAD.size:
            raise MalformedMessage("runtime envelope shorter than its header")
        magic, version, kind, number, length = _HEAD.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise MalformedMessage("not a runtime envelope of a known version")
        if kind not in Kind.__members__.values():
            raise MalformedMessage(f"unknown envelope kind {kind}")
        if length > MAX_HEADER_BYTES or _HEAD.size + length > len(data):
            raise MalformedMessage("envelope header length out of range")
        try:
            header = json.loads(data[_HEAD.size : _HEAD.size + length])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedMessage(f"envelope header is not JSON: {exc}") from None
        if not isinstance(header, dict):
            raise MalformedMessage("envelope header must be a JSON object")
        return cls(Kind(kind), number, header, bytes(data[_HEAD.size + length :]))


def model_bytes(model: np.ndarray) -> bytes:
    return np.ascontiguousarray(model, dtype="<f8").tobytes()


def model_from_bytes(body: bytes, dimension: int) -> np.ndarray:
    if len(body) != 8 * dimension:
        raise MalformedMessage(f"model of {len(body)} bytes, expected {8 * dimension}")
    model = np.frombuffer(body, dtype="<f8").copy()
    if not np.all(np.isfinite(model)):
        raise MalformedMessage("model holds NaN or infinite values")
    return model
