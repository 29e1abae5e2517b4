"""What the server's CKKS checks cost a hostile upload, and the layout it derives itself.

`read_vector` refuses by the cheapest check first (count, each chunk's exact size,
the headers) and unpacks residues only for an upload that passed all of those; the
server's running sum works from an :class:`OpaquePublicContext` (parameters of its own
round, the key holder's blob unparsed) exactly as from a parsed public context.
"""

from __future__ import annotations

import functools

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
