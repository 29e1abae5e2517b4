"""The binary codec of a :class:`~secagg.aggregation.base.RoundSpec`.

Layout::

    magic "SASP" | version u8 | name length u8 | backend name (ASCII) | body

The body is the owning backend's (:meth:`RoundSpec.encode_body`), written with
:class:`Writer` and read back with :class:`Reader`: fixed-width little-endian
fields and length-prefixed byte strings, every length checked, trailing bytes
refused. Nothing is unpickled and no JSON is parsed: a spec from the wire is
either exactly what a backend wrote or a :class:`~secagg.errors.MalformedMessage`.

Totality. A spec arrives from the server, whom a branch trusts for availability
only, so decoding must never raise anything but ``MalformedMessage`` (review
findings H1 and L3): :class:`Reader` checks every length against the bytes present
and a per-field limit before slicing, and
:func:`~secagg.aggregation.registry.decode_spec` turns any other exception from a
backend's ``decode_body`` into ``MalformedMessage`` and caps a round's size at
:data:`MAX_SPEC_CLIENTS` clients and :data:`MAX_SPEC_DIMENSION` coordinates, so a
spec cannot make a branch allocate a neighbour graph or a vector of 2^32 entries.
"""

from __future__ import annotations

import math
import struct

from secagg.aggregation.base import RoundSpec
from secagg.errors import MalformedMessage

_MAGIC = b"SASP"
#: 2: a masking spec carries the population its round was drawn from (review of
#: colluders, 2026-12-07); a version-1 peer would size or check a sampled round for
#: its own colluders only, so the versions refuse each other's specs by name
_VERSION = 2
_HEAD = struct.Struct("<4sBB")
MAX_FIELD_BYTES = 16 * 1024 * 1024  # a CKKS public context is a few MB at most
#: Ceilings on any decoded round, far above real federations (hundreds of branches, models of
#: a few hundred million parameters), low enough that what a round allocates per client or
#: per coordinate stays bounded. A branch's own policy may (and should) be stricter.
MAX_SPEC_CLIENTS = 1_000_000
MAX_SPEC_DIMENSION = 1 << 29  # a float32 model of 2 GiB: the largest a RoundStart carries


def encode_spec(spec: RoundSpec) -> bytes:
    name = spec.name.encode("ascii")
    return _HEAD.pack(_MAGIC, _VERSION, len(name)) + name + spec.encode_body()


def read_header(data: bytes) -> tuple[str, bytes]:
    """(backend name, body) of an encoded spec."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"a round spec is bytes, not {type(data).__name__}")
    view = bytes(data)
    if len(view) < _HEAD.size:
        raise MalformedMessage("round spec shorter than its header")
    magic, version, length = _HEAD.unpack_from(view)
    if magic != _MAGIC:
        raise MalformedMessage("not a round spec of a known version")
    if version != _VERSION:
        raise MalformedMessage(
            f"a round spec of version {version}; this build reads version {_VERSION} "
            "only (the server and this party run different releases: upgrade the older)"
        )
    end = _HEAD.size + length
    if len(view) < end:
        raise MalformedMessage("round spec truncated in its backend name")
    try:
        name = view[_HEAD.size : end].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMessage("round spec names its backend in non-ASCII") from None
    return name, view[end:]


class Writer:
    """Fields of a spec body, in order."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(struct.pack("<B", value))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(struct.pack("<I", value))
        return self

    def f64(self, value: float) -> Writer:
        self._parts.append(struct.pack("<d", value))
        return self

    def blob(self, value: bytes) -> Writer:
        self._parts.append(struct.pack("<I", len(value)) + value)
        return self

    def text(self, value: str) -> Writer:
        return self.blob(value.encode("ascii"))

    def bytes(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads what a :class:`Writer` wrote; any mismatch is a MalformedMessage."""

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedMessage(f"{what} is bytes, not {type(data).__name__}")
        self._data = bytes(data)
        self._offset = 0
        self._what = what

    def _take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise MalformedMessage(f"{self._what} truncated")
        chunk, self._offset = self._data[self._offset : end], end
        return chunk

    def u8(self) -> int:
        return int(struct.unpack("<B", self._take(1))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self._take(4))[0])

    def f64(self, *, positive: bool = False) -> float:
        value = float(struct.unpack("<d", self._take(8))[0])
        if not math.isfinite(value) or (positive and value <= 0):
            raise MalformedMessage(f"{self._what} holds an invalid number {value!r}")
        return value

    def f64_raw(self) -> float:
        """A float as written, NaN and infinities included (the caller checks)."""
        return float(struct.unpack("<d", self._take(8))[0])

    @property
    def offset(self) -> int:
        """Bytes read so far."""
        return self._offset

    @property
    def remaining(self) -> int:
        """Bytes not read yet: what a count field may claim at most, checked before a loop."""
        return len(self._data) - self._offset

    def blob(self, limit: int = MAX_FIELD_BYTES) -> bytes:
        size = self.u32()
        if size > limit:
            raise MalformedMessage(f"{self._what} field of {size} bytes is too long")
        return self._take(size)

    def text(self, limit: int = 64) -> str:
        try:
            return self.blob(limit).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedMessage(f"{self._what} holds non-ASCII text") from None

    def end(self) -> None:
        if self._offset != len(self._data):
            raise MalformedMessage(f"trailing bytes after the {self._what}")
