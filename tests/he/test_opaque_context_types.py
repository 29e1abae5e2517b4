"""The server's unparsed view of the key holder's context refuses, by type and before
any allocation, what is not a blob of bytes and a 32-byte fingerprint.

``OpaquePublicContext`` began with ``bytes(data)``: an integer became that many zero
bytes (10^7 allocated 10 MB, and a larger one as much as asked, before the size check
refused it as "public context of 10000000 bytes"), and a fingerprint of None or a str
failed as Python's TypeError in ``len`` or ``hmac.compare_digest``. The round's own
code passes the blobs it read off the wire; these are a caller's mistakes, refused as
the message faults the class documents (MalformedMessage, ContextMismatch).
"""

from __future__ import annotations

import functools
import tracemalloc

import pytest

pytest.importorskip("tenseal")

from secagg.errors import MalformedMessage
from secagg.he.context import OpaquePublicContext
from secagg.he.errors import ContextMismatch
from secagg.he.keys import KeyHolder
from secagg.he.params import choose_parameters


@functools.cache
def _holder() -> KeyHolder:
    return KeyHolder(choose_parameters(4, 1.0, 1e-3))


@pytest.mark.parametrize("data", [10**7, None, "text", 3.5, [1, 2, 3]], ids=repr)
def test_a_blob_that_is_no_bytes_is_refused_without_allocating(data: object) -> None:
    holder = _holder()
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="bytes"):
            OpaquePublicContext(data, holder.params, fingerprint=holder.fingerprint)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


@pytest.mark.parametrize(
    "fingerprint",
    [None, "f" * 32, 32, bytearray(32), memoryview(bytes(32))],
    # by type: a memoryview's repr holds its address, which differs between xdist workers
    ids=["None", "str", "int", "bytearray", "memoryview"],
)
def test_a_fingerprint_that_is_no_32_bytes_is_a_context_mismatch(fingerprint: object) -> None:
    holder = _holder()
    with pytest.raises(ContextMismatch):
        OpaquePublicContext(holder.public_context_bytes, holder.params, fingerprint=fingerprint)  # type: ignore[arg-type]


def test_the_blob_and_its_fingerprint_are_still_taken() -> None:
    holder = _holder()
    for blob in (holder.public_context_bytes, bytearray(holder.public_context_bytes)):
        context = OpaquePublicContext(blob, holder.params, fingerprint=holder.fingerprint)
        assert context.public_context_bytes == holder.public_context_bytes
        assert type(context.public_context_bytes) is bytes
        assert context.fingerprint == holder.fingerprint
