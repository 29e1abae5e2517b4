"""X25519 key agreement with HKDF-SHA256, domain-separated by purpose, round and parties.

Why the separation: the same pair of X25519 keys must never yield the same
symmetric key in two contexts. The derived key is bound to

* a *purpose* label (e.g. share encryption vs. pairwise mask seed), so a channel
  key can never double as a mask seed;
* the round id, so keys of one round are useless in another;
* the unordered pair of party ids, so both ends derive the same key and no third
  party's key collides with it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secagg.errors import ConfigurationError, CryptoError

PUBLIC_KEY_BYTES = 32
PRIVATE_KEY_BYTES = 32
_INFO_PREFIX = b"secagg/v1/kx/"


@dataclass(frozen=True, repr=False)
class KeyPair:
    """An X25519 key pair; ``repr`` never shows the private half."""

    private: X25519PrivateKey
    public_bytes: bytes

    def private_bytes(self) -> bytes:
        """Raw private key: only for Shamir-sharing the mask key, never for logging."""
        return self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public_bytes.hex()[:16]}…)"


def generate_keypair() -> KeyPair:
    """Fresh X25519 key pair from the OS CSPRNG (via OpenSSL)."""
    private = X25519PrivateKey.generate()
    return KeyPair(private, private.public_key().public_bytes_raw())


def keypair_from_private_bytes(raw: bytes) -> KeyPair:
    """Rebuild a key pair from 32 raw private bytes (e.g. a reconstructed mask key)."""
    if len(raw) != PRIVATE_KEY_BYTES:
        raise CryptoError(f"X25519 private key must be {PRIVATE_KEY_BYTES} bytes, got {len(raw)}")
    private = X25519PrivateKey.from_private_bytes(raw)
    return KeyPair(private, private.public_key().public_bytes_raw())


def load_public_key(raw: bytes) -> X25519PublicKey:
    """Parse 32 raw public bytes, refusing anything else with a typed error."""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise CryptoError(f"X25519 public key must be {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


# Any scalar works as the probe: X25519 clamps it to a multiple of the cofactor
# 8, which sends every point of order 1, 2, 4 or 8 (on the curve or its twist,
# in any of their encodings) to the all-zero output, and no point of large order.
_PROBE = X25519PrivateKey.from_private_bytes(b"secagg/v1/kx/low-order-probe/\x00\x00\x00")


def check_public_key(raw: bytes) -> X25519PublicKey:
    """Parse 32 raw public bytes and refuse a low-order point (e.g. all zeros).

    Key agreement with a low-order key gives the all-zero secret whatever the
    other side's private key, so every neighbour of a client that advertises one
    would fail to derive a key with it. Refusing it at advertisement (one trial
    exchange with a fixed scalar) names the culprit before anyone else is
    affected. Public keys are public, so the check need not be constant time.
    """
    key = load_public_key(raw)
    try:
        _PROBE.exchange(key)
    except ValueError as exc:  # cryptography raises on an all-zero result
        raise CryptoError("low-order X25519 public key") from exc
    return key


def derive_key(
    private: X25519PrivateKey,
    peer_public: bytes | X25519PublicKey,
    *,
    purpose: bytes,
    round_id: bytes,
    party_a: int,
    party_b: int,
    length: int = 32,
) -> bytes:
    """Agree on a key with a peer and derive ``length`` bytes bound to the context.

    ``party_a`` and ``party_b`` may be given in either order: both ends of the
    pair derive the same key. A low-order peer key (all-zero shared secret) is
    refused, as RFC 7748 recommends.
    """
    if not purpose or b"/" in purpose:
        raise ConfigurationError("purpose must be a non-empty label without '/'")
    if party_a == party_b:
        raise ConfigurationError("key agreement needs two distinct parties")
    peer = load_public_key(peer_public) if isinstance(peer_public, bytes) else peer_public
    try:
        shared = private.exchange(peer)
    except ValueError as exc:  # cryptography raises on an all-zero result
        raise CryptoError("key agreement with a low-order public key") from exc
    low, high = sorted((party_a, party_b))
    info = _INFO_PREFIX + purpose + b"/" + struct.pack(">QQ", low, high)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=round_id, info=info).derive(shared)
