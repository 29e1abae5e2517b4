"""AEAD sealing of small messages (Shamir shares) between two named parties.

AES-256-GCM with a random 96-bit nonce. The associated data binds the sender,
the recipient and the round, so a sealed share cannot be replayed into another
round, re-addressed to another recipient, or claimed by another sender: any of
those fails authentication and raises :class:`~secagg.errors.DecryptionError`.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secagg.errors import DecryptionError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
_AD_PREFIX = b"secagg/v1/aead/"


def _associated_data(label: bytes, round_id: bytes, sender: int, recipient: int) -> bytes:
    return _AD_PREFIX + label + b"/" + round_id + struct.pack(">QQ", sender, recipient)


def seal(
    key: bytes,
    plaintext: bytes,
    *,
    label: bytes,
    round_id: bytes,
    sender: int,
    recipient: int,
) -> bytes:
    """Encrypt and authenticate; returns ``nonce || ciphertext || tag``."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"AEAD key must be {KEY_BYTES} bytes")
    nonce = os.urandom(NONCE_BYTES)
    ad = _associated_data(label, round_id, sender, recipient)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, ad)


def open_sealed(
    key: bytes,
    sealed: bytes,
    *,
    label: bytes,
    round_id: bytes,
    sender: int,
    recipient: int,
) -> bytes:
    """Authenticate and decrypt, or raise :class:`DecryptionError` (no detail leaked)."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"AEAD key must be {KEY_BYTES} bytes")
    if len(sealed) < OVERHEAD:
        raise DecryptionError("sealed message too short")
    ad = _associated_data(label, round_id, sender, recipient)
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], ad)
    except InvalidTag as exc:
        raise DecryptionError(
            f"authentication failed for message {sender} -> {recipient}"
        ) from exc
