"""Loading ciphertext envelopes into TenSEAL vectors, and decrypting aggregates.

The checked path from the bytes of :mod:`secagg.he.envelope` to TenSEAL
``CKKSVector`` objects, shared by the server's running sum
(:class:`~secagg.he.vectors.EncryptedSum`) and by the parties that hold the
secret key (:meth:`secagg.he.keys.KeyHolder.decrypt_aggregate`). It depends on
the contexts (:mod:`secagg.he.context`) and never on the roles or the sum, so
the modules above it import it without a cycle.

Every fault raises a typed error before TenSEAL sees the payload it concerns;
see :mod:`secagg.he.vectors` for the list of checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

try:
    import tenseal as ts
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.he.envelope import ChunkHeader, ChunkKind, check_tenseal_payload, unpack_chunk
from secagg.he.errors import (
    BoundExceeded,
    ContextMismatch,
    InconsistentUpload,
    MalformedCiphertext,
    SecretKeyUnavailable,
    TooFewContributions,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from secagg.he.context import BoundContext, SecretContext
    from secagg.he.params import CKKSParameters

_PAYLOAD_SLACK = 64  # protobuf framing around the SEAL ciphertext


def chunk_count(length: int, slots: int) -> int:
    """Number of ciphertexts a vector of ``length`` values needs."""
    return -(-length // slots)


def chunk_values(params: CKKSParameters, length: int, index: int) -> int:
    """How many of a vector's values chunk ``index`` carries (the last may be short)."""
    return min(params.slots, length - index * params.slots)


@dataclass(frozen=True)
class DecodedChunk:
    header: ChunkHeader
    vector: ts.CKKSVector


def decode_chunk(context: BoundContext, data: bytes, *, kind: ChunkKind) -> DecodedChunk:
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
    values = chunk_values(params, header.vector_length, header.index)
    check_tenseal_payload(payload, values=values, scale=params.scale, max_ciphertext=max_ct)
    try:
        vector = ts.ckks_vector_from(context._ts, payload)
    except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
        raise MalformedCiphertext(f"TenSEAL refused the ciphertext: {exc}") from None
    _check_loaded(context, vector, values)
    return DecodedChunk(header, vector)


def _check_loaded(context: BoundContext, vector: ts.CKKSVector, values: int) -> None:
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


def decode_vector(
    context: BoundContext, chunks: Sequence[bytes], *, kind: ChunkKind, dimension: int
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


def decrypt_aggregate(
    context: SecretContext, chunks: Sequence[bytes], *, dimension: int
) -> np.ndarray:
    """Decrypt aggregate envelopes with a secret-key context; refuses anything else.

    The returned sum is raw: see :mod:`secagg.he.keys` for why it must be noised
    or rounded before it leaves the key holder.
    """
    if not context.is_private():
        raise SecretKeyUnavailable("this context holds no secret key")
    vectors, contributions = decode_vector(
        context, chunks, kind=ChunkKind.AGGREGATE, dimension=dimension
    )
    if contributions < context.min_contributions:
        raise TooFewContributions(
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
