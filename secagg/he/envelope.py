"""The wire format of one CKKS ciphertext chunk, checked before any byte reaches TenSEAL.

Theory of operation
-------------------
A vector longer than one ciphertext's N values (two per complex slot,
:mod:`secagg.he.paired`) travels as ``count`` chunks. Each chunk is one envelope.
Version 3, the *packed* envelope, is what :mod:`secagg.he.vectors` writes::

    offset size  field
    0      4     magic b"SAHE"
    4      1     version (3)
    5      1     kind: 1 = one client's contribution, 2 = the server's aggregate
    6      8     context tag: the first 8 bytes of the context fingerprint
    14     4     vector length (values in the whole vector, >= 1)
    18     4     chunk index (< count = ceil(length / N))
    22     4     contributions (1 for a client's chunk; number of summands for an aggregate)
    26     ...   the ciphertext's residues bit-packed at the width of their primes
                 (:mod:`secagg.he.packing`): exactly 2 * N * sum(prime bits) / 8 bytes

All integers are big-endian. Nothing in a packed envelope is TenSEAL's or SEAL's
own format: the receiver checks the length and every residue against its
context, then builds the exact bytes TenSEAL writes (compression "none") around
them. The header is short because it is paid once per N values: the chunk
count follows from the length and N, the payload length from the
parameters, and the scale, parameter id and ring from the context. The tag
catches a chunk made under another context (another key or other parameters)
by mistake, with a false match of 2^-64; it is no authenticator (below), so the
full 32-byte fingerprint would add nothing against a sender who lies.

Version 2 had the same layout with one value per slot (N/2 a chunk), as TenSEAL
packs; it is refused by name, since reading its ciphertexts as two values a slot
would give a wrong sum. Version 1, the *TenSEAL* envelope (one value per slot),
is parsed here (its structure only) and refused by every production reader; only
the tests load one into TenSEAL (``tests/_ckks.py``, to exercise
:func:`check_tenseal_payload`) or write one (:func:`pack_chunk`)::

    offset size  field
    0      4     magic b"SAHE"
    4      1     version (1)
    5      1     kind
    6      2     reserved, zero
    8      32    context fingerprint: SHA-256 of the serialized public context
    40     8     vector length
    48     4     chunk index (< count)
    52     4     chunk count
    56     4     contributions
    60     4     payload length: must equal the bytes that follow
    64     ...   payload: TenSEAL's serialized CKKSVector (protobuf, no pickle)

TenSEAL trusts its own protobuf. A CKKSVector message whose list of chunk sizes
and list of ciphertexts have different lengths loads without complaint, then
*segfaults* on the first addition or decryption (found by fuzzing TenSEAL 0.3.18;
see tests/he/test_he.py). :func:`check_tenseal_payload` therefore accepts only the
exact layout TenSEAL itself writes for a one-ciphertext vector: one packed size,
one ciphertext, the expected scale, nothing else. It also checks the SEAL
serialization header inside (magic, header size, compression mode, declared
length). What is left to SEAL's own ``Ciphertext::load``, which TenSEAL calls
with validation, is the compressed body. SEAL checks the decompressed data
against the context (parameter id, sizes, every coefficient below its prime);
the caller then checks the loaded ciphertext's metadata. A packed envelope
leaves SEAL nothing of the sender's to parse but residues already checked.

Integrity: there is deliberately no MAC here. A MAC key shared by all clients
and the server would let any one of them forge another's chunk, so it adds
nothing that the fingerprint does not. Authenticating *who* sent a chunk is the
job of the layers that carry it: mTLS client certificates on the transport and
the protocol's signed messages. CKKS ciphertexts are malleable. A bit flip in
the residues (or the compressed body) that keeps every coefficient in range
decodes to a valid ciphertext of another value, and nothing at this layer can
detect it. TLS's AEAD detects it in transit. An authenticated but malicious
client could send any value anyway, which is why input bounds and differential
privacy, not ciphertext integrity, limit a single client's influence. What this
layer guarantees is that every structural fault, and every chunk made under
another context, raises a typed error before TenSEAL state changes.
"""

from __future__ import annotations

import enum
import hmac
import struct
from dataclasses import dataclass

from secagg.he.errors import MalformedCiphertext

MAGIC = b"SAHE"
#: Version 1: the envelope carries TenSEAL's serialized CKKSVector (still read).
VERSION_TENSEAL = 1
#: Version 2: bit-packed residues, one value per slot (written before 2026-12-05; refused).
VERSION_ONE_PER_SLOT = 2
#: Version 3: bit-packed residues, two values per slot (what this build writes).
VERSION_PACKED = 3
VERSION = VERSION_PACKED
_HEADER = struct.Struct(">4sBBH32sQIIII")
_PACKED_HEADER = struct.Struct(">4sBB8sIII")
#: Header of the envelope :mod:`secagg.he.vectors` writes (version 3).
HEADER_BYTES = _PACKED_HEADER.size
#: Header of a version-1 (TenSEAL payload) envelope.
TENSEAL_HEADER_BYTES = _HEADER.size
FINGERPRINT_BYTES = 32
#: Bytes of the fingerprint a packed envelope carries.
TAG_BYTES = 8
_MAX_U32 = 2**32 - 1

# SEAL serialization header (seal/serialization.h): 16 bytes, little-endian.
_SEAL_HEADER = struct.Struct("<HBBBBHQ")
_SEAL_MAGIC = 0xA15E
_SEAL_COMPR_MODES = frozenset({0, 1, 2})  # none, zlib, zstd


class ChunkKind(enum.IntEnum):
    CONTRIBUTION = 1
    AGGREGATE = 2


@dataclass(frozen=True)
class ChunkHeader:
    """Everything in an envelope except the ciphertext itself.

    ``fingerprint`` is the context's 32-byte fingerprint when writing. Read from a
    packed envelope it is the 8-byte tag the envelope carries; :meth:`names`
    compares either form with a context's fingerprint.
    """

    kind: ChunkKind
    fingerprint: bytes
    vector_length: int
    index: int
    count: int
    contributions: int

    def __post_init__(self) -> None:
        if len(self.fingerprint) not in (FINGERPRINT_BYTES, TAG_BYTES):
            raise ValueError(f"fingerprint must be {FINGERPRINT_BYTES} (or a {TAG_BYTES}-byte tag)")
        if not (1 <= self.vector_length < 2**64):
            raise ValueError("vector length out of range")
        if not (0 <= self.index < self.count <= _MAX_U32):
            raise ValueError("chunk index/count out of range")
        if not (1 <= self.contributions <= _MAX_U32):
            raise ValueError("contributions out of range")

    @property
    def tag(self) -> bytes:
        """The context fingerprint's first bytes, as the packed envelope carries them."""
        return self.fingerprint[:TAG_BYTES]

    def names(self, fingerprint: bytes) -> bool:
        """Whether this header names the context of ``fingerprint`` (32 bytes)."""
        return len(fingerprint) == FINGERPRINT_BYTES and (
            hmac.compare_digest(self.fingerprint, fingerprint[: len(self.fingerprint)])
        )


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: its version, header and (still unchecked) payload.

    A packed envelope's payload is a read-only view into the envelope's bytes; a
    version-1 payload is bytes (TenSEAL takes nothing else).
    """

    version: int
    header: ChunkHeader
    payload: bytes | memoryview


def pack_chunk(header: ChunkHeader, payload: bytes) -> bytes:
    """Frame TenSEAL's serialized CKKSVector as a version-1 envelope (tools and tests)."""
    if len(header.fingerprint) != FINGERPRINT_BYTES:
        raise ValueError("a version-1 envelope carries the full 32-byte fingerprint")
    if len(payload) > _MAX_U32:
        raise ValueError("payload too large for one envelope")
    return (
        _HEADER.pack(
            MAGIC,
            VERSION_TENSEAL,
            header.kind,
            0,
            header.fingerprint,
            header.vector_length,
            header.index,
            header.count,
            header.contributions,
            len(payload),
        )
        + payload
    )


def pack_packed_chunk(header: ChunkHeader, packed: bytes) -> bytes:
    """Frame bit-packed residues (:func:`secagg.he.packing.pack_coefficients`), version 3.

    The chunk count is not written: the receiver derives it from the length.
    """
    if header.vector_length > _MAX_U32:
        raise ValueError(f"a packed envelope carries vectors of at most {_MAX_U32} values")
    return (
        _PACKED_HEADER.pack(
            MAGIC,
            VERSION_PACKED,
            header.kind,
            header.tag,
            header.vector_length,
            header.index,
            header.contributions,
        )
        + packed
    )


def unpack_chunk(
    data: bytes, *, values_per_chunk: int, packed_bytes: int, max_payload: int
) -> Envelope:
    """Parse an envelope's structure; raises :class:`MalformedCiphertext` on any fault.

    ``values_per_chunk`` (N) and ``packed_bytes`` (the exact size of a packed
    ciphertext) come from the receiver's parameters; ``max_payload`` bounds a
    version-1 payload.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedCiphertext(f"an envelope is bytes, not {type(data).__name__}")
    # a flat view, not a copy: the header is unpacked into integers and the packed
    # residues are read once into arrays (secagg.he.packing), so the envelope's bytes
    # are never kept; copying each one cost an upload its size again at every add
    view = memoryview(data)
    flat = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
    if len(flat) < 6 or flat[:4] != MAGIC:
        raise MalformedCiphertext("not a secagg CKKS envelope (bad magic)")
    version = flat[4]
    if version == VERSION_PACKED:
        return _unpack_packed(flat, values_per_chunk=values_per_chunk, packed_bytes=packed_bytes)
    if version == VERSION_TENSEAL:
        return _unpack_tenseal(flat, max_payload=max_payload)
    if version == VERSION_ONE_PER_SLOT:
        raise MalformedCiphertext(
            "a version-2 envelope carries one value per slot (secagg before 2026-12-05); this "
            "build reads version 3, two values per slot: both sides must run the same version"
        )
    raise MalformedCiphertext(f"unsupported envelope version {version}")


def _header(kind: int, *fields: object) -> ChunkHeader:
    if kind not in {k.value for k in ChunkKind}:
        raise MalformedCiphertext("unknown chunk kind")
    try:
        return ChunkHeader(ChunkKind(kind), *fields)  # type: ignore[arg-type]
    except ValueError as exc:
        raise MalformedCiphertext(f"bad envelope header: {exc}") from None


def _unpack_packed(data: memoryview, *, values_per_chunk: int, packed_bytes: int) -> Envelope:
    if len(data) != HEADER_BYTES + packed_bytes:
        raise MalformedCiphertext(
            f"packed envelope of {len(data)} bytes; these parameters give exactly "
            f"{HEADER_BYTES + packed_bytes}"
        )
    _, _, kind, tag, length, index, contributions = _PACKED_HEADER.unpack_from(data)
    count = -(-length // values_per_chunk)
    header = _header(kind, tag, length, index, max(count, 1), contributions)
    # a view, not a copy: the residues are read once, and a vector's headers are all
    # checked before any is (secagg.he.chunks.read_vector), so copying every payload
    # first cost a refused upload its size again
    return Envelope(VERSION_PACKED, header, data[HEADER_BYTES:].toreadonly())


def _unpack_tenseal(data: memoryview, *, max_payload: int) -> Envelope:
    if len(data) < TENSEAL_HEADER_BYTES:
        raise MalformedCiphertext(f"envelope of {len(data)} bytes is shorter than its header")
    _, _, kind, reserved, fingerprint, length, index, count, contributions, size = (
        _HEADER.unpack_from(data)
    )
    if reserved != 0:
        raise MalformedCiphertext("non-zero reserved field")
    if size != len(data) - TENSEAL_HEADER_BYTES:
        raise MalformedCiphertext(
            f"payload length field says {size}, envelope carries {len(data) - TENSEAL_HEADER_BYTES}"
        )
    if not 0 < size <= max_payload:
        raise MalformedCiphertext(f"payload of {size} bytes outside (0, {max_payload}]")
    header = _header(kind, fingerprint, length, index, count, contributions)
    return Envelope(VERSION_TENSEAL, header, bytes(data[TENSEAL_HEADER_BYTES:]))


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a canonical (shortest) protobuf varint of at most 64 bits."""
    value = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >= 2**64 or (byte == 0 and i > pos):
                break
            return value, i + 1
        shift += 7
    raise MalformedCiphertext("bad varint in TenSEAL payload")


def check_tenseal_payload(
    payload: bytes, *, values: int, scale: float, max_ciphertext: int
) -> None:
    """Accept only TenSEAL's own layout of a one-ciphertext CKKSVector of ``values`` values.

    The layout is field 1 (packed sizes), then field 2 (the ciphertext), then
    field 3 (the scale), and nothing else.
    """
    if len(payload) < 2 or payload[0] != 0x0A:
        raise MalformedCiphertext("TenSEAL payload does not start with the sizes field")
    packed_len, pos = _varint(payload, 1)
    size, end = _varint(payload, pos)
    if end - pos != packed_len or size != values:
        raise MalformedCiphertext(f"TenSEAL payload must hold exactly one chunk of {values} values")
    if end >= len(payload) or payload[end] != 0x12:
        raise MalformedCiphertext("TenSEAL payload must hold exactly one ciphertext")
    ct_len, ct_start = _varint(payload, end + 1)
    ct_end = ct_start + ct_len
    if not 0 < ct_len <= max_ciphertext or ct_end + 9 != len(payload):
        raise MalformedCiphertext("TenSEAL ciphertext length inconsistent with the payload")
    tail = payload[ct_end:]
    if tail[0] != 0x19 or struct.unpack("<d", tail[1:])[0] != scale:
        raise MalformedCiphertext("TenSEAL payload scale differs from the context's")
    _check_seal_header(payload[ct_start:ct_end])


def _check_seal_header(blob: bytes) -> None:
    if len(blob) < _SEAL_HEADER.size:
        raise MalformedCiphertext("SEAL ciphertext shorter than its header")
    magic, header_size, _major, _minor, compr, reserved, size = _SEAL_HEADER.unpack_from(blob)
    if magic != _SEAL_MAGIC or header_size != _SEAL_HEADER.size or reserved != 0:
        raise MalformedCiphertext("bad SEAL serialization header")
    if compr not in _SEAL_COMPR_MODES:
        raise MalformedCiphertext(f"unknown SEAL compression mode {compr}")
    if size != len(blob):
        raise MalformedCiphertext("SEAL header length disagrees with the ciphertext's")
