"""Encrypt vectors of any length, add them on the server, and decrypt only the sum.

Theory of operation
-------------------
A client splits its vector into ``ceil(d / N)`` chunks of N values, two per
complex slot (:mod:`secagg.he.paired`). The last chunk may be shorter: the
encoder zero-pads the slots it does not use, and the chunk's true length
follows from the vector length. Each chunk is encrypted under the public key as
one ciphertext (two polynomials at the context's first data level and scale),
whose residues travel bit-packed (:mod:`secagg.he.packing`) in an envelope
(:mod:`secagg.he.envelope`) that names the context (by a tag of its
fingerprint), the vector length, the chunk's index and the contributions.

The server keeps one running :class:`EncryptedSum` and takes uploads one client
at a time. It first checks *all* of a client's chunks, cheapest first (the
exact length of each packed chunk, then the headers: fingerprint tag, the
announced dimension, every index present exactly once; then every residue below
its prime), then adds the residues in place, modulo their primes, which is
SEAL's own ciphertext addition: no byte a client sent reaches TenSEAL or SEAL on
the server, nor does the key holder's public context, which the server holds
unparsed (:class:`~secagg.he.context.OpaquePublicContext`). So a bad upload is refused
whole and the running sum is untouched. Memory is one client's ciphertexts plus
the sum. Adding never needs a key. The sum of n ciphertexts is handed to the
key holder as *aggregate* envelopes that carry n, and the key holder decrypts
those only (:func:`decrypt_aggregate`), loading them into TenSEAL from bytes it
builds around the checked residues.

Values are checked against the parameters' ``value_bound`` before encryption,
and the server refuses more than ``num_clients`` contributions. Past either
limit, CKKS would wrap or lose precision silently.

The checked decoding and :func:`decrypt_aggregate` live in
:mod:`secagg.he.chunks` (so that the key holder's roles can use them without
importing this module) and are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from secagg.errors import ConfigurationError, RoundAborted
from secagg.he.chunks import (
    DecodedChunk,
    chunk_count,
    ciphertext_layout,
    decode_chunk,
    decrypt_aggregate,
    encrypt_chunk,
    read_vector,
)
from secagg.he.context import OpaquePublicContext, PublicAggregationContext
from secagg.he.envelope import HEADER_BYTES, ChunkHeader, ChunkKind, pack_packed_chunk
from secagg.he.errors import BoundExceeded, TooManyContributions
from secagg.he.packing import add_residues_into, pack_coefficients

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import ArrayLike

    from secagg.he.context import BoundContext

_MAX_LENGTH = 2**32 - 1  # a packed envelope's length field
#: numpy dtype kinds encrypt_vector takes: bool, signed and unsigned integers, floats
_REAL_KINDS = frozenset("biuf")


def encrypt_vector(context: BoundContext, values: ArrayLike) -> list[bytes]:
    """Encrypt one client's vector into its list of contribution envelopes.

    ``context`` is a :class:`~secagg.he.context.PublicAggregationContext` (key-holder
    mode) or a :class:`~secagg.he.keys.SharedKeyClient` (every-client mode).
    Raises :class:`BoundExceeded` for a non-finite value or one outside
    [-value_bound, value_bound], and ``ValueError`` for an empty or
    multi-dimensional input or one that is not real numbers (bool, integer or
    float): casting a complex input to float64 would keep only its real parts,
    with nothing but a warning, and numpy would parse strings as numbers.
    """
    params = context.params
    raw = np.asarray(values)
    if raw.dtype.kind not in _REAL_KINDS:
        raise ValueError(f"expected real numbers, got an array of dtype {raw.dtype}")
    x = raw.astype(np.float64, copy=False)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty 1-D vector, got shape {x.shape}")
    if x.size > _MAX_LENGTH:
        raise ValueError(f"a vector has at most {_MAX_LENGTH} values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise BoundExceeded("vector contains a non-finite value")
    peak = float(np.max(np.abs(x)))
    if peak > params.value_bound:
        raise BoundExceeded(
            f"a coordinate of magnitude {peak:.6g} exceeds the bound {params.value_bound:.6g} "
            "the CKKS parameters were chosen for"
        )
    per_chunk = params.values_per_ciphertext
    count = chunk_count(x.size, per_chunk)
    envelopes = []
    for index in range(count):
        chunk = x[index * per_chunk : (index + 1) * per_chunk]
        header = ChunkHeader(
            ChunkKind.CONTRIBUTION, context.fingerprint, x.size, index, count, contributions=1
        )
        envelopes.append(encrypt_chunk(context, header, chunk))
    return envelopes


class EncryptedSum:
    """The server's running encrypted sum, fed one client upload at a time.

    Built from a public context only, so the object that holds the sum can never
    decrypt it: the server's :class:`~secagg.he.context.OpaquePublicContext` (the key
    holder's blob, never parsed, with the round's own parameters) or a parsed
    :class:`~secagg.he.context.PublicAggregationContext` (tools and tests). The sum is
    kept as residues and added modulo each prime here
    (:func:`~secagg.he.packing.add_residues_into`, SEAL's own ciphertext addition), so a
    client's bytes are checked and added without TenSEAL or SEAL parsing any of them,
    and without a C++ call per chunk.

    Memory: the running sum is (chunks, 2, k, N) residues of 8 bytes, 16 * k bytes per
    value (k data primes, two polynomials, N values a ciphertext), plus one upload's
    checked residues (16 * k bytes per value again) while it is added. When every prime
    has at most 31 bits, the sum of two residues below them fits 32 bits before it is
    reduced, so the running sum is held as uint32 instead, 8 * k bytes per value: the
    chooser picks such primes for large rounds (two primes of 31 and 30 or 31 bits from
    about 10^5 clients at the default precision; 32 B a value held before, 16 now) and
    for coarse precisions (27 bits for n = 2 at 1e-3); below them it picks 36 to 57
    bits, which need uint64.
    """

    def __init__(
        self, context: PublicAggregationContext | OpaquePublicContext, dimension: int
    ) -> None:
        if (
            not isinstance(context, PublicAggregationContext | OpaquePublicContext)
            or context.is_private()
        ):
            raise ConfigurationError("the server aggregates with the public context only")
        # a bool is an int to Python, and a length past the envelope's 32-bit field could
        # never be uploaded: both built a sum that refused every upload later
        if (
            isinstance(dimension, bool)
            or not isinstance(dimension, int)
            or not 1 <= dimension <= _MAX_LENGTH
        ):
            raise ConfigurationError(
                f"dimension must be an integer in [1, {_MAX_LENGTH}], got {dimension!r}"
            )
        self._context = context
        self._dimension = dimension
        self._layout = ciphertext_layout(context)
        # residues < q < 2^31: the sum of two fits uint32 before add_residues_into reduces it
        self._narrow = max(self._layout.primes) < 2**31
        self._sum: np.ndarray | None = None  # (chunks, 2, k, N) residues
        self._contributions = 0
        self._broken = False

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def residue_dtype(self) -> np.dtype:
        """What the running sum holds each residue in: uint32 below 31-bit primes."""
        return np.dtype(np.uint32 if self._narrow else np.uint64)

    @property
    def contributions(self) -> int:
        """How many client vectors the sum holds."""
        return self._contributions

    def add(self, chunks: Sequence[bytes]) -> None:
        """Add one client's upload in place, or refuse it whole and leave the sum unchanged."""
        if self._broken:
            raise RoundAborted("an earlier in-place addition failed", phase="he-aggregate")
        if self._contributions >= self._context.params.num_clients:
            # one upload too many is a message to refuse, not a configuration fault
            raise TooManyContributions(
                f"the parameters allow at most {self._context.params.num_clients} contributions"
            )
        checked, _ = read_vector(
            self._context, chunks, kind=ChunkKind.CONTRIBUTION, dimension=self._dimension
        )
        if self._sum is None:
            shape = (len(checked), *checked[0].residues.shape)
            self._sum = np.empty(shape, self.residue_dtype)
            for index, chunk in enumerate(checked):
                self._sum[index] = chunk.residues  # each below its prime: exact in the dtype
        else:
            # chunk by chunk into the sum: stacking the upload first held its residues
            # twice (16 * k more bytes per value at the peak of every add)
            try:
                for index, chunk in enumerate(checked):
                    add_residues_into(self._sum[index], chunk.residues, self._layout)
            except Exception as exc:  # checked above: only memory can fail here
                self._broken = True
                raise RoundAborted(
                    f"in-place ciphertext addition failed: {exc}", phase="he-aggregate"
                ) from None
        self._contributions += 1

    def to_chunks(self) -> list[bytes]:
        """The sum as aggregate envelopes for the key holder."""
        return list(self.iter_chunks())

    def iter_chunks(self) -> Iterator[bytes]:
        """The aggregate envelopes one at a time, each packed when it is asked for.

        Why: the server frames them straight into its decryption request
        (:func:`secagg.aggregation.ckks.decryption_request`), so only one envelope is
        held besides the request; a list of them all held the aggregate's size once
        more at the peak. The sum is checked intact before the first one is made.
        """
        if self._broken or self._sum is None:
            raise RoundAborted("no intact sum to release", phase="he-aggregate")
        return self._envelopes(self._sum, self._contributions)

    def _envelopes(self, residues: np.ndarray, contributions: int) -> Iterator[bytes]:
        count = len(residues)
        for index, total in enumerate(residues):
            header = ChunkHeader(
                ChunkKind.AGGREGATE,
                self._context.fingerprint,
                self._dimension,
                index,
                count,
                contributions,
            )
            yield pack_packed_chunk(header, pack_coefficients(total, self._layout))


def wire_bytes_per_value(envelopes: Sequence[bytes], length: int) -> float:
    """Bytes on the wire per encrypted value, envelope headers included."""
    return sum(len(e) for e in envelopes) / length


__all__ = [
    "HEADER_BYTES",
    "DecodedChunk",
    "EncryptedSum",
    "chunk_count",
    "decode_chunk",
    "decrypt_aggregate",
    "encrypt_vector",
    "wire_bytes_per_value",
]
