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

import struct
import tempfile
from pathlib import Path
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
    from secagg.he.params import CKKSParameters


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


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _saved(obj: object) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "blob")
        obj.save(path)  # type: ignore[attr-defined]
        return Path(path).read_bytes()


def crafted_public_context(params: CKKSParameters, primes: list[int], scale: float) -> bytes:
    """A public TenSEAL context (TenSEALContextProto, written field by field) of
    ``params``' ring over a SEAL context of exactly ``primes``, with a public key of its
    own: what a hostile key holder can publish, and no TenSEAL API builds (TenSEAL
    takes bit sizes and SEAL picks the primes)."""
    import tenseal.sealapi as sealapi

    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(params.poly_modulus_degree)
    parms.set_coeff_modulus([sealapi.Modulus(q) for q in primes])
    seal = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    if not seal.parameters_set():
        raise ValueError(f"SEAL refuses the primes {primes}")
    key = sealapi.PublicKey()
    sealapi.KeyGenerator(seal).create_public_key(key)
    flags = _varint(2 << 3) + _varint(7)  # TenSEAL's auto relin, rescale, mod switch
    public = _field(1, _saved(key)) + flags + _varint(3 << 3 | 1) + struct.pack("<d", scale)
    return _field(1, _saved(parms)) + _field(2, public)


def seal_primes(params: CKKSParameters) -> list[int]:
    """The primes SEAL (and so TenSEAL) builds for ``params``: data primes, then special."""
    import tenseal.sealapi as sealapi

    sizes = list(params.coeff_mod_bit_sizes)
    return [m.value() for m in sealapi.CoeffModulus.Create(params.poly_modulus_degree, sizes)]


def other_data_primes(params: CKKSParameters) -> list[int]:
    """For a design point of one data prime: another prime of the data prime's size
    (SEAL's next one down), then SEAL's special prime."""
    import tenseal.sealapi as sealapi

    degree, sizes = params.poly_modulus_degree, list(params.coeff_mod_bit_sizes)
    if len(sizes) != 2:
        raise ValueError("one data prime and the special prime expected")
    seal = seal_primes(params)
    two = [m.value() for m in sealapi.CoeffModulus.Create(degree, [sizes[0], *sizes])]
    return [next(q for q in two[:2] if q != seal[0]), seal[1]]
