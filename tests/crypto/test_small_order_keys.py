"""Ed25519 public keys of small order, or spelled non-canonically, are refused when made.

RFC 8032 verification accepts ``R || S`` when ``[S]B = R + [k]A``; OpenSSL (through
``cryptography``) checks nothing about ``A``. With the identity as ``A``, the signature
``01 00..00 || 0^32`` (R the identity, S = 0) verified for every message, so a ledger
embedding that key could be rewritten at will and still verify. ``VerifyKey`` now refuses
the eight points of small order (with either sign bit) and every y at or above p, with
:class:`~secagg.crypto.signing.WeakPublicKey` (a :class:`SignatureError`), before any
signature is checked.

The encodings are those of the small-order table of "Taming the many EdDSAs" (Chalkias,
Garillot, Nikolaenko; eprint 2020/1244), also libsodium's blocklist; the test checks them
itself (each decodes to a point P with [8]P the identity) rather than trusting the table.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import secagg.crypto.signing as signing
from secagg.aggregation.masking import identity_key
from secagg.crypto.signing import SigningKey, VerifyKey
from secagg.errors import ConfigurationError, MalformedMessage, SignatureError

#: the eight points of small order, canonically encoded (y little-endian, x's sign on top)
SMALL_ORDER = {
    "identity": "0100000000000000000000000000000000000000000000000000000000000000",
    "order 2": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "order 4, x+": "0000000000000000000000000000000000000000000000000000000000000000",
    "order 4, x-": "0000000000000000000000000000000000000000000000000000000000000080",
    "order 8, a+": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "order 8, a-": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "order 8, b+": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "order 8, b-": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
}
#: second spellings of small-order points: x = 0 with its sign bit set, or y = p, p + 1
NON_CANONICAL = {
    "identity, x sign set": "0100000000000000000000000000000000000000000000000000000000000080",
    "order 2, x sign set": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "y = p (order 4)": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "y = p, x sign set": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "y = p + 1 (identity)": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "y = p + 1, x sign set": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}
#: the universal forgery for the identity key: R the identity, S = 0
FORGED = bytes.fromhex(SMALL_ORDER["identity"]) + bytes(32)

# --- edwards25519 in affine coordinates, only to check the table ---------------------------

P = 2**255 - 19
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _decode(raw: bytes) -> tuple[int, int]:
    """RFC 8032 5.1.3 decoding, refusing nothing but a y without a point."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    sign = raw[31] >> 7
    y %= P
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    assert v * x * x % P == u, "no point has this y"
    if x & 1 != sign:
        x = (-x) % P
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P
    return x3, y3


def _order(point: tuple[int, int]) -> int:
    """The least n <= 8 with [n]point the identity (0 if there is none)."""
    acc = point
    for n in range(1, 9):
        if acc == (0, 1):
            return n
        acc = _add(acc, point)
    return 0


def test_the_table_lists_the_eight_points_of_small_order_and_second_spellings_of_them() -> None:
    """Each canonical encoding is a distinct point of order 1, 2, 4 or 8 (the eight of the
    8-torsion), and each non-canonical one decodes to one of them."""
    points = {name: _decode(bytes.fromhex(h)) for name, h in SMALL_ORDER.items()}
    orders = sorted(_order(p) for p in points.values())
    assert orders == [1, 2, 4, 4, 8, 8, 8, 8]
    assert len(set(points.values())) == 8
    for name, h in NON_CANONICAL.items():
        assert _decode(bytes.fromhex(h)) in points.values(), name


@pytest.mark.parametrize("name", sorted(SMALL_ORDER))
def test_a_small_order_public_key_is_refused_when_made(name: str) -> None:
    with pytest.raises(SignatureError, match=r"^Ed25519 public key is a point of small order"):
        VerifyKey(bytes.fromhex(SMALL_ORDER[name]))


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
def test_a_non_canonical_public_key_is_refused_when_made(name: str) -> None:
    with pytest.raises(SignatureError) as refused:  # callers catching it still do
        VerifyKey(bytes.fromhex(NON_CANONICAL[name]))
    assert isinstance(refused.value, signing.WeakPublicKey)
    assert "\n" not in str(refused.value)


def test_the_identity_keys_universal_forgery_never_reaches_verification() -> None:
    """What the refusal is for: OpenSSL accepts the forgery for any message."""
    identity = bytes.fromhex(SMALL_ORDER["identity"])
    for message in (b"", b"ledger row 1", b"anything at all"):
        Ed25519PublicKey.from_public_bytes(identity).verify(FORGED, message)  # no raise
    with pytest.raises(SignatureError, match="small order"):
        VerifyKey(identity).verify(FORGED, b"ledger row 1")


def test_a_pem_file_holding_a_small_order_key_is_a_configuration_error() -> None:
    """``audit verify --pubkey`` reads the auditor's key with ``from_pem``: a small-order
    key there is a one-line configuration error, not a traceback."""
    pem = Ed25519PublicKey.from_public_bytes(bytes.fromhex(SMALL_ORDER["identity"])).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError, match=r"^not a usable Ed25519 public key: .*small"):
        VerifyKey.from_pem(pem)


@pytest.mark.parametrize("name", ["identity", "order 8, a+"])
def test_a_round_identity_of_small_order_is_a_malformed_message(name: str) -> None:
    """A round's identities come from the wire (masking's ``identity_key``)."""
    with pytest.raises(MalformedMessage, match="identity of the round is unusable"):
        identity_key(bytes.fromhex(SMALL_ORDER[name]))


def test_generated_keys_are_accepted() -> None:
    for _ in range(64):
        signing = SigningKey.generate()
        key = VerifyKey(signing.verify_key.raw)
        key.verify(signing.sign(b"m"), b"m")
        assert VerifyKey.from_pem(key.to_pem()) == key
