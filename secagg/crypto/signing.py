"""Ed25519 identities: client signing keys and the server's ledger key.

A client's long-term signing key signs its advertised public keys (with the digest
of the round setup it was shown) and, in the consistency check, the list of
survivors, so that a malicious server can neither substitute keys nor show
different clients different setups or survivor sets. The privacy
ledger signs its rows and its head with the server's key.

Keys that live on disk use the standard PEM forms: PKCS#8 without encryption for
a private key (:meth:`SigningKey.to_pem`, written owner-only by
:func:`write_private_file`) and SubjectPublicKeyInfo for a public key
(:meth:`VerifyKey.to_pem`), so OpenSSL and other tools read them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from secagg.durable import write_atomically
from secagg.errors import ConfigurationError, SignatureError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
PRIVATE_FILE_MODE = 0o600
_BYTES_LIKE = (bytes, bytearray, memoryview)

#: the prime of edwards25519's field: a public key encodes y (255 bits, little-endian)
#: and the sign of x (the top bit); a y at or above it is a second spelling of y - p
_FIELD_PRIME = 2**255 - 19
_Y_BITS = (1 << 255) - 1
#: y of one pair of the points of order 8 (the other pair's y is p minus it)
_ORDER_8_Y = 0x5FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
#: the y-coordinates of edwards25519's eight points of small order (its 8-torsion: the
#: identity y = 1, the point of order 2 y = -1, the two of order 4 y = 0, the four of
#: order 8 at these two y, each with both signs of x); every point with such a y has
#: small order, so refusing the y refuses all eight points, with either sign bit
#: ("Taming the many EdDSAs", Chalkias et al., eprint 2020/1244, the small-order table)
_SMALL_ORDER_Y = frozenset({0, 1, _FIELD_PRIME - 1, _ORDER_8_Y, _FIELD_PRIME - _ORDER_8_Y})


def _check_message(message: object) -> None:
    """A message to sign or verify is bytes-like, or a typed error naming its type."""
    if not isinstance(message, _BYTES_LIKE):
        raise ConfigurationError(f"a signed message is bytes, not {type(message).__name__}")


class Verifier(Protocol):
    """What the protocol needs of a party's identity key: Ed25519 or a certificate's."""

    raw: bytes

    def verify(self, signature: bytes, message: bytes) -> None: ...


class Signer(Protocol):
    """What the protocol needs of its own identity: 64-byte signatures."""

    def sign(self, message: bytes) -> bytes: ...


class WeakPublicKey(SignatureError):
    """An Ed25519 public key that proves nothing: a point of small order, or a second
    (non-canonical) spelling of a point; refused when the key is made, before any
    signature is checked against it."""


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key: 32 bytes, canonical, not of small order.

    Why small order is refused: RFC 8032 verification accepts a signature ``R || S``
    when ``[S]B = R + [k]A``. For the identity key ``A`` the signature ``R`` = identity,
    ``S`` = 0 (``01 00..00 || 0^32``) verifies for every message, and for the other
    seven small-order keys ``[k]A`` takes at most eight values, so a message tried a few
    times has a forgery too. OpenSSL checks no such thing, so a ledger embedding the
    identity key (``secagg audit verify`` with no ``--pubkey``) could be rewritten at
    will and still verify. No honest key generation produces one (a key is a multiple
    of the base point, of prime order).
    """

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, _BYTES_LIKE) or memoryview(self.raw).nbytes != (
            PUBLIC_KEY_BYTES
        ):
            raise SignatureError(f"Ed25519 public key must be {PUBLIC_KEY_BYTES} bytes")
        # kept as immutable bytes: a bytearray was stored as given, so every verify
        # failed with cryptography's bare TypeError, the key could not be hashed, and
        # the caller could rewrite the checked key (into a small-order one) afterwards
        object.__setattr__(self, "raw", bytes(self.raw))
        y = int.from_bytes(self.raw, "little") & _Y_BITS
        if y >= _FIELD_PRIME:
            raise WeakPublicKey("Ed25519 public key is not canonical (its y is not below p)")
        if y in _SMALL_ORDER_Y:
            raise WeakPublicKey(
                "Ed25519 public key is a point of small order, for which signatures can be forged"
            )

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
        if not isinstance(signature, _BYTES_LIKE) or len(signature) != SIGNATURE_BYTES:
            raise SignatureError("signature has the wrong length")
        _check_message(message)
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError("signature does not verify") from exc

    def to_pem(self) -> bytes:
        """The key as a PEM SubjectPublicKeyInfo block (``-----BEGIN PUBLIC KEY-----``)."""
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, data: bytes) -> VerifyKey:
        """Parse a PEM public key; :class:`ConfigurationError` unless it is an Ed25519 one."""
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError("not an Ed25519 public key")
        try:
            return cls(key.public_bytes_raw())
        except SignatureError as exc:  # a small-order key in a well-formed file
            raise ConfigurationError(f"not a usable Ed25519 public key: {exc}") from None


class SigningKey:
    """An Ed25519 private key; ``repr`` never shows it."""

    def __init__(self, private: Ed25519PrivateKey | None = None) -> None:
        if private is not None and not isinstance(private, Ed25519PrivateKey):
            raise ConfigurationError(
                f"a signing key wraps an Ed25519 private key, not {type(private).__name__}"
            )
        self._private = private or Ed25519PrivateKey.generate()
        self.verify_key = VerifyKey(self._private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls()

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (bytes-like; a str was cryptography's bare TypeError)."""
        _check_message(message)
        return self._private.sign(bytes(message))

    def to_pem(self) -> bytes:
        """The *secret* key as unencrypted PEM PKCS#8 (``-----BEGIN PRIVATE KEY-----``).

        Write it with :func:`write_private_file`, never to a log.
        """
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Parse an unencrypted PEM private key; :class:`ConfigurationError` unless Ed25519."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError("not an Ed25519 private key")
        return cls(key)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.verify_key.raw.hex()[:16]}…)"


# --- identities bound to X.509 certificates (the active variant in a federation) ---------


class CertificateVerifyKey:
    """The ECDSA P-256 public key of a party's certificate, as a protocol verify key.

    In a federation every party already holds a CA-issued certificate (its mTLS
    identity). Signing the protocol's messages with that same key binds the active
    variant's signatures to the certificate: a server that substitutes a key must
    also forge a certificate of the federation's CA. Signatures are the fixed-size
    raw form ``r || s`` (32 bytes each), the same 64 bytes as Ed25519's, so the
    protocol's messages are unchanged.
    """

    def __init__(self, public: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise SignatureError("a certificate identity must be an ECDSA P-256 key")
        self._public = public
        self.raw = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @classmethod
    def from_certificate(cls, der: bytes) -> CertificateVerifyKey:
        """The key of a DER certificate (whose chain the caller has checked)."""
        try:
            cert = x509.load_der_x509_certificate(der)
            public = cert.public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SignatureError(f"not a usable certificate: {exc}") from None
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise SignatureError("a certificate identity must be an ECDSA P-256 key")
        return cls(public)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
        if not isinstance(signature, _BYTES_LIKE) or len(signature) != SIGNATURE_BYTES:
            raise SignatureError("signature has the wrong length")
        _check_message(message)
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        try:
            self._public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError("signature does not verify") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CertificateVerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"CertificateVerifyKey({self.raw.hex()[:16]}…)"


class CertificateSigningKey:
    """A party's certificate private key (ECDSA P-256) signing protocol messages."""

    def __init__(self, private: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != (
            "secp256r1"
        ):
            raise ConfigurationError("a certificate identity must be an ECDSA P-256 key")
        self._private = private
        self.verify_key = CertificateVerifyKey(private.public_key())

    @classmethod
    def from_pem(cls, data: bytes) -> CertificateSigningKey:
        """Parse the certificate's unencrypted PEM private key."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigurationError("the certificate key is not an ECDSA key")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` as the raw 64-byte ``r || s`` (bytes-like, as for Ed25519)."""
        _check_message(message)
        r, s = decode_dss_signature(self._private.sign(bytes(message), ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"CertificateSigningKey(public={self.verify_key.raw.hex()[:16]}…)"


def write_private_file(path: str | Path, data: bytes) -> Path:
    """Write secret ``data`` (a private key PEM, maybe with more lines) to ``path``.

    Through :func:`secagg.durable.write_atomically`: the file is 0600 (owner read and
    write only) from its first byte and after, and replaced whole. Before, an existing
    file was truncated in place and kept its mode, so a key rewritten over a 0644 file
    stayed readable by others, and a crash mid-write left a torn key (review,
    2026-12-05). The folder must exist (a key path is typed by an operator).
    """
    path = Path(path)
    write_atomically(path, data, mode=PRIVATE_FILE_MODE, make_folder=False)
    return path
