"""A derived key is bound to one round id of one length, and its arguments are checked.

The round id is the HKDF salt, and HMAC pads a short key with zeros: the round ids
``b"r"`` and ``b"r\\x00"`` derived the same key, so did ``b""`` and 32 zero bytes, and
``round_id=None`` derived a key bound to no round at all, all without a word. Now a
round id is exactly 16 bytes (the protocol's length), and everything else is a typed
error. So are a str private key (was AttributeError), a bytearray peer key (refused
as "not bytes" although load_public_key takes it), a numpy length (refused as "not an
int"), and is_low_order of a str (a bare TypeError).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from secagg.crypto import kx
from secagg.errors import ConfigurationError, CryptoError

A, B = kx.generate_keypair(), kx.generate_keypair()
ROUND = bytes(range(16))


def _derive(round_id: object = ROUND, **change: object) -> bytes:
    args: dict = dict(purpose=b"channel", party_a=1, party_b=2)
    private, peer = change.pop("private", A.private), change.pop("peer", B.public_bytes)
    args.update(change)
    return kx.derive_key(private, peer, round_id=round_id, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "round_id",
    [None, b"", b"r", b"r" * 15, b"r" * 17, bytes(32), "r" * 16],
    ids=["None", "empty", "1 byte", "15 bytes", "17 bytes", "32 zeros", "str"],
)
def test_a_round_id_of_another_length_or_type_is_refused(round_id: object) -> None:
    with pytest.raises(ConfigurationError, match="round_id must be 16 bytes"):
        _derive(round_id)


def test_round_ids_that_padded_alike_are_now_refused_not_confused() -> None:
    """The collisions the padding made: each pair derived one key before."""
    for short, padded in ((b"r", b"r\x00"), (b"", bytes(32)), (None, bytes(32))):
        with pytest.raises(ConfigurationError):
            _derive(short)
        with pytest.raises(ConfigurationError):
            _derive(padded)


def test_sixteen_byte_round_ids_still_bind_the_key_to_the_round() -> None:
    """The protocol's round ids: every buffer type gives the same key, another id another."""
    from secagg.protocol.messages import ROUND_ID_BYTES

    assert kx.ROUND_ID_BYTES == ROUND_ID_BYTES
    key = _derive(ROUND)
    assert _derive(bytearray(ROUND)) == key == _derive(memoryview(ROUND))
    assert _derive(ROUND[:15] + b"\x00") != _derive(ROUND[:15] + b"\x01")
    assert (
        kx.derive_key(
            B.private, A.public_bytes, purpose=b"channel", round_id=ROUND, party_a=2, party_b=1
        )
        == key
    )


CASES: dict[str, tuple[Callable[[], object], type[Exception]]] = {
    "private str": (lambda: _derive(private="k" * 32), ConfigurationError),
    "private bytes": (lambda: _derive(private=A.private_bytes()), ConfigurationError),
    "is_low_order str": (lambda: kx.is_low_order("x" * 32), CryptoError),  # type: ignore[arg-type]
    "is_low_order None": (lambda: kx.is_low_order(None), CryptoError),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrongly_typed_key_is_a_typed_error(case: str) -> None:
    call, error = CASES[case]
    with pytest.raises(error):
        call()


def test_buffers_and_numpy_integers_are_taken_like_bytes_and_ints() -> None:
    key = _derive(length=16)
    assert _derive(peer=bytearray(B.public_bytes), length=16) == key
    assert _derive(peer=memoryview(B.public_bytes), length=np.int64(16)) == key
    assert (
        kx.keypair_from_private_bytes(memoryview(A.private_bytes())).public_bytes == A.public_bytes
    )
    assert kx.is_low_order(bytearray(32)) and not kx.is_low_order(memoryview(B.public_bytes))
