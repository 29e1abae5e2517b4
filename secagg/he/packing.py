"""Ciphertext coefficients bit-packed at the width of their primes, and back.

Theory of operation
-------------------
A fresh (or summed) ciphertext at the data level is two polynomials of N
coefficients in RNS form: for each data prime q_j, N residues below q_j. SEAL
stores them as a flat array of 64-bit words ordered polynomial, prime,
coefficient, and TenSEAL ships that array zstd-compressed inside SEAL's
serialization, inside TenSEAL's protobuf. zstd only squeezes the zero high bytes
of each word, so it ends at about 0.58 bytes per bit of q per value; the
residues themselves are uniform and incompressible.

The packed form is that array and nothing else: for polynomial 0 and 1, for
each data prime q_j (of b_j bits), its N residues at exactly b_j bits each,
least significant bit first, in little-endian bit order. N is a multiple of 8,
so every run of one polynomial and one prime fills whole bytes, and the size is
2 * N * sum(b_j) / 8 bytes, which is 2 * sum(b_j) / 8 bytes per real value
(N values, two in each of the N/2 complex slots: :mod:`secagg.he.paired`).
Everything else SEAL writes (parameter id, NTT form, size, ring degree, number
of primes, scale, correction factor) is fixed by the context and is rebuilt by
the receiver from its own context, never read from the wire.

Both directions, and who trusts what:

* :func:`coefficients_from_seal` reads what *this process's* SEAL just saved (a
  client's encryption, :mod:`secagg.he.paired`). It checks every field against the
  context anyway, including the scale, and raises :class:`HEParameterError` on a
  difference: that is a SEAL format change or a ciphertext made at another scale,
  a local fault, never a peer's. (Reading TenSEAL's own serialized vector the same
  way is a test helper, ``tests/_ckks.py``: no production path packs a TenSEAL
  vector since the server adds residues itself.)
* :func:`unpack_coefficients` reads untrusted wire bytes. The length must be
  exact and every residue below its prime, or it raises
  :class:`MalformedCiphertext`. :func:`tenseal_payload` then writes the exact
  bytes TenSEAL itself writes for a one-ciphertext vector, with SEAL's
  compression mode "none", so TenSEAL never parses a byte that came off the
  wire: it parses a structure this module built, around residues already
  checked. SEAL validates them once more when it loads.

This module needs numpy and zstd (the standard library's ``compression.zstd``
from Python 3.14, its backport before), not TenSEAL: the caller passes the
context's facts in a :class:`CiphertextLayout`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

try:
    from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    except ImportError as exc:
        raise ImportError("secagg.he needs zstd: pip install 'secagg[he]'") from exc

from secagg.he.errors import HEParameterError, MalformedCiphertext

#: SEAL's serialization header (seal/serialization.h): magic, header size, version
#: major and minor, compression mode, reserved, total size; little-endian.
SEAL_HEADER = struct.Struct("<HBBBBHQ")
SEAL_MAGIC = 0xA15E
COMPR_NONE, COMPR_ZLIB, COMPR_ZSTD = 0, 1, 2
# Ciphertext::save_members before the coefficient array: parms_id, is_ntt_form,
# size, poly_modulus_degree, coeff_modulus_size, scale, correction_factor.
_MEMBERS = struct.Struct("<32sBQQQdQ")
_COUNT = struct.Struct("<Q")  # DynArray::save_members: element count, then the words
_SCALE = struct.Struct("<d")
_CORRECTION_FACTOR = 1  # CKKS never sets it (it is BGV's)
_POLYS = 2  # a fresh or summed ciphertext: (c0, c1)
_MAX_WIDTH = 60  # SEAL's largest prime


@dataclass(frozen=True)
class CiphertextLayout:
    """What a context fixes about its data-level ciphertexts (all public).

    ``primes`` are the data primes in SEAL's order, ``parms_id`` the 32 bytes of
    the first data level's parameter id, ``seal_version`` the (major, minor)
    SEAL writes in its headers.
    """

    poly_modulus_degree: int
    primes: tuple[int, ...]
    parms_id: bytes
    scale: float
    seal_version: tuple[int, int]

    def __post_init__(self) -> None:
        n = self.poly_modulus_degree
        if n < 8 or n & (n - 1):
            raise HEParameterError(f"ring degree {n} is not a power of two >= 8")
        if not self.primes or any(not 2 <= q.bit_length() <= _MAX_WIDTH for q in self.primes):
            raise HEParameterError("data primes must have 2 to 60 bits")
        if len(self.parms_id) != 32:
            raise HEParameterError("a SEAL parms_id is 32 bytes")

    @property
    def slots(self) -> int:
        """Complex slots of one ciphertext (N/2; each carries two values, secagg.he.paired)."""
        return self.poly_modulus_degree // 2

    @cached_property
    def widths(self) -> tuple[int, ...]:
        """Bits per residue for each prime: the prime's own bit length."""
        return tuple(q.bit_length() for q in self.primes)

    @cached_property
    def words(self) -> int:
        """64-bit words SEAL stores for one ciphertext: 2 * k * N."""
        return _POLYS * len(self.primes) * self.poly_modulus_degree

    @cached_property
    def packed_bytes(self) -> int:
        """Exact size of the packed form: 2 * N * sum(widths) / 8."""
        return _POLYS * self.poly_modulus_degree * sum(self.widths) // 8

    @cached_property
    def _members(self) -> bytes:
        return _MEMBERS.pack(
            self.parms_id,
            1,  # NTT form: CKKS ciphertexts always are
            _POLYS,
            self.poly_modulus_degree,
            len(self.primes),
            self.scale,
            _CORRECTION_FACTOR,
        )


# --- bit packing --------------------------------------------------------------------


def _pack_run(values: np.ndarray, width: int) -> bytes:
    """``values`` (uint64, length a multiple of 8, each < 2^width) at ``width`` bits each.

    Eight values make exactly ``width`` bytes; within such a group, value r starts
    at bit r * width and spans at most two 64-bit words (width <= 64).
    """
    groups = values.reshape(-1, 8)
    words = np.zeros((groups.shape[0], -(-width // 8)), dtype="<u8")
    for r in range(8):
        start = r * width
        word, shift = divmod(start, 64)
        column = groups[:, r]
        words[:, word] |= column << np.uint64(shift)
        if shift + width > 64:
            words[:, word + 1] |= column >> np.uint64(64 - shift)
    return words.view(np.uint8)[:, :width].tobytes()


def _unpack_run(data: bytes | memoryview, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`_pack_run`: ``count`` values of ``width`` bits each."""
    groups = count // 8
    padded = np.zeros((groups, 8 * -(-width // 8)), dtype=np.uint8)
    padded[:, :width] = np.frombuffer(data, dtype=np.uint8).reshape(groups, width)
    words = padded.view("<u8")
    out = np.empty((groups, 8), dtype=np.uint64)
    mask = np.uint64((1 << width) - 1)
    for r in range(8):
        start = r * width
        word, shift = divmod(start, 64)
        column = words[:, word] >> np.uint64(shift)
        if shift + width > 64:
            column |= words[:, word + 1] << np.uint64(64 - shift)
        out[:, r] = column & mask
    return out.reshape(count)


def _prime_array(layout: CiphertextLayout) -> np.ndarray:
    """The data primes shaped to broadcast over (polynomial, prime, coefficient) residues."""
    return np.array(layout.primes, dtype=np.uint64)[None, :, None]


def pack_coefficients(coefficients: np.ndarray, layout: CiphertextLayout) -> bytes:
    """The packed form of a (2, k, N) array of residues; each must lie below its prime."""
    k, n = len(layout.primes), layout.poly_modulus_degree
    coefficients = np.ascontiguousarray(coefficients, dtype=np.uint64)
    if coefficients.shape != (_POLYS, k, n):
        raise ValueError(f"expected residues of shape {(_POLYS, k, n)}, got {coefficients.shape}")
    if np.any(coefficients >= _prime_array(layout)):
        raise ValueError("a residue is not below its prime")
    if len(set(layout.widths)) == 1:  # one width (always, with one prime): one pass
        return _pack_run(coefficients.reshape(-1), layout.widths[0])
    return b"".join(
        _pack_run(coefficients[p, j, :], width)
        for p in range(_POLYS)
        for j, width in enumerate(layout.widths)
    )


def unpack_coefficients(data: bytes | memoryview, layout: CiphertextLayout) -> np.ndarray:
    """Residues of shape (2, k, N) from untrusted packed bytes.

    Raises :class:`MalformedCiphertext` unless the length is exact and every
    residue lies below its prime.
    """
    if len(data) != layout.packed_bytes:
        raise MalformedCiphertext(
            f"packed ciphertext of {len(data)} bytes; these parameters give exactly "
            f"{layout.packed_bytes}"
        )
    k, n = len(layout.primes), layout.poly_modulus_degree
    if len(set(layout.widths)) == 1:
        out = _unpack_run(data, layout.widths[0], layout.words).reshape(_POLYS, k, n)
    else:
        out = np.empty((_POLYS, k, n), dtype=np.uint64)
        offset = 0
        for p in range(_POLYS):
            for j, width in enumerate(layout.widths):
                size = n * width // 8
                out[p, j, :] = _unpack_run(data[offset : offset + size], width, n)
                offset += size
    if np.any(out >= _prime_array(layout)):
        raise MalformedCiphertext("a residue is not below its prime")
    return out


# --- SEAL and TenSEAL serializations ------------------------------------------------


def add_residues_into(total: np.ndarray, addend: np.ndarray, layout: CiphertextLayout) -> None:
    """``total`` := ``total + addend`` modulo each residue's prime, in place.

    This is SEAL's ciphertext addition (``add_poly_coeffmod`` on every polynomial and
    prime; the scale, level and NTT form of fresh ciphertexts of one context agree), so
    the server adds checked residues without handing a peer's bytes to TenSEAL. Arrays
    are (..., 2, k, N) with every residue below its prime (< 2^60), so the sum fits 64 bits;
    ``total`` may be uint32 when every prime is below 2^31 (the sum then fits 32 bits, and
    numpy casts the uint64 operands into it exactly).
    """
    primes = _prime_array(layout).reshape(len(layout.primes), 1)
    np.add(total, addend, out=total)
    np.subtract(total, primes, out=total, where=total >= primes)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def seal_ciphertext(coefficients: np.ndarray, layout: CiphertextLayout) -> bytes:
    """SEAL's own serialization of the ciphertext, compression mode "none"."""
    array = np.ascontiguousarray(coefficients, dtype="<u8").tobytes()
    major, minor = layout.seal_version
    inner = SEAL_HEADER.pack(
        SEAL_MAGIC, SEAL_HEADER.size, major, minor, COMPR_NONE, 0,
        SEAL_HEADER.size + _COUNT.size + len(array),
    )  # fmt: skip
    members = layout._members + inner + _COUNT.pack(layout.words) + array
    outer = SEAL_HEADER.pack(
        SEAL_MAGIC, SEAL_HEADER.size, major, minor, COMPR_NONE, 0,
        SEAL_HEADER.size + len(members),
    )  # fmt: skip
    return outer + members


def tenseal_payload(coefficients: np.ndarray, layout: CiphertextLayout, values: int) -> bytes:
    """The bytes TenSEAL writes for a one-ciphertext CKKSVector of ``values`` values.

    Field 1 (packed sizes: one), field 2 (the SEAL ciphertext), field 3 (scale).
    """
    sizes = _varint(values)
    blob = seal_ciphertext(coefficients, layout)
    return (
        b"\x0a"
        + _varint(len(sizes))
        + sizes
        + b"\x12"
        + _varint(len(blob))
        + blob
        + b"\x19"
        + _SCALE.pack(layout.scale)
    )


def coefficients_from_seal(blob: bytes, layout: CiphertextLayout) -> np.ndarray:
    """Residues (2, k, N) of a ciphertext this process's SEAL saved (``Ciphertext.save``).

    Every field is checked against ``layout``; a difference raises
    :class:`HEParameterError` (a local fault: another SEAL format, another scale).
    """

    def fail(what: str) -> HEParameterError:
        return HEParameterError(f"SEAL's ciphertext does not match the context: {what}")

    if len(blob) < SEAL_HEADER.size:
        raise fail("truncated SEAL ciphertext")
    magic, header_size, _major, _minor, compr, reserved, size = SEAL_HEADER.unpack_from(blob)
    if (magic, header_size, reserved, size) != (SEAL_MAGIC, SEAL_HEADER.size, 0, len(blob)):
        raise fail("bad SEAL header")
    expected = _MEMBERS.size + SEAL_HEADER.size + _COUNT.size + 8 * layout.words
    body = blob[SEAL_HEADER.size :]
    if compr == COMPR_ZSTD:
        decompressor = zstd.ZstdDecompressor()
        raw = decompressor.decompress(body, max_length=expected + 1)
        if not decompressor.eof:
            raise fail("zstd body longer than a ciphertext or truncated")
    elif compr == COMPR_NONE:
        raw = body
    else:
        raise fail(f"unknown compression mode {compr}")
    if len(raw) != expected:
        raise fail(f"{len(raw)} bytes of members, expected {expected}")
    if raw[: _MEMBERS.size] != layout._members:
        raise fail("parameter id, NTT form, size, ring, primes, scale or correction factor")
    magic, header_size, _major, _minor, compr, reserved, size = SEAL_HEADER.unpack_from(
        raw, _MEMBERS.size
    )
    if (magic, header_size, compr, reserved, size) != (
        SEAL_MAGIC,
        SEAL_HEADER.size,
        COMPR_NONE,
        0,
        SEAL_HEADER.size + _COUNT.size + 8 * layout.words,
    ) or _COUNT.unpack_from(raw, _MEMBERS.size + SEAL_HEADER.size)[0] != layout.words:
        raise fail("bad coefficient array header")
    array = np.frombuffer(raw, dtype="<u8", offset=expected - 8 * layout.words)
    coefficients = array.astype(np.uint64).reshape(
        _POLYS, len(layout.primes), layout.poly_modulus_degree
    )
    for j, q in enumerate(layout.primes):
        if np.any(coefficients[:, j, :] >= np.uint64(q)):
            raise fail(f"a residue is not below the prime {q}")
    return coefficients
