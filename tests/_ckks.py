"""CKKS test helpers shared by tests/he and tests/aggregation.

What lives here lived in :mod:`secagg.he` while the server summed with TenSEAL, and
no production path needs it any more: clients encrypt with
:func:`secagg.he.chunks.encrypt_chunk`, the server adds residues, and the key holder
loads only the packed form. Tests use these to craft ciphertexts TenSEAL's own API
makes (another scale, a sum far beyond what honest clients could send) and to
exercise the checks of a version-1 envelope (TenSEAL's own payload), which every
production reader refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from secagg.he import chunks
from secagg.he.chunks import DecodedChunk, ciphertext_layout, decode_chunk
from secagg.he.envelope import VERSION_TENSEAL, ChunkHeader, ChunkKind, pack_packed_chunk
from secagg.he.errors import HEParameterError
from secagg.he.packing import _SCALE, CiphertextLayout, coefficients_from_seal, pack_coefficients

if TYPE_CHECKING:
    import tenseal as ts

    from secagg.he.context import BoundContext


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    raise HEParameterError("TenSEAL wrote a bad varint")


def coefficients_from_tenseal(payload: bytes, layout: CiphertextLayout) -> np.ndarray:
    """Residues (2, k, N) of a one-ciphertext CKKSVector this process's TenSEAL serialized.

    Every field is checked against ``layout``; a difference raises
    :class:`HEParameterError` (a local fault: another TenSEAL format, another scale).
    Moved here from :mod:`secagg.he.packing`: only tests read TenSEAL's serialization.
    """

    def fail(what: str) -> HEParameterError:
        return HEParameterError(f"TenSEAL's ciphertext does not match the context: {what}")

    if payload[:1] != b"\x0a":
        raise fail("no sizes field")
    packed_len, pos = _read_varint(payload, 1)
    if packed_len < 1 or pos + packed_len >= len(payload) or payload[pos + packed_len] != 0x12:
        raise fail("not exactly one ciphertext")
    _, size_end = _read_varint(payload, pos)
    if size_end != pos + packed_len:
        raise fail("more than one chunk")
    blob_len, start = _read_varint(payload, pos + packed_len + 1)
    blob, tail = payload[start : start + blob_len], payload[start + blob_len :]
    if len(tail) != 1 + _SCALE.size or tail[0] != 0x19:
        raise fail("unexpected fields after the ciphertext")
    if _SCALE.unpack(tail[1:])[0] != layout.scale:
        raise fail(f"vector scale {_SCALE.unpack(tail[1:])[0]!r}, context {layout.scale!r}")
    if len(blob) != blob_len:
        raise fail("truncated SEAL ciphertext")
    return coefficients_from_seal(blob, layout)


def encode_chunk(context: BoundContext, header: ChunkHeader, vector: ts.CKKSVector) -> bytes:
    """One packed envelope for a one-ciphertext TenSEAL vector.

    The receiver reads a version-3 envelope two values a slot, so a vector TenSEAL
    itself encrypted (real parts only, one value a slot) comes back interleaved with
    its zero imaginary parts. Raises :class:`~secagg.he.errors.HEParameterError` if
    TenSEAL's ciphertext does not match the context (another scale, another level).
    """
    layout = ciphertext_layout(context)
    coefficients = coefficients_from_tenseal(vector.serialize(), layout)
    return pack_packed_chunk(header, pack_coefficients(coefficients, layout))


def load_any_version(context: BoundContext, data: bytes, *, kind: ChunkKind) -> DecodedChunk:
    """:func:`~secagg.he.chunks.decode_chunk`, version-1 envelopes included.

    A version-1 payload is checked (:func:`~secagg.he.envelope.check_tenseal_payload`)
    and loaded by TenSEAL: what ``decode_chunk(..., accept_tenseal_payload=True)`` did
    before that option was removed (no production path passed it).
    """
    envelope, values = chunks._envelope(context, data, kind)
    if envelope.version == VERSION_TENSEAL:
        return DecodedChunk(envelope.header, chunks._load(context, envelope.payload, values), False)
    return decode_chunk(context, data, kind=kind)
