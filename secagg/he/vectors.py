"""Encrypt vectors of any length, add them on the server, and decrypt only the sum.

Theory of operation
-------------------
A client splits its vector into ``ceil(d / slots)`` chunks of N/2 values. The
last chunk may be shorter: TenSEAL zero-pads the slots it does not use, and the
chunk's true length travels in the payload. Each chunk is encrypted under the
public key as its own one-ciphertext TenSEAL ``CKKSVector`` and framed in an
envelope (:mod:`secagg.he.envelope`) that names the context fingerprint, the
vector length and the chunk's index and count.

The server keeps one running :class:`EncryptedSum` and takes uploads one client
at a time. It first decodes and checks *all* of a client's chunks, then adds
them in place. The checks are: fingerprint, structure, one ciphertext per
chunk, the context's first data level, the context's scale, two polynomials,
every index present exactly once, and the announced dimension. So a bad
upload is refused whole and the running sum is untouched. Memory is one
client's ciphertexts plus the sum. Adding never needs a key. The sum of n
ciphertexts is handed to the key holder as *aggregate* envelopes that carry n,
and the key holder decrypts those only (:func:`decrypt_aggregate`).

Values are checked against the parameters' ``value_bound`` before encryption,
and the server refuses more than ``num_clients`` contributions. Past either
limit, CKKS would wrap or lose precision silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

try:
    import tenseal as ts
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.errors import ConfigurationError, RoundAborted
from secagg.he.envelope import (
    HEADER_BYTES,
    ChunkHeader,
    ChunkKind,
    check_tenseal_payload,
    pack_chunk,
    unpack_chunk,
)
from secagg.he.errors import (
    BoundExceeded,
    ContextMismatch,
    InconsistentUpload,
    MalformedCiphertext,
    SecretKeyUnavailable,
)
from secagg.he.keys import PublicAggregationContext

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from secagg.he.keys import _BoundContext, _SecretContext
    from secagg.he.params import CKKSParameters

_PAYLOAD_SLACK = 64  # protobuf framing around the SEAL ciphertext


def chunk_count(length: int, slots: int) -> int:
    """Number of ciphertexts a vector of ``length`` values needs."""
    return -(-length // slots)


def _chunk_values(params: CKKSParameters, length: int, index: int) -> int:
    return min(params.slots, length - index * params.slots)


def encrypt_vector(context: _BoundContext, values: ArrayLike) -> list[bytes]:
    """Encrypt one client's vector into its list of contribution envelopes.

    ``context`` is a :class:`~secagg.he.keys.PublicAggregationContext` (key-holder
    mode) or a :class:`~secagg.he.keys.SharedKeyClient` (every-client mode).
    Raises :class:`BoundExceeded` for a non-finite value or one outside
    [-value_bound, value_bound], and ``ValueError`` for an empty or
    multi-dimensional input.
    """
    params = context.params
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty 1-D vector, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise BoundExceeded("vector contains a non-finite value")
    peak = float(np.max(np.abs(x)))
    if peak > params.value_bound:
        raise BoundExceeded(
            f"a coordinate of magnitude {peak:.6g} exceeds the bound {params.value_bound:.6g} "
            "the CKKS parameters were chosen for"
        )
    slots, count = params.slots, chunk_count(x.size, params.slots)
    envelopes = []
    for index in range(count):
        chunk = x[index * slots : (index + 1) * slots]
        payload = ts.ckks_vector(context._ts, chunk).serialize()
        header = ChunkHeader(
            ChunkKind.CONTRIBUTION, context.fingerprint, x.size, index, count, contributions=1
        )
        envelopes.append(pack_chunk(header, payload))
    return envelopes


@dataclass(frozen=True)
class DecodedChunk:
    header: ChunkHeader
    vector: ts.CKKSVector


def decode_chunk(context: _BoundContext, data: bytes, *, kind: ChunkKind) -> DecodedChunk:
    """Check and load one envelope; every fault raises a typed error.

    Order matters: the envelope structure and the fingerprint are checked before
    the payload, and the payload's structure before TenSEAL sees it.
    """
    params = context.params
    max_ct = params.max_ciphertext_bytes()
    header, payload = unpack_chunk(data, max_payload=max_ct + _PAYLOAD_SLACK)
    if header.fingerprint != context.fingerprint:
        raise ContextMismatch("chunk was encrypted under another context")
    if header.kind is not kind:
        raise InconsistentUpload(f"expected a {kind.name.lower()} chunk, got {header.kind.name}")
    if header.count != chunk_count(header.vector_length, params.slots):
        raise InconsistentUpload(
            f"{header.vector_length} values need {chunk_count(header.vector_length, params.slots)}"
            f" chunks, envelope says {header.count}"
        )
    if kind is ChunkKind.CONTRIBUTION and header.contributions != 1:
        raise InconsistentUpload("a client's chunk must count one contribution")
    values = _chunk_values(params, header.vector_length, header.index)
    check_tenseal_payload(payload, values=values, scale=params.scale, max_ciphertext=max_ct)
    try:
        vector = ts.ckks_vector_from(context._ts, payload)
    except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
        raise MalformedCiphertext(f"TenSEAL refused the ciphertext: {exc}") from None
    _check_loaded(context, vector, values)
    return DecodedChunk(header, vector)


def _check_loaded(context: _BoundContext, vector: ts.CKKSVector, values: int) -> None:
    """Metadata SEAL accepted but an addition would trip on, or silently get wrong."""
    params = context.params
    cts = vector.ciphertext()
    ct = cts[0] if len(cts) == 1 else None
    if (
        vector.size() != values
        or ct is None
        or ct.size() != 2
        or ct.parms_id() != context._ts.seal_context().data.first_parms_id()
        or ct.scale != params.scale
        or not ct.is_ntt_form()
        or ct.coeff_modulus_size() != params.data_primes
        or ct.poly_modulus_degree() != params.poly_modulus_degree
    ):
        raise MalformedCiphertext("ciphertext is not a fresh encryption at the context's level")


def _decode_vector(
    context: _BoundContext, chunks: Sequence[bytes], *, kind: ChunkKind, dimension: int
) -> tuple[list[ts.CKKSVector], int]:
    """Decode one party's full set of chunks, in index order, or refuse all of it."""
    if isinstance(chunks, bytes | bytearray | memoryview | str):
        raise InconsistentUpload("expected a sequence of envelopes, got a single bytes object")
    try:
        chunks = list(chunks)
    except TypeError:
        raise InconsistentUpload("expected a sequence of envelopes") from None
    expected = chunk_count(dimension, context.params.slots)
    if len(chunks) != expected:
        raise InconsistentUpload(f"{dimension} values need {expected} chunks, got {len(chunks)}")
    decoded = [decode_chunk(context, data, kind=kind) for data in chunks]
    first = decoded[0].header
    if first.vector_length != dimension:
        raise InconsistentUpload(f"vector of length {first.vector_length}, expected {dimension}")
    ordered: list[ts.CKKSVector | None] = [None] * expected
    for chunk in decoded:
        h = chunk.header
        if (h.vector_length, h.count, h.contributions) != (
            first.vector_length,
            first.count,
            first.contributions,
        ):
            raise InconsistentUpload("chunks disagree on vector length, count or contributions")
        if ordered[h.index] is not None:
            raise InconsistentUpload(f"chunk {h.index} appears twice")
        ordered[h.index] = chunk.vector
    assert all(v is not None for v in ordered)  # len == count and no duplicates
    return ordered, first.contributions  # type: ignore[return-value]


class EncryptedSum:
    """The server's running encrypted sum, fed one client upload at a time.

    Built from a :class:`~secagg.he.keys.PublicAggregationContext` only, so the
    object that holds the sum can never decrypt it.
    """

    def __init__(self, context: PublicAggregationContext, dimension: int) -> None:
        if not isinstance(context, PublicAggregationContext) or context.is_private():
            raise ConfigurationError("the server aggregates with the public context only")
        if not isinstance(dimension, int) or dimension < 1:
            raise ConfigurationError(f"dimension must be a positive integer, got {dimension!r}")
        self._context = context
        self._dimension = dimension
        self._sum: list[ts.CKKSVector] | None = None
        self._contributions = 0
        self._broken = False

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def contributions(self) -> int:
        """How many client vectors the sum holds."""
        return self._contributions

    def add(self, chunks: Sequence[bytes]) -> None:
        """Add one client's upload in place, or refuse it whole and leave the sum unchanged."""
        if self._broken:
            raise RoundAborted("an earlier in-place addition failed", phase="he-aggregate")
        if self._contributions >= self._context.params.num_clients:
            raise BoundExceeded(
                f"the parameters allow at most {self._context.params.num_clients} contributions"
            )
        vectors, _ = _decode_vector(
            self._context, chunks, kind=ChunkKind.CONTRIBUTION, dimension=self._dimension
        )
        if self._sum is None:
            self._sum = vectors
        else:
            try:
                for total, vector in zip(self._sum, vectors, strict=True):
                    total.add_(vector)
            except Exception as exc:  # checked above, so this is a TenSEAL surprise
                self._broken = True
                raise RoundAborted(
                    f"in-place ciphertext addition failed: {exc}", phase="he-aggregate"
                ) from None
        self._contributions += 1

    def to_chunks(self) -> list[bytes]:
        """The sum as aggregate envelopes for the key holder."""
        if self._broken or self._sum is None:
            raise RoundAborted("no intact sum to release", phase="he-aggregate")
        count = len(self._sum)
        return [
            pack_chunk(
                ChunkHeader(
                    ChunkKind.AGGREGATE,
                    self._context.fingerprint,
                    self._dimension,
                    index,
                    count,
                    self._contributions,
                ),
                total.serialize(),
            )
            for index, total in enumerate(self._sum)
        ]


def decrypt_aggregate(
    context: _SecretContext, chunks: Sequence[bytes], *, dimension: int
) -> np.ndarray:
    """Decrypt aggregate envelopes with a secret-key context; refuses anything else.

    The returned sum is raw: see :mod:`secagg.he.keys` for why it must be noised
    or rounded before it leaves the key holder.
    """
    if not context.is_private():
        raise SecretKeyUnavailable("this context holds no secret key")
    vectors, contributions = _decode_vector(
        context, chunks, kind=ChunkKind.AGGREGATE, dimension=dimension
    )
    if contributions < context.min_contributions:
        raise InconsistentUpload(
            f"aggregate of {contributions} contribution(s); at least "
            f"{context.min_contributions} required before decryption"
        )
    if contributions > context.params.num_clients:
        raise BoundExceeded(
            f"aggregate claims {contributions} contributions; the parameters allow "
            f"{context.params.num_clients}"
        )
    out = np.empty(dimension, dtype=np.float64)
    slots = context.params.slots
    for index, vector in enumerate(vectors):
        out[index * slots : index * slots + vector.size()] = vector.decrypt()
    return out


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
