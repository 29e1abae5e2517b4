"""The every-client secret context is parsed only once a pinned fingerprint is given.

:meth:`PublicAggregationContext.from_bytes` refuses a missing pin before TenSEAL sees a
byte (:class:`UnpinnedContext`); :meth:`SharedKeyClient.from_bytes` handed the bytes to
TenSEAL's C++ parser first and noticed the missing pin only afterwards, as a
ContextMismatch, so a caller that left the pin out still had a peer's bytes parsed.
"""

from __future__ import annotations

import pytest

import secagg.he.keys as keys_module
from secagg.he import ContextMismatch, UnpinnedContext, choose_parameters
from secagg.he.keys import KeyHolder, KeyMode, SharedKeyClient

PARAMS = choose_parameters(2, 1.0, 1e-3)


@pytest.fixture(scope="module")
def holder() -> KeyHolder:
    return KeyHolder(PARAMS, mode=KeyMode.EVERY_CLIENT)


@pytest.mark.parametrize(
    "pin", [None, b"", bytes(31), bytes(33), "00" * 32, bytearray(32)], ids=repr
)
def test_no_pin_no_parse(holder: KeyHolder, pin: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(_: bytes) -> None:
        raise AssertionError("TenSEAL was handed the bytes before the pin was checked")

    monkeypatch.setattr(keys_module.ts, "context_from", parse)
    with pytest.raises(UnpinnedContext, match="an every-client secret context is parsed only"):
        SharedKeyClient.from_bytes(
            holder.export_client_secret_context(),
            PARAMS,
            expected_fingerprint=pin,  # type: ignore[arg-type]
        )


def test_a_pin_of_another_key_is_still_a_mismatch_and_the_right_one_loads(
    holder: KeyHolder,
) -> None:
    secret = holder.export_client_secret_context()
    with pytest.raises(ContextMismatch, match="does not belong"):
        SharedKeyClient.from_bytes(secret, PARAMS, expected_fingerprint=bytes(32))
    client = SharedKeyClient.from_bytes(secret, PARAMS, expected_fingerprint=holder.fingerprint)
    assert client.fingerprint == holder.fingerprint and client.is_private()
