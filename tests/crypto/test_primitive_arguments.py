"""The primitives refuse wrongly typed arguments with the engine's typed errors.

The crypto layer is called by the protocol with checked values, but it is also a
library API, and each of these failed as a bare ``TypeError``, a ``struct.error``
(not even an ``Exception`` a caller would think of) or, worse, succeeded: HKDF with
``length=0`` returned an empty "key", and a share point of 1.5 was truncated by numpy
to the point 1. Each case below failed before this change (counted in the commit).
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.crypto import aead, kx, shamir
from secagg.crypto.signing import SigningKey, VerifyKey
from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError, CryptoError, SecretSharingError, SignatureError

ROUND = b"r" * 16
KEY = b"k" * 32
PAIR = kx.generate_keypair()


def _seal(**change: object) -> bytes:
    args: dict = dict(label=b"share", round_id=ROUND, sender=1, recipient=2)
    key, plaintext = change.pop("key", KEY), change.pop("plaintext", b"x")
    args.update(change)
    return aead.seal(key, plaintext, **args)  # type: ignore[arg-type]


def _open(**change: object) -> bytes:
    args: dict = dict(label=b"share", round_id=ROUND, sender=1, recipient=2)
    sealed = change.pop("sealed", _seal())
    args.update(change)
    return aead.open_sealed(KEY, sealed, **args)  # type: ignore[arg-type]


def _derive(**change: object) -> bytes:
    args: dict = dict(purpose=b"channel", round_id=ROUND, party_a=1, party_b=2)
    peer = change.pop("peer", PAIR.public_bytes)
    args.update(change)
    return kx.derive_key(PAIR.private, peer, **args)  # type: ignore[arg-type]


CASES = {
    # before: TypeError
    "seal-str-key": (lambda: _seal(key="k" * 32), CryptoError),
    "seal-str-plaintext": (lambda: _seal(plaintext="x"), ConfigurationError),
    "seal-str-label": (lambda: _seal(label="share"), ConfigurationError),
    "seal-str-context": (lambda: _seal(context="keys"), ConfigurationError),
    "open-str-sealed": (lambda: _open(sealed="x" * 40), ConfigurationError),
    # before: struct.error
    "seal-negative-sender": (lambda: _seal(sender=-1), ConfigurationError),
    "seal-str-recipient": (lambda: _seal(recipient="2"), ConfigurationError),
    "open-huge-sender": (lambda: _open(sender=1 << 64), ConfigurationError),
    "seal-64k-label": (lambda: _seal(label=b"l" * 70_000), ConfigurationError),
    "derive-negative-party": (lambda: _derive(party_a=-1), ConfigurationError),
    # before: TypeError
    "derive-str-peer": (lambda: _derive(peer="p" * 32), ConfigurationError),
    "derive-str-purpose": (lambda: _derive(purpose="channel"), ConfigurationError),
    "private-key-str": (lambda: kx.keypair_from_private_bytes("x" * 32), CryptoError),
    "public-key-str": (lambda: kx.load_public_key("x" * 32), CryptoError),
    # before: an empty key returned
    "derive-length-0": (lambda: _derive(length=0), ConfigurationError),
    # before: TypeError
    "split-str-secret": (lambda: shamir.split("abc", 2, [1, 2, 3]), SecretSharingError),
    "split-str-threshold": (lambda: shamir.split(b"abc", "2", [1, 2, 3]), SecretSharingError),
    "share-from-str": (lambda: shamir.Share.from_bytes(1, "abcd"), SecretSharingError),
    # before: the point 1.5 became the point 1
    "split-float-point": (lambda: shamir.split(b"abc", 2, [1.5, 2, 3]), SecretSharingError),
    # before: OverflowError
    "split-huge-point": (lambda: shamir.split(b"abc", 2, [1, 2, 1 << 70]), SecretSharingError),
    # before: TypeError
    "verify-key-str": (lambda: VerifyKey("x" * 32), SignatureError),
    "verify-str-signature": (
        lambda: SigningKey().verify_key.verify("s" * 64, b"message"),
        SignatureError,
    ),
    "verify-str-message": (
        lambda: SigningKey().verify_key.verify(b"s" * 64, "message"),
        ConfigurationError,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrongly_typed_argument_is_a_typed_error(case: str) -> None:
    call, error = CASES[case]
    with pytest.raises(error):
        call()


def test_the_checked_arguments_still_work_as_before() -> None:
    """Bytes-like values (bytearray, memoryview) keep working where they did."""
    sealed = _seal(plaintext=bytearray(b"xy"), label=memoryview(b"share"))
    assert _open(sealed=memoryview(sealed)) == b"xy"
    assert _derive(party_a=0, party_b=(1 << 64) - 1, length=16) != _derive(length=16)
    shares = shamir.split(b"secret", 2, [1, 2, 3])
    assert shamir.reconstruct(shares[1:], 2, 6) == b"secret"
    signer = SigningKey()
    signer.verify_key.verify(bytearray(signer.sign(b"m")), memoryview(b"m"))


def _stream() -> KeyedStream:
    return KeyedStream(b"s" * 16)


STREAM_CASES = {
    # before: the bound 1.5 was truncated to 1 (every draw 0), "3" taken as 3
    "float-bound": lambda: _stream().integers(1.5, 3),
    "str-bound": lambda: _stream().integers("3", 3),
    "float-bounds-array": lambda: _stream().integers(np.array([1.5, 2.0])),
    # before: numpy's OverflowError
    "negative-bound": lambda: _stream().integers(-1, 3),
    "huge-bound": lambda: _stream().integers(1 << 64, 3),
    # before: numpy's ValueError or TypeError, naming nothing
    "negative-count": lambda: _stream().integers(3, -1),
    "float-count": lambda: _stream().integers(3, 2.5),
    "float-words": lambda: _stream().words(2.5),
    "str-words": lambda: _stream().words("3"),
    # before: True was one draw
    "bool-words": lambda: _stream().words(True),
}


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_a_keyed_stream_refuses_wrongly_typed_draws(case: str) -> None:
    with pytest.raises(ConfigurationError):
        STREAM_CASES[case]()


def test_a_keyed_streams_integer_draws_are_unchanged_for_every_accepted_form() -> None:
    """The same words, whichever integer form the bound or count takes (numpy's too)."""
    small = _stream().integers(6, 5)
    assert np.array_equal(_stream().integers(np.int64(6), np.int64(5)), small)
    assert np.array_equal(_stream().integers(np.array(6), 5), small)
    big = _stream().integers(1 << 40, 4)
    assert np.array_equal(_stream().integers(np.full(4, 1 << 40, dtype=np.uint64)), big)
    assert np.array_equal(_stream().integers([1 << 40] * 4), big)
