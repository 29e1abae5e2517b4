"""Whole hostile uploads and aggregates: several chunks edited together, against both
readers of the wire, the server's running sum and the key holder's decryption.

test_he.py garbles one envelope at a time; a hostile party sends a list. Here a valid
three-chunk upload (or the aggregate of two) is edited by one to four of: a header byte
set (kind, tag, length, index, contributions), a chunk repeated or dropped, two chunks'
length/index/contributions fields swapped, a chunk cut short or lengthened, a residue
byte set to 0xFF (past every prime of these parameters' widths). What must hold: every
refusal is one of the engine's typed errors (:class:`~secagg.errors.SecAggError`); a
refused upload leaves the running sum, bit for bit, and its count as they were; an
accepted one (an edit that left a valid upload, such as two swapped identical fields)
counts once. Nothing else is raised and nothing crashes.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.errors import SecAggError
from secagg.he.context import OpaquePublicContext
from secagg.he.envelope import HEADER_BYTES
from secagg.he.keys import KeyHolder
from secagg.he.params import choose_parameters
from secagg.he.vectors import EncryptedSum, encrypt_vector

#: the header's fields after magic and version: kind (5), tag (6..13), length (14..17),
#: index (18..21), contributions (22..25)
_FIELDS_AFTER_TAG = slice(14, HEADER_BYTES)


@functools.cache
def _round() -> tuple[KeyHolder, OpaquePublicContext, int, list[bytes], list[bytes]]:
    """A coarse design point (N = 2048, one 29-bit prime), a three-chunk vector, one
    client's upload and the aggregate of two."""
    holder = KeyHolder(choose_parameters(4, 1.0, 1e-3), min_contributions=1)
    opaque = OpaquePublicContext(
        holder.public_context_bytes, holder.params, fingerprint=holder.fingerprint
    )
    dimension = 2 * holder.params.values_per_ciphertext + 5
    upload = encrypt_vector(holder.public_context(), np.linspace(-1.0, 1.0, dimension))
    total = EncryptedSum(opaque, dimension)
    total.add(upload)
    total.add(upload)
    return holder, opaque, dimension, upload, total.to_chunks()


@st.composite
def _edited(draw: st.DrawFn, chunks: list[bytes]) -> list[bytes]:
    edited = [bytearray(c) for c in chunks]
    for _ in range(draw(st.integers(1, 4))):
        if not edited:
            break
        i = draw(st.integers(0, len(edited) - 1))
        op = draw(st.sampled_from(["header", "repeat", "drop", "swap", "cut", "extend", "body"]))
        chunk = edited[i]
        if op == "header" and len(chunk) > 5:
            chunk[draw(st.integers(5, min(len(chunk), HEADER_BYTES) - 1))] = draw(
                st.integers(0, 255)
            )
        elif op == "repeat":
            edited.append(bytearray(chunk))
        elif op == "drop":
            del edited[i]
        elif op == "swap":
            other = edited[draw(st.integers(0, len(edited) - 1))]
            if len(chunk) >= HEADER_BYTES and len(other) >= HEADER_BYTES:
                mine = bytes(chunk[_FIELDS_AFTER_TAG])
                chunk[_FIELDS_AFTER_TAG] = other[_FIELDS_AFTER_TAG]
                other[_FIELDS_AFTER_TAG] = mine
        elif op == "cut":
            del chunk[draw(st.integers(0, len(chunk))) :]
        elif op == "extend":
            chunk += draw(st.binary(min_size=1, max_size=9))
        elif op == "body" and len(chunk) > HEADER_BYTES:
            chunk[draw(st.integers(HEADER_BYTES, len(chunk) - 1))] = 0xFF
    return [bytes(c) for c in edited]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_edited_upload_is_refused_whole_or_counted_once(data: st.DataObject) -> None:
    _, opaque, dimension, upload, _ = _round()
    chunks = data.draw(_edited(upload), label="chunks")
    total = EncryptedSum(opaque, dimension)
    total.add(upload)
    before = np.array(total._sum, copy=True)
    try:
        total.add(chunks)
    except SecAggError:
        assert total.contributions == 1
        np.testing.assert_array_equal(total._sum, before)
    else:
        assert total.contributions == 2


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_edited_aggregate_is_refused_by_type_or_decrypts_to_its_length(
    data: st.DataObject,
) -> None:
    """An edit that keeps a valid aggregate (residues still below the prime are CKKS's
    malleability, envelope.py's docstring) decrypts to a vector of the asked length."""
    holder, _, dimension, _, aggregate = _round()
    chunks = data.draw(_edited(aggregate), label="chunks")
    try:
        out = holder.decrypt_aggregate(chunks, dimension=dimension)
    except SecAggError:
        return
    assert out.shape == (dimension,)
    assert np.all(np.isfinite(out))


def test_an_upload_offered_as_the_aggregate_is_refused_by_kind() -> None:
    holder, _, dimension, upload, _ = _round()
    with pytest.raises(SecAggError, match="aggregate"):
        holder.decrypt_aggregate(upload, dimension=dimension)
