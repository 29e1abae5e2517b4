"""The AEAD binds the bytes it is given, whatever buffer holds them.

The associated data prefixes the label and the round id with their lengths, taken
with ``len``, which counts a memoryview's *items*: the label ``ab`` held as one
two-byte item was prefixed with 1, not 2, so a share sealed under it did not open under
the label ``b"ab"`` (DecryptionError, blamed on the sender), and a key of 32 two-byte
items passed the 32-byte check and failed in cryptography as a bare TypeError. The
cases with wide views failed before this change.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import aead
from secagg.errors import CryptoError, DecryptionError

KEY = bytes(range(32))
ROUND = b"r" * 16
BINDING = dict(label=b"ab", round_id=ROUND, sender=3, recipient=4, context=b"keys" * 4)


def _wide(data: bytes, item: str = "H") -> memoryview:
    """``data`` viewed as items wider than a byte (its length must divide evenly)."""
    return memoryview(data).cast(item)


@pytest.mark.parametrize("field", ["label", "round_id", "context"])
def test_a_wide_view_binds_the_same_bytes_as_bytes(field: str) -> None:
    sealed = aead.seal(KEY, b"share", **{**BINDING, field: _wide(BINDING[field])})  # type: ignore[arg-type]
    assert aead.open_sealed(KEY, sealed, **BINDING) == b"share"  # type: ignore[arg-type]
    sealed = aead.seal(KEY, b"share", **BINDING)  # type: ignore[arg-type]
    assert aead.open_sealed(KEY, sealed, **{**BINDING, field: _wide(BINDING[field])}) == b"share"  # type: ignore[arg-type]


def test_wide_views_of_the_key_message_and_sealed_bytes_work_like_bytes() -> None:
    sealed = aead.seal(_wide(KEY, "Q"), _wide(b"shar"), **BINDING)  # type: ignore[arg-type]
    assert len(sealed) == aead.OVERHEAD + 4 == 32  # viewable as 8 four-byte items
    assert aead.open_sealed(KEY, sealed, **BINDING) == b"shar"  # type: ignore[arg-type]
    assert aead.open_sealed(_wide(KEY, "I"), _wide(sealed, "I"), **BINDING) == b"shar"  # type: ignore[arg-type]


def test_a_wide_view_of_the_wrong_size_is_named_in_bytes() -> None:
    with pytest.raises(CryptoError, match="must be 32 bytes, got 64"):
        aead.seal(_wide(bytes(64)), b"x", **BINDING)  # 32 items of 2 bytes  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    label=st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4)),
    item=st.sampled_from(["B", "H", "I"]),
)
def test_any_view_of_a_label_binds_exactly_its_bytes(label: bytes, item: str) -> None:
    """A label's view opens under the same bytes and under no other label."""
    sealed = aead.seal(KEY, b"s", **{**BINDING, "label": _wide(label, item)})  # type: ignore[arg-type]
    assert aead.open_sealed(KEY, sealed, **{**BINDING, "label": label}) == b"s"  # type: ignore[arg-type]
    with pytest.raises(DecryptionError):
        aead.open_sealed(KEY, sealed, **{**BINDING, "label": label + b"\x00"})  # type: ignore[arg-type]


def test_numpy_party_ids_bind_like_ints() -> None:
    sealed = aead.seal(KEY, b"s", **{**BINDING, "sender": np.int64(3), "recipient": np.uint32(4)})  # type: ignore[arg-type]
    assert aead.open_sealed(KEY, sealed, **BINDING) == b"s"  # type: ignore[arg-type]
