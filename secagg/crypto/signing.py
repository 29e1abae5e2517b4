"""Ed25519 identities for the actively secure variant.

A client's long-term signing key signs its advertised public keys and, in the
consistency check, the list of survivors, so that a malicious server can neither
substitute keys nor show different clients different survivor sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from secagg.errors import SignatureError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_BYTES:
            raise SignatureError(f"Ed25519 public key must be {PUBLIC_KEY_BYTES} bytes")

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
        if len(signature) != SIGNATURE_BYTES:
            raise SignatureError("signature has the wrong length")
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError("signature does not verify") from exc


class SigningKey:
    """An Ed25519 private key; ``repr`` never shows it."""

    def __init__(self, private: Ed25519PrivateKey | None = None) -> None:
        self._private = private or Ed25519PrivateKey.generate()
        self.verify_key = VerifyKey(self._private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.verify_key.raw.hex()[:16]}…)"
