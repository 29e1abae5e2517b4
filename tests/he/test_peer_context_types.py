"""A peer's context blob (the public context a client loads, the secret context an
every-client member loads) given as something other than bytes.

``PublicAggregationContext.from_bytes`` hashed ``data`` first: a str or None failed as
hashlib's TypeError, and a memoryview of the very bytes pinned hashed to the pin and was
then refused as "not a TenSEAL context" (TenSEAL's parser takes bytes only), as was the
every-client secret context given as a memoryview. A transport that frames its messages
without copying hands such views on; the context's layer takes any bytes-like blob and
refuses the rest as the message fault it documents (InvalidContext).
"""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("tenseal")

from secagg.he.context import PublicAggregationContext
from secagg.he.errors import InvalidContext
from secagg.he.keys import KeyHolder, KeyMode, SharedKeyClient
from secagg.he.params import choose_parameters


@functools.cache
def _holder() -> KeyHolder:
    return KeyHolder(choose_parameters(4, 1.0, 1e-3), mode=KeyMode.EVERY_CLIENT)


@pytest.mark.parametrize("data", ["text", None, 12, 3.5], ids=repr)
def test_a_public_context_that_is_no_bytes_is_an_invalid_context(data: object) -> None:
    holder = _holder()
    with pytest.raises(InvalidContext, match="bytes"):
        PublicAggregationContext.from_bytes(
            data,  # type: ignore[arg-type]
            holder.params,
            expected_fingerprint=holder.fingerprint,
        )


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_the_pinned_public_context_loads_from_any_bytes_like_blob(wrap: type) -> None:
    holder = _holder()
    context = PublicAggregationContext.from_bytes(
        wrap(holder.public_context_bytes),
        holder.params,
        expected_fingerprint=holder.fingerprint,
    )
    assert context.fingerprint == holder.fingerprint
    assert type(context.public_context_bytes) is bytes


@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=lambda w: w.__name__)
def test_the_every_client_secret_context_loads_from_any_bytes_like_blob(wrap: type) -> None:
    holder = _holder()
    client = SharedKeyClient.from_bytes(
        wrap(holder.export_client_secret_context()),
        holder.params,
        expected_fingerprint=holder.fingerprint,
    )
    assert client.fingerprint == holder.fingerprint


@pytest.mark.parametrize("data", ["text", None, 12], ids=repr)
def test_an_every_client_context_that_is_no_bytes_is_an_invalid_context(data: object) -> None:
    holder = _holder()
    with pytest.raises(InvalidContext, match="bytes"):
        SharedKeyClient.from_bytes(
            data,  # type: ignore[arg-type]
            holder.params,
            expected_fingerprint=holder.fingerprint,
        )
