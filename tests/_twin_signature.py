"""An ECDSA certificate with its signature flipped (``s`` -> ``n - s``): what anyone
holding a certificate can make of it without the CA's key, a valid certificate of the same
signed part under another SHA-256 fingerprint. For the tests of what the transport keys
on a certificate (its revocation, its session rate).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

#: the order of P-256, the development CA's curve (FIPS 186-4, D.1.2.3)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _element(data: bytes, offset: int) -> tuple[int, int]:
    """(value start, end) of the DER element at ``offset``."""
    length, start = data[offset + 1], offset + 2
    if length & 0x80:
        size = length & 0x7F
        length, start = int.from_bytes(data[start : start + size], "big"), start + size
    return start, start + length


def _header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes([tag, length])
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")


def flipped(certificate: x509.Certificate, order: int = P256_ORDER) -> x509.Certificate:
    """``certificate`` with its signature's ``s`` replaced by ``n - s`` (``n``: ``order``,
    the signing curve's): what a holder of the certificate (not of the CA's key) can make
    of it."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    body, _ = _element(der, 0)
    _, signed_end = _element(der, body)
    _, algorithm_end = _element(der, signed_end)
    r, s = decode_dss_signature(certificate.signature)
    signature = encode_dss_signature(r, order - s)
    inner = der[body:algorithm_end] + _header(0x03, len(signature) + 1) + b"\x00" + signature
    return x509.load_der_x509_certificate(_header(0x30, len(inner)) + inner)
