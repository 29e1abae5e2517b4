"""AEAD sealing of small messages (Shamir shares) between two named parties.

AES-256-GCM with a random 96-bit nonce. The associated data binds the sender,
the recipient and the round, so a sealed share cannot be replayed into another
round, re-addressed to another recipient, or claimed by another sender: any of
those fails authentication and raises :class:`~secagg.errors.DecryptionError`.
An optional ``context`` (fixed-length by convention of the caller) is bound as
well; the protocol puts both parties' public keys there, so that two clients
who were shown different keys for each other find out when a share fails to
open, instead of masking with seeds that do not cancel.

How many messages one key may seal. The nonce is 96 random bits from the OS CSPRNG,
never a counter, so there is no counter state to lose or replay: a process that
restarts and seals again under the same key draws fresh nonces. Random nonces bound
the use of one key instead: NIST SP 800-38D allows at most 2^32 messages per key
(a nonce collision, which reveals the XOR of two plaintexts and lets the
authentication key be recovered, then has probability below 2^-33). No path here
comes near it, so :func:`seal` keeps no count (it could not anyway: it holds no
state). The protocol's channel keys are derived per round and per pair of parties
(``kx.derive_key``, the round id as salt) from X25519 keys each client draws afresh
for every round (``Client._on_setup``), and each key seals two messages, one share
bundle each way; tests/protocol/test_channel_key_usage.py checks that across two runs
of the same round id, the restart case. A caller that seals many messages under one
long-lived key must rotate it well before 2^32.
"""

from __future__ import annotations

import os
import struct
from numbers import Integral

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secagg.errors import ConfigurationError, CryptoError, DecryptionError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
_AD_PREFIX = b"secagg/v1/aead/"
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _associated_data(
    label: bytes, round_id: bytes, sender: int, recipient: int, context: bytes
) -> bytes:
    return (
        _AD_PREFIX
        + struct.pack(">H", len(label))
        + label
        + struct.pack(">H", len(round_id))
        + round_id
        + struct.pack(">QQ", sender, recipient)
        + context
    )


def _check_key(key: bytes) -> bytes:
    """The key as 32 bytes, measured in bytes: a memoryview of 32 two-byte items
    passed as "32" and failed in cryptography as a bare TypeError."""
    if not isinstance(key, _BYTES_LIKE) or memoryview(key).nbytes != KEY_BYTES:
        got = memoryview(key).nbytes if isinstance(key, _BYTES_LIKE) else type(key).__name__
        raise CryptoError(f"AEAD key must be {KEY_BYTES} bytes, got {got}")
    return bytes(key)


def _check_binding(
    message: object,
    label: object,
    round_id: object,
    sender: object,
    recipient: object,
    context: object,
) -> tuple[bytes, bytes, bytes, bytes]:
    """What is bound must be what it says, or a typed error naming it: a str message,
    label or context failed as a bare TypeError, a party id of -1 or 2^64 and a label of
    64 KiB as struct.error.

    Returns message, label, round id and context as bytes: the associated data's
    length prefixes count bytes, and a memoryview of wider items (``len`` counts
    items) was prefixed with its item count, so it bound other associated data than
    the same bytes given as bytes, and a sealed message did not open."""
    for name, value in (
        ("message", message),
        ("label", label),
        ("round_id", round_id),
        ("context", context),
    ):
        if not isinstance(value, _BYTES_LIKE):
            raise ConfigurationError(f"AEAD {name} must be bytes, not {type(value).__name__}")
    for name, value in (("label", label), ("round_id", round_id)):
        if memoryview(value).nbytes > 0xFFFF:  # type: ignore[arg-type]
            raise ConfigurationError(f"AEAD {name} must be shorter than 64 KiB")
    for name, party in (("sender", sender), ("recipient", recipient)):
        if isinstance(party, bool) or not isinstance(party, Integral) or not 0 <= party < 1 << 64:
            raise ConfigurationError(f"AEAD {name} must be a party id in [0, 2^64), not {party!r}")
    return bytes(message), bytes(label), bytes(round_id), bytes(context)  # type: ignore[arg-type]


def seal(
    key: bytes,
    plaintext: bytes,
    *,
    label: bytes,
    round_id: bytes,
    sender: int,
    recipient: int,
    context: bytes = b"",
) -> bytes:
    """Encrypt and authenticate; returns ``nonce || ciphertext || tag``."""
    key = _check_key(key)
    plaintext, label, round_id, context = _check_binding(
        plaintext, label, round_id, sender, recipient, context
    )
    nonce = os.urandom(NONCE_BYTES)
    ad = _associated_data(label, round_id, sender, recipient, context)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, ad)


def open_sealed(
    key: bytes,
    sealed: bytes,
    *,
    label: bytes,
    round_id: bytes,
    sender: int,
    recipient: int,
    context: bytes = b"",
) -> bytes:
    """Authenticate and decrypt, or raise :class:`DecryptionError` (no detail leaked)."""
    key = _check_key(key)
    sealed, label, round_id, context = _check_binding(
        sealed, label, round_id, sender, recipient, context
    )
    if len(sealed) < OVERHEAD:
        raise DecryptionError("sealed message too short")
    ad = _associated_data(label, round_id, sender, recipient, context)
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], ad)
    except InvalidTag as exc:
        raise DecryptionError(f"authentication failed for message {sender} -> {recipient}") from exc
