"""CKKS test helpers shared by tests/he and tests/aggregation.

:func:`encode_chunk` lived in :mod:`secagg.he.chunks` while the server summed with
TenSEAL. No production path packs a TenSEAL vector any more (clients encrypt with
:func:`secagg.he.chunks.encrypt_chunk`, the server adds residues), so it is kept here,
where tests use it to craft ciphertexts TenSEAL's own API makes: another scale, a sum
far beyond what honest clients could send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from secagg.he.chunks import ciphertext_layout
from secagg.he.envelope import ChunkHeader, pack_packed_chunk
from secagg.he.packing import coefficients_from_tenseal, pack_coefficients

if TYPE_CHECKING:
    import tenseal as ts

    from secagg.he.context import BoundContext


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
