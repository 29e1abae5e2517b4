"""Identity keys keep what they checked, and refuse what they cannot sign or wrap.

``VerifyKey(bytearray(raw))`` was accepted and stored as the bytearray: every
``verify`` then failed with cryptography's bare ``TypeError`` ("'bytearray' object is
not an instance of 'bytes'"), the key could not be hashed (a dict of keys, a set of
signers), and the caller could overwrite the key after its small-order check. A str
message to ``sign`` and a str in place of a private key failed as bare
TypeError/AttributeError. Each case below failed before this change.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from secagg.crypto.signing import CertificateSigningKey, SigningKey, VerifyKey
from secagg.errors import ConfigurationError, SignatureError

SIGNER = SigningKey()
MESSAGE = b"survivors: 1, 2, 3"


@pytest.mark.parametrize("buffer", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_a_verify_key_from_a_buffer_verifies_and_hashes_like_one_from_bytes(buffer: type) -> None:
    key = VerifyKey(buffer(SIGNER.verify_key.raw))
    key.verify(SIGNER.sign(MESSAGE), MESSAGE)
    assert type(key.raw) is bytes
    assert key == SIGNER.verify_key and hash(key) == hash(SIGNER.verify_key)
    with pytest.raises(SignatureError, match="does not verify"):
        key.verify(SIGNER.sign(b"another message"), MESSAGE)


def test_a_checked_verify_key_cannot_be_rewritten_through_its_buffer() -> None:
    """The identity point (y = 1) is refused when given; overwriting the bytearray a
    key was made from afterwards must not turn it into that key."""
    identity = (1).to_bytes(32, "little")
    with pytest.raises(SignatureError, match="small order"):
        VerifyKey(identity)
    raw = bytearray(SIGNER.verify_key.raw)
    key = VerifyKey(raw)
    raw[:] = identity
    assert key.raw == SIGNER.verify_key.raw
    forged = identity + bytes(32)  # R = identity, S = 0: valid for every message under A = identity
    with pytest.raises(SignatureError, match="does not verify"):
        key.verify(forged, MESSAGE)


def test_a_verify_key_of_a_multi_byte_buffer_is_measured_in_bytes() -> None:
    """A memoryview of 16 two-byte items is 32 bytes: measured by len() it was 16."""
    wide = memoryview(SIGNER.verify_key.raw).cast("H")
    assert VerifyKey(wide) == SIGNER.verify_key  # type: ignore[arg-type]


@pytest.mark.parametrize("message", ["text", None, 7], ids=["str", "None", "int"])
def test_signing_a_message_that_is_not_bytes_is_a_typed_error(message: object) -> None:
    with pytest.raises(ConfigurationError, match="a signed message is bytes"):
        SIGNER.sign(message)  # type: ignore[arg-type]
    certificate = CertificateSigningKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ConfigurationError, match="a signed message is bytes"):
        certificate.sign(message)  # type: ignore[arg-type]


def test_buffers_are_signed_like_bytes() -> None:
    signature = SIGNER.sign(memoryview(bytearray(MESSAGE)))
    SIGNER.verify_key.verify(signature, MESSAGE)
    certificate = CertificateSigningKey(ec.generate_private_key(ec.SECP256R1()))
    certificate.verify_key.verify(certificate.sign(bytearray(MESSAGE)), MESSAGE)


@pytest.mark.parametrize("private", ["k" * 32, b"k" * 32], ids=["str", "bytes"])
def test_a_signing_key_wraps_only_an_ed25519_private_key(private: object) -> None:
    """Before: AttributeError ("'str' object has no attribute 'public_key'")."""
    with pytest.raises(ConfigurationError, match="Ed25519 private key"):
        SigningKey(private)  # type: ignore[arg-type]
