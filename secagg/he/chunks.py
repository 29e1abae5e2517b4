"""Loading ciphertext envelopes into TenSEAL vectors, and decrypting aggregates.

The checked path from the bytes of :mod:`secagg.he.envelope` to checked residues
(:func:`read_vector`, all the server's running sum
:class:`~secagg.he.vectors.EncryptedSum` uses, with no TenSEAL involved) and on
to TenSEAL ``CKKSVector`` objects for the parties that hold the secret key
(:meth:`secagg.he.keys.KeyHolder.decrypt_aggregate`). It depends on
the contexts (:mod:`secagg.he.context`) and never on the roles or the sum, so
the modules above it import it without a cycle.

Chunks travel packed (:mod:`secagg.he.packing`), two values per slot
(:mod:`secagg.he.paired`): :func:`encrypt_chunk` encrypts a client's values into
a packed envelope, and :func:`decode_chunk` checks the residues and rebuilds the
bytes TenSEAL loads. (Packing a TenSEAL vector, which no production path does since
the server adds residues itself, is a test helper: tests/_ckks.py.)
Version-1 envelopes (TenSEAL's own payload, one value per slot) are refused
from peers; only the tests load one (``tests/_ckks.py``), to exercise
:func:`~secagg.he.envelope.check_tenseal_payload`, which also guards every
payload this module builds before TenSEAL loads it.
Every fault raises a typed error before TenSEAL sees the payload it concerns;
see :mod:`secagg.he.vectors` for the list of checks.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

try:
    import tenseal as ts
    import tenseal.sealapi as sealapi
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.errors import ConfigurationError
from secagg.he.context import OpaquePublicContext
from secagg.he.envelope import (
    HEADER_BYTES,
    MAGIC,
    VERSION_PACKED,
    VERSION_TENSEAL,
    ChunkHeader,
    ChunkKind,
    Envelope,
    check_tenseal_payload,
    pack_packed_chunk,
    unpack_chunk,
)
from secagg.he.errors import (
    ContextMismatch,
    HEParameterError,
    InconsistentUpload,
    MalformedCiphertext,
    SecretKeyUnavailable,
    TooFewContributions,
    TooManyContributions,
)
from secagg.he.packing import (
    CiphertextLayout,
    pack_coefficients,
    tenseal_payload,
    unpack_coefficients,
)
from secagg.he.paired import decrypt_pairs, encrypt_pairs, slots_used
from secagg.he.params import coefficient_primes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from secagg.he.context import AggregationContext, BoundContext, SecretContext
    from secagg.he.params import CKKSParameters

_PAYLOAD_SLACK = 64  # protobuf framing around the SEAL ciphertext


def chunk_count(length: int, per_chunk: int) -> int:
    """Number of ciphertexts a vector of ``length`` values needs, ``per_chunk`` in each.

    ``per_chunk`` is :attr:`CKKSParameters.values_per_ciphertext` (N, two values per
    slot) for everything this build writes.
    """
    return -(-length // per_chunk)


def chunk_values(
    params: CKKSParameters, length: int, index: int, per_chunk: int | None = None
) -> int:
    """How many of a vector's values chunk ``index`` carries (the last may be short)."""
    per_chunk = params.values_per_ciphertext if per_chunk is None else per_chunk
    return min(per_chunk, length - index * per_chunk)


@functools.cache
def _data_primes(degree: int, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The data primes in SEAL's order, from SEAL's own ``CoeffModulus.Create``."""
    primes = tuple(m.value() for m in sealapi.CoeffModulus.Create(degree, list(sizes)))
    if primes != coefficient_primes(degree, sizes):
        raise HEParameterError(f"SEAL picks other primes for {list(sizes)} than params.py")
    return primes[:-1]


@functools.cache
def _first_parms_id(degree: int, sizes: tuple[int, ...]) -> bytes:
    """SEAL's id of the first data level for these parameters, from a context built here.

    Built from the parameters alone (SEAL hashes the scheme, ring and primes), with no
    key and no byte anyone sent: what the server uses instead of parsing a context.
    """
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(degree)
    parms.set_coeff_modulus(sealapi.CoeffModulus.Create(degree, list(sizes)))
    seal = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    if not seal.parameters_set():
        raise HEParameterError(f"SEAL refuses these parameters: {seal.parameters_error_message()}")
    return struct.pack("<4Q", *seal.first_parms_id())


def parameter_layout(params: CKKSParameters) -> CiphertextLayout:
    """The data level's facts (:class:`CiphertextLayout`) from the parameters alone.

    The primes are SEAL's ``CoeffModulus.Create`` (which TenSEAL calls, and which
    params.py must agree with), the parameter id SEAL's hash of them; nothing here
    reads a serialized context, so the server derives its layout from its own round.
    """
    degree, sizes = params.poly_modulus_degree, params.coeff_mod_bit_sizes
    header = sealapi.Serialization.SEALHeader()
    layout = CiphertextLayout(
        poly_modulus_degree=degree,
        primes=_data_primes(degree, sizes),
        parms_id=_first_parms_id(degree, sizes),
        scale=params.scale,
        seal_version=(header.version_major, header.version_minor),
    )
    if layout.packed_bytes != params.packed_ciphertext_bytes():  # b-bit primes have b bits
        raise HEParameterError("the context's primes do not have the parameters' bit sizes")
    return layout


def ciphertext_layout(context: AggregationContext) -> CiphertextLayout:
    """The facts of the context's data level that the packed form leaves off the wire.

    :func:`parameter_layout` of the context's parameters. For a TenSEAL context
    (a :class:`~secagg.he.context.BoundContext`) the data level SEAL built is checked
    against it prime by prime and by parameter id. (Not against
    ``total_coeff_modulus()``: its binding returns only the product's low 64-bit word, so
    every data modulus above 64 bits, e.g. two 33-bit primes for 10^6 clients, was
    refused.) An :class:`~secagg.he.context.OpaquePublicContext` has no TenSEAL context
    to check: the server's layout is its parameters'.
    """
    if isinstance(context._layout, CiphertextLayout):
        return context._layout
    layout = parameter_layout(context.params)
    if not isinstance(context, OpaquePublicContext):
        seal = context._ts.seal_context().data
        built = tuple(m.value() for m in seal.first_context_data().parms().coeff_modulus())
        if built != layout.primes:
            raise HEParameterError("the context's data modulus is not the parameters' primes")
        if struct.pack("<4Q", *seal.first_parms_id()) != layout.parms_id:
            raise HEParameterError("the context's data level is not the parameters' one")
    context._layout = layout
    return layout


def encrypt_chunk(context: BoundContext, header: ChunkHeader, values: np.ndarray) -> bytes:
    """Encrypt one chunk of a client's vector (two values per slot) into a packed envelope."""
    layout = ciphertext_layout(context)
    coefficients = encrypt_pairs(context, values, layout)
    return pack_packed_chunk(header, pack_coefficients(coefficients, layout))


@dataclass(frozen=True)
class DecodedChunk:
    """A checked chunk: its header, its ciphertext loaded by TenSEAL, and its packing.

    ``paired`` is True for what this build writes and reads (two values per slot);
    False only for a version-1 envelope (TenSEAL's own payload, one value per slot),
    which no production path loads (the tests' ``tests/_ckks.py`` does).
    """

    header: ChunkHeader
    vector: ts.CKKSVector
    paired: bool = True


@dataclass(frozen=True)
class CheckedChunk:
    """A packed chunk whose header and residues passed every check; no TenSEAL involved.

    ``residues`` has shape (2, k, N), each below its prime; ``values`` is how many of
    the vector's values the chunk carries (two a slot).
    """

    header: ChunkHeader
    residues: np.ndarray
    values: int


def _envelope(context: AggregationContext, data: bytes, kind: ChunkKind) -> tuple[Envelope, int]:
    """Parse and check an envelope's header against the context; its values in the chunk."""
    params = context.params
    layout = ciphertext_layout(context)
    envelope = unpack_chunk(
        data,
        values_per_chunk=params.values_per_ciphertext,
        packed_bytes=layout.packed_bytes,
        max_payload=params.max_ciphertext_bytes() + _PAYLOAD_SLACK,
    )
    header = envelope.header
    if not header.names(context.fingerprint):
        raise ContextMismatch("chunk was encrypted under another context")
    if header.kind is not kind:
        expected = "an aggregate" if kind is ChunkKind.AGGREGATE else "a contribution"
        raise InconsistentUpload(
            f"expected {expected} chunk, got a {header.kind.name.lower()} chunk"
        )
    # a version-1 envelope is TenSEAL's own vector: one value per slot, N/2 a chunk
    paired = envelope.version == VERSION_PACKED
    per_chunk = params.values_per_ciphertext if paired else params.slots
    if header.count != chunk_count(header.vector_length, per_chunk):
        raise InconsistentUpload(
            f"{header.vector_length} values need {chunk_count(header.vector_length, per_chunk)}"
            f" chunks, envelope says {header.count}"
        )
    if kind is ChunkKind.CONTRIBUTION and header.contributions != 1:
        raise InconsistentUpload("a client's chunk must count one contribution")
    return envelope, chunk_values(params, header.vector_length, header.index, per_chunk)


def _refuse_version_1() -> MalformedCiphertext:
    return MalformedCiphertext(
        "a version-1 envelope (TenSEAL's own serialization) is not accepted from a peer: "
        "send the packed form"
    )


def read_chunk(context: AggregationContext, data: bytes, *, kind: ChunkKind) -> CheckedChunk:
    """Check one packed envelope and return its residues; every fault raises a typed error.

    This is all the server needs to add (:class:`~secagg.he.vectors.EncryptedSum` adds
    residues modulo their primes itself), so no byte a peer wrote reaches TenSEAL or
    SEAL on the server at all.
    """
    return _checked(context, *_envelope(context, data, kind))


def _checked(context: AggregationContext, envelope: Envelope, values: int) -> CheckedChunk:
    """A parsed envelope's residues, checked; anything but the packed form refused."""
    if envelope.version != VERSION_PACKED:
        raise _refuse_version_1()
    residues = unpack_coefficients(envelope.payload, ciphertext_layout(context))
    return CheckedChunk(envelope.header, residues, values)


def _load(context: BoundContext, payload: bytes, size: int) -> ts.CKKSVector:
    """TenSEAL's vector from a payload already checked (or built here) of ``size`` slots."""
    params = context.params
    check_tenseal_payload(
        payload, values=size, scale=params.scale, max_ciphertext=params.max_ciphertext_bytes()
    )
    try:
        vector = ts.ckks_vector_from(context._ts, payload)
    except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
        raise MalformedCiphertext(f"TenSEAL refused the ciphertext: {exc}") from None
    _check_loaded(context, vector, size)
    return vector


def _load_checked(context: BoundContext, chunk: CheckedChunk) -> ts.CKKSVector:
    """A checked packed chunk as TenSEAL's vector (TenSEAL's size counts slots)."""
    size = slots_used(chunk.values)
    payload = tenseal_payload(chunk.residues, ciphertext_layout(context), size)
    return _load(context, payload, size)


def decode_chunk(context: BoundContext, data: bytes, *, kind: ChunkKind) -> DecodedChunk:
    """Check and load one envelope into TenSEAL; every fault raises a typed error.

    Order matters: the envelope structure and the fingerprint are checked before
    the payload, and the payload's structure before TenSEAL sees it.

    Only the packed form (version 3) is taken, so no byte a peer wrote reaches
    TenSEAL's or SEAL's parsers: they read a structure this process built around
    residues already checked. (``accept_tenseal_payload=True`` also handed a
    version-1 envelope's payload, TenSEAL's own serialization, to TenSEAL; no
    production path passed it, so the tests of those checks load version 1 through
    ``tests/_ckks.py`` instead.)
    """
    envelope, values = _envelope(context, data, kind)
    checked = _checked(context, envelope, values)
    return DecodedChunk(envelope.header, _load_checked(context, checked), True)


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


def read_vector(
    context: AggregationContext, chunks: Sequence[bytes], *, kind: ChunkKind, dimension: int
) -> tuple[list[CheckedChunk], int]:
    """Check one party's full set of packed chunks, in index order, or refuse all of it;
    their residues and the contributions they claim (see :func:`_ordered_envelopes`)."""
    ordered, contributions = _ordered_envelopes(context, chunks, kind=kind, dimension=dimension)
    return [_checked(context, *e) for e in ordered], contributions


def _ordered_envelopes(
    context: AggregationContext, chunks: Sequence[bytes], *, kind: ChunkKind, dimension: int
) -> tuple[list[tuple[Envelope, int]], int]:
    """One party's chunks parsed, checked up to their residues and put in index order,
    with the contributions they claim; every fault raises a typed error.

    ``dimension`` is the caller's (the round's, or the key holder's checked request);
    one that is not a positive integer raises :class:`ConfigurationError` first: 0 or
    a negative one needed zero chunks, so an empty list passed and the first chunk's
    header was then read from nothing (IndexError).

    Cheapest first, so a hostile upload costs what its refusal needs: the count, then
    every chunk's exact size (the parameters fix it), then every header (the first's
    vector length against ``dimension``, the others against the first); the residues
    are left to the caller (:func:`_checked` unpacks and checks one chunk's against its
    primes). Before, every chunk was unpacked before the first header's length was
    compared.
    """
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
        raise ConfigurationError(f"dimension must be a positive integer, got {dimension!r}")
    if isinstance(chunks, bytes | bytearray | memoryview | str):
        raise InconsistentUpload("expected a sequence of envelopes, got a single bytes object")
    try:
        chunks = list(chunks)
    except TypeError:
        raise InconsistentUpload("expected a sequence of envelopes") from None
    expected = chunk_count(dimension, context.params.values_per_ciphertext)
    if len(chunks) != expected:
        raise InconsistentUpload(f"{dimension} values need {expected} chunks, got {len(chunks)}")
    size = HEADER_BYTES + ciphertext_layout(context).packed_bytes
    for index, data in enumerate(chunks):
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedCiphertext(f"an envelope is bytes, not {type(data).__name__}")
        length = memoryview(data).nbytes
        if length != size:
            if bytes(data[:5]) == MAGIC + bytes([VERSION_TENSEAL]):
                raise _refuse_version_1()  # say why, not only that the size is wrong
            raise MalformedCiphertext(
                f"chunk {index} of {length} bytes; these parameters give exactly {size}"
            )
    envelopes = [_envelope(context, data, kind) for data in chunks]
    first = envelopes[0][0].header
    if first.vector_length != dimension:
        raise InconsistentUpload(f"vector of length {first.vector_length}, expected {dimension}")
    ordered: list[tuple[Envelope, int] | None] = [None] * expected
    for envelope, values in envelopes:
        h = envelope.header
        if (h.vector_length, h.count, h.contributions) != (
            first.vector_length,
            first.count,
            first.contributions,
        ):
            raise InconsistentUpload("chunks disagree on vector length, count or contributions")
        if ordered[h.index] is not None:
            raise InconsistentUpload(f"chunk {h.index} appears twice")
        ordered[h.index] = (envelope, values)
    assert all(e is not None for e in ordered)  # len == count and no duplicates
    return ordered, first.contributions  # type: ignore[return-value]


def decrypt_aggregate(
    context: SecretContext, chunks: Sequence[bytes], *, dimension: int
) -> np.ndarray:
    """Decrypt aggregate envelopes with a secret-key context; refuses anything else
    (:func:`decrypt_counted`, without the count)."""
    return decrypt_counted(context, chunks, dimension=dimension)[0]


def decrypt_counted(
    context: SecretContext,
    chunks: Sequence[bytes],
    *,
    dimension: int,
    min_contributions: int | None = None,
) -> tuple[np.ndarray, int]:
    """Decrypt aggregate envelopes with a secret-key context; refuses anything else.
    The sum, and the contributions the aggregate claims (checked against the context's
    minimum and its parameters' clients): what an honest sum of it is bounded by, which
    the CKKS key holder holds the decryption to
    (:func:`~secagg.aggregation.keyholder_policy.plausible_range`).

    The returned sum is raw: see :mod:`secagg.he.keys` for why it must be noised
    or rounded before it leaves the key holder.

    Every chunk (its residues included) and the claimed contributions are checked
    before the first decryption; then each chunk is unpacked again, loaded into
    TenSEAL, decrypted and dropped in turn. Loading them all first (``decode_vector``,
    removed) held every ciphertext in SEAL's memory and every chunk's residues at
    once: a fresh key holder's resident peak answering a request at d = 10^6 was
    42.3 MB above its start, 20.0 MB this way (for 0.07 s more of CPU: 0.21 s instead
    of 0.14 s, each chunk being unpacked twice). ``chunks`` must not change while this
    runs (the key holder passes bytes, or its one copy of a mutable buffer). A chunk
    that TenSEAL refuses at load (it was checked and rebuilt here, so only a bug
    could) raises before anything is returned.

    ``min_contributions``: the caller's own floor (the CKKS key holder's policy), held
    beside the context's: the larger refuses. Why: the context's floor is fixed when the
    key is made or loaded, so a key holder given a key made with a lower one (a key made
    with the default of 2 under a policy of 4) decrypted aggregates its policy refuses.
    """
    if not context.is_private():
        raise SecretKeyUnavailable("this context holds no secret key")
    ordered, contributions = _ordered_envelopes(
        context, chunks, kind=ChunkKind.AGGREGATE, dimension=dimension
    )
    for envelope in ordered:  # every residue checked before the first decryption
        _checked(context, *envelope)
    least = max(context.min_contributions, min_contributions or 0)
    if contributions < least:
        raise TooFewContributions(
            f"aggregate of {contributions} contribution(s); at least {least} required "
            "before decryption"
        )
    if contributions > context.params.num_clients:
        raise TooManyContributions(
            f"aggregate claims {contributions} contributions; the parameters allow "
            f"{context.params.num_clients}"
        )
    out = np.empty(dimension, dtype=np.float64)
    per_chunk = context.params.values_per_ciphertext
    for index, envelope in enumerate(ordered):
        # unpacked again (the bytes are the caller's, unchanged): one chunk's residues
        # at a time, not the whole aggregate's beside the sum
        vector = _load_checked(context, _checked(context, *envelope))
        values = chunk_values(context.params, dimension, index)
        (ciphertext,) = vector.ciphertext()
        out[index * per_chunk : index * per_chunk + values] = decrypt_pairs(
            context, ciphertext, values
        )
        del vector, ciphertext
    return out, contributions
