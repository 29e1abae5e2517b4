"""What the server's CKKS checks cost a hostile upload, and the layout it derives itself.

`read_vector` refuses by the cheapest check first (count, each chunk's exact size,
the headers) and unpacks residues only for an upload that passed all of those; the
server's running sum works from an :class:`OpaquePublicContext` (parameters of its own
round, the key holder's blob unparsed) exactly as from a parsed public context.
"""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.errors import MalformedMessage
from secagg.he import chunks as chunks_module
from secagg.he.chunks import ciphertext_layout, parameter_layout, read_vector
from secagg.he.context import OpaquePublicContext
from secagg.he.envelope import HEADER_BYTES, ChunkKind
from secagg.he.errors import (
    ContextMismatch,
    InconsistentUpload,
    MalformedCiphertext,
    SecretKeyUnavailable,
)
from secagg.he.keys import KeyHolder
from secagg.he.packing import pack_coefficients, unpack_coefficients
from secagg.he.params import CKKSParameters, choose_parameters
from secagg.he.vectors import EncryptedSum, encrypt_vector

D = 3000  # two chunks at N = 2048 (the bench-quick point)

PARAMETER_SETS = {
    "bench-quick": lambda: choose_parameters(4, 1.0, 1e-6),
    "coarse": lambda: choose_parameters(2, 1.0, 1e-3),
    "n100": lambda: choose_parameters(100, 1.0, 1e-6),
    "two-primes": lambda: choose_parameters(100, 1.0, 1e-11),
    "60-bit": lambda: CKKSParameters(4096, (60, 16), 50, 10, 1.0, 1e-6),
}


@functools.cache
def _holder(name: str = "bench-quick") -> KeyHolder:
    return KeyHolder(PARAMETER_SETS[name](), min_contributions=1)


def _opaque(holder: KeyHolder) -> OpaquePublicContext:
    return OpaquePublicContext(
        holder.public_context_bytes, holder.params, fingerprint=holder.fingerprint
    )


def _no_unpacking(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_: object) -> None:
        raise AssertionError("residues unpacked before the cheap checks refused the upload")

    monkeypatch.setattr(chunks_module, "unpack_coefficients", forbidden)


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_the_layout_from_the_parameters_is_the_one_seal_builds(name: str) -> None:
    """parameter_layout (no context parsed) agrees with the layout read off TenSEAL's own
    context, parameter id included, for every width the packing handles."""
    holder = _holder(name)
    fresh = KeyHolder(holder.params)  # a second key: the layout is the parameters'
    assert parameter_layout(holder.params) == ciphertext_layout(holder)
    assert ciphertext_layout(fresh.public_context()) == ciphertext_layout(_opaque(holder))


def test_the_first_header_is_checked_before_any_residue_is_unpacked(monkeypatch) -> None:
    """A vector of another length (same chunk count): refused by its first header alone.
    Before, every chunk's residues were unpacked and checked first."""
    holder = _holder()
    wrong = encrypt_vector(holder.public_context(), np.zeros(D - 100))  # same count
    _no_unpacking(monkeypatch)
    with pytest.raises(InconsistentUpload, match=f"expected {D}"):
        read_vector(_opaque(holder), wrong, kind=ChunkKind.CONTRIBUTION, dimension=D)


def test_every_chunk_size_is_checked_before_any_residue_is_unpacked(monkeypatch) -> None:
    """The right count with one oversize chunk, the last: refused by size, nothing unpacked.
    Before, the chunks before it were unpacked first."""
    holder = _holder()
    upload = encrypt_vector(holder.public_context(), np.zeros(D))
    hostile = [*upload[:-1], upload[-1] + bytes(10**6)]
    _no_unpacking(monkeypatch)
    with pytest.raises(MalformedCiphertext, match=f"chunk {len(upload) - 1} of"):
        read_vector(_opaque(holder), hostile, kind=ChunkKind.CONTRIBUTION, dimension=D)
    with pytest.raises(MalformedCiphertext, match="chunk 0 of"):
        read_vector(_opaque(holder), [b"", *upload[1:]], kind=ChunkKind.CONTRIBUTION, dimension=D)


def test_later_headers_are_checked_before_any_residue_is_unpacked(monkeypatch) -> None:
    holder = _holder()
    upload = encrypt_vector(holder.public_context(), np.zeros(D))
    twice = [upload[0], upload[0], *upload[2:]]
    _no_unpacking(monkeypatch)
    with pytest.raises(InconsistentUpload, match="appears twice"):
        read_vector(_opaque(holder), twice, kind=ChunkKind.CONTRIBUTION, dimension=D)


def test_a_bad_residue_is_still_refused_after_the_cheap_checks() -> None:
    """The reordering drops no check: an out-of-range residue in the last chunk."""
    holder = _holder()
    upload = encrypt_vector(holder.public_context(), np.zeros(D))
    last = bytearray(upload[-1])
    last[HEADER_BYTES : HEADER_BYTES + 8] = b"\xff" * 8  # the first residue: 2^39 - 1 > q
    total = EncryptedSum(_opaque(holder), D)
    with pytest.raises(MalformedCiphertext, match="below its prime"):
        total.add([*upload[:-1], bytes(last)])
    assert total.contributions == 0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 5000), n=st.integers(2, 4))
def test_the_opaque_sum_is_the_parsed_sum(seed: int, d: int, n: int) -> None:
    """The server's sum from its own parameters is, residue for residue, the sum built
    from the parsed public context (the code before this change)."""
    holder = _holder()
    public = holder.public_context()
    rows = np.random.default_rng(seed).uniform(-1, 1, (n, d))  # test data only
    uploads = [encrypt_vector(public, row) for row in rows]
    parsed, opaque = EncryptedSum(public, d), EncryptedSum(_opaque(holder), d)
    for upload in uploads:
        parsed.add(upload)
        opaque.add(upload)
    assert opaque.to_chunks() == parsed.to_chunks()
    total = holder.decrypt_aggregate(opaque.to_chunks(), dimension=d)
    assert np.max(np.abs(total - rows.sum(axis=0))) <= holder.params.error_bound(n)


def test_the_opaque_context_holds_nothing_to_decrypt_with() -> None:
    holder = _holder()
    opaque = _opaque(holder)
    assert not opaque.is_private() and opaque.public_context_bytes == holder.public_context_bytes
    with pytest.raises(SecretKeyUnavailable):
        opaque.decrypt()
    assert holder.fingerprint.hex()[:16] in repr(opaque)


def test_the_opaque_context_binds_its_bytes_to_the_fingerprint() -> None:
    holder = _holder()
    public, params = holder.public_context_bytes, holder.params
    flipped = bytes([public[0] ^ 1]) + public[1:]
    for data, fingerprint in [(flipped, holder.fingerprint), (public, holder.fingerprint[:8])]:
        with pytest.raises(ContextMismatch):
            OpaquePublicContext(data, params, fingerprint=fingerprint)
    with pytest.raises(MalformedMessage, match="public context of 10 bytes"):
        OpaquePublicContext(public[:10], params, fingerprint=holder.fingerprint)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4500), n=st.integers(1, 4))
def test_the_running_sum_is_the_residues_summed_modulo_their_primes(
    seed: int, d: int, n: int
) -> None:
    """The server's running sum, chunk by chunk in place, against an independent
    reference: every upload's residues summed as Python integers, then reduced."""
    rows = np.random.default_rng(seed).uniform(-1, 1, (n, d))  # test data only
    _reference_sum_matches(_holder("two-primes"), rows)  # two primes of different widths


def test_adding_an_upload_holds_its_residues_once() -> None:
    """Above the running sum, an addition's peak is one upload's residues (16 B a value
    at one prime) plus small change. Before, the upload was stacked into a second copy
    first: 34.3 MB above the sum for d = 10^6 instead of about 16."""
    holder = _holder()
    d = 200_000
    uploads = [encrypt_vector(holder.public_context(), np.full(d, 0.25)) for _ in range(2)]
    total = EncryptedSum(_opaque(holder), d)
    total.add(uploads[0])
    tracemalloc.start()
    try:
        total.add(uploads[1])
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    residues = 16 * holder.params.data_primes * d
    assert peak - held < 1.4 * residues


def test_adding_a_framed_upload_copies_none_of_its_chunks() -> None:
    """The server's path: the framed upload cut into chunks (:func:`unframe_chunks`) and
    added. Above the running sum the peak is the upload's residues and small change: the
    chunks are views into the upload. Before, each chunk was copied out of the frame,
    and each envelope again by ``unpack_chunk``: 26.4 MB at d = 10^6 (upload 9.8 MB)
    instead of 16.6."""
    from secagg.aggregation.ckks import _chunk_bytes, frame_chunks, unframe_chunks

    holder = _holder()
    d = 200_000
    framed = [
        frame_chunks(encrypt_vector(holder.public_context(), np.full(d, 0.25))) for _ in range(2)
    ]
    count = -(-d // holder.params.values_per_ciphertext)
    size = _chunk_bytes(holder.params)
    total = EncryptedSum(_opaque(holder), d)
    total.add(unframe_chunks(framed[0], count, chunk_bytes=size))
    tracemalloc.start()
    try:
        total.add(unframe_chunks(framed[1], count, chunk_bytes=size))
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    residues = 16 * holder.params.data_primes * d
    assert peak - held < residues + len(framed[1]) // 4  # a copy of the upload is all of it


def _reference_sum_matches(holder: KeyHolder, rows: np.ndarray) -> EncryptedSum:
    """Add ``rows``' uploads and compare every residue of the sum with Python integers."""
    public = holder.public_context()
    layout = ciphertext_layout(public)
    uploads = [encrypt_vector(public, row) for row in rows]
    total = EncryptedSum(_opaque(holder), rows.shape[1])
    for upload in uploads:
        total.add(upload)
    primes = np.array(layout.primes, dtype=object)[None, :, None]
    for index, chunk in enumerate(total.to_chunks()):
        parts = [unpack_coefficients(u[index][HEADER_BYTES:], layout) for u in uploads]
        expected = sum(p.astype(object) for p in parts) % primes
        got = unpack_coefficients(chunk[HEADER_BYTES:], layout)
        assert np.array_equal(got.astype(object), expected)
    return total


@functools.cache
def _narrow_holder() -> KeyHolder:
    """10^5 clients at the default precision: two primes of 31 bits (a uint32 sum)."""
    return KeyHolder(choose_parameters(10**5, 1.0, 1e-6), min_contributions=1)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 9000), n=st.integers(1, 6))
def test_a_uint32_sum_is_exact(seed: int, d: int, n: int) -> None:
    """Primes below 2^31: the sum is held as uint32 and is, residue for residue, the sum
    of Python integers reduced modulo each prime; extreme residues (q - 1) included."""
    holder = _narrow_holder()
    assert max(ciphertext_layout(holder).primes) < 2**31
    rows = np.random.default_rng(seed).uniform(-1, 1, (n, d))  # test data only
    total = _reference_sum_matches(holder, rows)
    assert total._sum is not None and total._sum.dtype == np.uint32


def test_extreme_residues_wrap_exactly_in_uint32() -> None:
    """Two uploads whose residues are all q - 1: every sum is 2q - 2 before reduction,
    the largest a uint32 sum ever holds (< 2^32 for q < 2^31)."""
    holder = _narrow_holder()
    layout = ciphertext_layout(holder)
    d = holder.params.values_per_ciphertext
    top = np.broadcast_to(np.array(layout.primes, np.uint64)[None, :, None] - 1, (2, 2, d))
    header = encrypt_vector(holder.public_context(), np.zeros(d))[0][:HEADER_BYTES]
    upload = [header + pack_coefficients(np.ascontiguousarray(top), layout)]
    total = EncryptedSum(_opaque(holder), d)
    total.add(upload)
    total.add(upload)
    (chunk,) = total.to_chunks()
    expected = np.array(layout.primes, np.uint64)[None, :, None] - 2
    got = unpack_coefficients(chunk[HEADER_BYTES:], layout)
    assert np.array_equal(got, np.broadcast_to(expected, top.shape))


def test_the_sum_is_uint32_only_below_31_bit_primes() -> None:
    for name in ("bench-quick", "two-primes", "60-bit"):  # 39, (33, 32), 60 bits
        holder = _holder(name)
        assert EncryptedSum(_opaque(holder), 10).residue_dtype == np.uint64
    assert EncryptedSum(_opaque(_narrow_holder()), 10).residue_dtype == np.uint32
