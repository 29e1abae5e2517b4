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
from numbers import Integral

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secagg.errors import ConfigurationError, CryptoError

PUBLIC_KEY_BYTES = 32
PRIVATE_KEY_BYTES = 32
#: The one length of a round id, the HKDF salt of every derived key. One length,
#: because HMAC pads a short key with zeros: with any length allowed, the round ids
#: b"r" and b"r\x00" (or b"" and 32 zero bytes, or no round id at all) derived the same
#: key. The protocol's round ids are this long (protocol.messages.ROUND_ID_BYTES).
ROUND_ID_BYTES = 16
_INFO_PREFIX = b"secagg/v1/kx/"
_MAX_OKM = 255 * 32  # HKDF-SHA256's longest output
_BYTES_LIKE = (bytes, bytearray, memoryview)


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


def _raw_key(raw: object, size: int, what: str) -> bytes:
    """``raw`` as ``size`` immutable bytes, measured in bytes (a memoryview of wider
    items too), or :class:`CryptoError` naming the size or type."""
    if not isinstance(raw, _BYTES_LIKE):
        raise CryptoError(f"X25519 {what} key must be {size} bytes, got {type(raw).__name__}")
    if memoryview(raw).nbytes != size:
        raise CryptoError(f"X25519 {what} key must be {size} bytes, got {memoryview(raw).nbytes}")
    return bytes(raw)


def keypair_from_private_bytes(raw: bytes) -> KeyPair:
    """Rebuild a key pair from 32 raw private bytes (e.g. a reconstructed mask key)."""
    private = X25519PrivateKey.from_private_bytes(_raw_key(raw, PRIVATE_KEY_BYTES, "private"))
    return KeyPair(private, private.public_key().public_bytes_raw())


def load_public_key(raw: bytes) -> X25519PublicKey:
    """Parse 32 raw public bytes, refusing anything else with a typed error."""
    return X25519PublicKey.from_public_bytes(_raw_key(raw, PUBLIC_KEY_BYTES, "public"))


# The u-coordinates of the points of order 1, 2, 4 or 8 on Curve25519 and its twist,
# each in every 255-bit encoding (0 and 1 also as p and p + 1), little-endian: the
# list libsodium's ``crypto_scalarmult`` refuses (RFC 7748 section 7 discusses them).
# X25519 ignores the top bit of a u-coordinate, so a key is compared with it cleared.
# tests/crypto/test_primitives.py checks the list against the definition: each entry
# gives the all-zero secret with a random scalar, and keys near 0 and p that are not
# listed do not.
_LOW_ORDER_U: frozenset[bytes] = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",  # 0
        "0100000000000000000000000000000000000000000000000000000000000000",  # 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  # order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  # order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p - 1
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p (0)
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p + 1 (1)
    )
)


def is_low_order(raw: bytes) -> bool:
    """Whether 32 raw public bytes encode a point of small order (see ``_LOW_ORDER_U``).

    A table lookup, not a trial exchange: the server checks two keys per client as
    they are advertised, and a scalar multiplication (about 27 µs here) for each was
    a fifth of its CPU in a round of 100 clients. Public keys are public, so the
    lookup need not be constant time.
    """
    raw = _raw_key(raw, PUBLIC_KEY_BYTES, "public")  # a str or None was a bare TypeError
    return raw[:31] + bytes((raw[31] & 0x7F,)) in _LOW_ORDER_U


def check_public_key(raw: bytes) -> X25519PublicKey:
    """Parse 32 raw public bytes and refuse a low-order point (e.g. all zeros).

    Key agreement with a low-order key gives the all-zero secret whatever the
    other side's private key, so every neighbour of a client that advertises one
    would fail to derive a key with it. Refusing it at advertisement names the
    culprit before anyone else is affected. (Each agreement refuses an all-zero
    secret too, in :func:`derive_key`: the check here is for blame, not safety.)
    """
    key = load_public_key(raw)
    if is_low_order(raw):
        raise CryptoError("low-order X25519 public key")
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
    if not isinstance(private, X25519PrivateKey):  # a str failed as an AttributeError
        raise ConfigurationError(
            f"private must be an X25519 private key, not {type(private).__name__}"
        )
    if not isinstance(purpose, bytes) or not purpose or b"/" in purpose:
        raise ConfigurationError("purpose must be a non-empty bytes label without '/'")
    for name, party in (("party_a", party_a), ("party_b", party_b)):
        # packed as u64 into the info: -1 or 2^64 failed as struct.error, "1" likewise
        if isinstance(party, bool) or not isinstance(party, Integral) or not 0 <= party < 1 << 64:
            raise ConfigurationError(f"{name} must be a party id in [0, 2^64), not {party!r}")
    if party_a == party_b:
        raise ConfigurationError("key agreement needs two distinct parties")
    # the HKDF salt: None or b"" bound no round at all, a str was a bare TypeError, and
    # round ids of other lengths collide (see ROUND_ID_BYTES)
    if not isinstance(round_id, _BYTES_LIKE) or memoryview(round_id).nbytes != ROUND_ID_BYTES:
        got = (
            f"{memoryview(round_id).nbytes} bytes"
            if isinstance(round_id, _BYTES_LIKE)
            else type(round_id).__name__
        )
        raise ConfigurationError(f"round_id must be {ROUND_ID_BYTES} bytes, not {got}")
    # HKDF gives at most 255 hash lengths; length=0 returned an empty "key"
    if isinstance(length, bool) or not isinstance(length, Integral) or not 1 <= length <= _MAX_OKM:
        raise ConfigurationError(f"length must be an int in [1, {_MAX_OKM}], not {length!r}")
    if isinstance(peer_public, _BYTES_LIKE):  # a bytearray was refused as "not bytes"
        peer = load_public_key(peer_public)
    elif isinstance(peer_public, X25519PublicKey):
        peer = peer_public
    else:  # a str failed as a bare TypeError inside the exchange
        kind = type(peer_public).__name__
        raise ConfigurationError(
            f"peer_public must be 32 bytes or an X25519 public key, not {kind}"
        )
    try:
        shared = private.exchange(peer)
    except ValueError as exc:  # cryptography raises on an all-zero result
        raise CryptoError("key agreement with a low-order public key") from exc
    low, high = sorted((party_a, party_b))
    info = _INFO_PREFIX + purpose + b"/" + struct.pack(">QQ", low, high)
    return HKDF(
        algorithm=hashes.SHA256(), length=int(length), salt=bytes(round_id), info=info
    ).derive(shared)
