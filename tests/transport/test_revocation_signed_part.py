"""Revocation keys on what the CA signed (the certificate's signed part), not on one
encoding of the certificate.

Certificate review (2026-12-07), after the ECDSA twin (tests/transport/
test_revocation_twin_signature.py): a fingerprint names one encoding of a certificate,
and an encoding is the holder's to choose wherever the verifier leaves room. The fix
before this one enumerated the room it knew (``s`` -> ``n - s``, on the three curves it
lists). The sound rule is the signed part's digest: path validation checks the CA's
signature over exactly those bytes, so no holder changes them, however the rest is
encoded. ``secagg certs revoke`` and ``issue --force`` now write it; lists holding only
fingerprints (older lists, a fingerprint pasted from a log line) still bar both
encodings of an ECDSA signature.

The tests also show there is no other room today: every other re-encoding of an ECDSA
signature (leading zeros, long or non-minimal DER lengths, trailing bytes, ``s + n``) or
of the certificate's own lengths is refused by the parser or by path validation, and an
RSA CA's signature has no twin (PKCS#1 v1.5 is one number below the modulus; PSS is
randomised, but only the key makes another). In process, no network: over loopback TLS
gRPC's BoringSSL refused the same signature variants in the handshake (checked by hand,
2026-12-07; see the report of helper 258).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _twin_signature import flipped
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from secagg.apps import devca
from secagg.transport import certs

P256_ORDER = certs._CURVE_ORDERS["secp256r1"]


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, x509.Certificate]:
    """A CA with branch-a issued (not revoked); its certificate."""
    directory = tmp_path_factory.mktemp("signed") / "ca"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    pem = (directory / "clients" / "branch-a.pem").read_bytes()
    return directory, x509.load_pem_x509_certificate(pem)


def _write_list(directory: Path, **entries: list[str]) -> None:
    body = {"format": "secagg-revocations/1", "names": [], **entries}
    (directory / "revoked.json").write_text(json.dumps(body))


def test_the_signed_part_is_the_same_in_both_encodings(
    issued: tuple[Path, x509.Certificate],
) -> None:
    _, certificate = issued
    twin = flipped(certificate)
    assert certs.fingerprint(twin) != certs.fingerprint(certificate)
    assert certs.signed_part_digest(twin) == certs.signed_part_digest(certificate)


def test_revoke_writes_the_signed_part_and_the_fingerprint(tmp_path: Path) -> None:
    """Both: the signed part for this release, the fingerprint for an older server."""
    directory = tmp_path / "ca"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    certificate = x509.load_pem_x509_certificate(
        (directory / "clients" / "branch-a.pem").read_bytes()
    )
    listed = devca.revoke(directory, "branch-a")
    assert certs.signed_part_digest(certificate) in listed.signed_parts
    assert certs.fingerprint(certificate) in listed.fingerprints
    assert certs.load_revocations(directory) == listed


def test_a_signed_part_on_the_list_bars_every_encoding(
    issued: tuple[Path, x509.Certificate], tmp_path: Path
) -> None:
    """Before: the list's ``signed_parts`` was not read, and both encodings were admitted."""
    directory, certificate = issued
    _write_list(directory, signed_parts=[certs.signed_part_digest(certificate)])
    try:
        verifier = certs.PeerVerifier(directory)
        for presented in (certificate, flipped(certificate)):
            with pytest.raises(certs.PeerRefused, match="revoked"):
                verifier.identify(presented)
    finally:
        _write_list(directory)


def test_an_old_list_of_fingerprints_still_bars_both_encodings(
    issued: tuple[Path, x509.Certificate],
) -> None:
    """A list written before ``signed_parts`` (no such key) keeps its meaning."""
    directory, certificate = issued
    _write_list(directory, fingerprints=[certs.fingerprint(certificate)])
    try:
        verifier = certs.PeerVerifier(directory)
        for presented in (certificate, flipped(certificate)):
            with pytest.raises(certs.PeerRefused, match="revoked"):
                verifier.identify(presented)
    finally:
        _write_list(directory)
    assert certs.PeerVerifier(directory).identify(certificate).name == "branch-a"


@pytest.mark.parametrize("entry", ["ABC", 7, "0" * 63])
def test_a_malformed_signed_part_is_a_list_error_not_ignored(tmp_path: Path, entry: object) -> None:
    path = tmp_path / "revoked.json"
    path.write_text(json.dumps({"format": "secagg-revocations/1", "signed_parts": [entry]}))
    with pytest.raises(certs.RevocationListError, match="signed_parts"):
        certs.load_revocations(path)


# --- no other room to re-encode -----------------------------------------------------


def _element(data: bytes, offset: int) -> tuple[int, int]:
    """(value start, end) of the DER element at ``offset``."""
    length, start = data[offset + 1], offset + 2
    if length & 0x80:
        size = length & 0x7F
        length, start = int.from_bytes(data[start : start + size], "big"), start + size
    return start, start + length


def _header(tag: int, length: int, *, long: bool = False, padding: int = 0) -> bytes:
    """A tag and length: DER's, or the long form when ``long``, with ``padding`` zero
    bytes in front of the length (BER allows both, DER neither)."""
    if length < 0x80 and not long and not padding:
        return bytes([tag, length])
    size = max(1, (length.bit_length() + 7) // 8) + padding
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")


def _integer(value: int, *, zeros: int = 0, long: bool = False) -> bytes:
    body = b"\x00" * zeros + value.to_bytes(value.bit_length() // 8 + 1, "big")
    return _header(0x02, len(body), long=long) + body


def _rebuilt(
    certificate: x509.Certificate,
    signature: bytes,
    *,
    outer_padding: int = 0,
    bit_string_long: bool = False,
) -> bytes:
    """``certificate``'s DER with its signature value replaced by ``signature``."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    body, _ = _element(der, 0)
    _, signed_end = _element(der, body)
    _, algorithm_end = _element(der, signed_end)
    value = _header(0x03, len(signature) + 1, long=bit_string_long) + b"\x00" + signature
    inner = der[body:algorithm_end] + value
    return _header(0x30, len(inner), padding=outer_padding) + inner


def _sequence(content: bytes, *, long: bool = False) -> bytes:
    return _header(0x30, len(content), long=long) + content


#: every other encoding of an ECDSA certificate's signature, as (r, s) -> certificate DER
ECDSA_VARIANTS: dict[str, Callable[[x509.Certificate, int, int], bytes]] = {
    "r with a leading zero": lambda c, r, s: _rebuilt(
        c, _sequence(_integer(r, zeros=1) + _integer(s))
    ),
    "r's length in long form": lambda c, r, s: _rebuilt(
        c, _sequence(_integer(r, long=True) + _integer(s))
    ),
    "the pair's length in long form": lambda c, r, s: _rebuilt(
        c, _sequence(_integer(r) + _integer(s), long=True)
    ),
    "a byte after the pair": lambda c, r, s: _rebuilt(
        c, _sequence(_integer(r) + _integer(s)) + b"\x00"
    ),
    "s + n": lambda c, r, s: _rebuilt(c, _sequence(_integer(r) + _integer(s + P256_ORDER))),
    "the signature's length in long form": lambda c, r, s: _rebuilt(
        c, _sequence(_integer(r) + _integer(s)), bit_string_long=True
    ),
    "the certificate's length padded": lambda c, r, s: _rebuilt(
        c, _sequence(_integer(r) + _integer(s)), outer_padding=1
    ),
}


@pytest.mark.parametrize("variant", sorted(ECDSA_VARIANTS))
def test_no_other_encoding_of_an_ecdsa_certificate_is_admitted(
    issued: tuple[Path, x509.Certificate], variant: str
) -> None:
    """Refused by the parser (non-minimal lengths) or by path validation (the ECDSA
    verifier takes only DER): only the twin of ``s`` gives a second admitted encoding."""
    directory, certificate = issued
    r, s = decode_dss_signature(certificate.signature)
    der = ECDSA_VARIANTS[variant](certificate, r, s)
    assert der != certificate.public_bytes(serialization.Encoding.DER)
    try:
        presented = x509.load_der_x509_certificate(der)
    except ValueError:
        return  # the parser refuses it: nothing to present
    with pytest.raises(certs.PeerRefused, match="path validation"):
        certs.PeerVerifier(directory).identify(presented)


def _rsa_ca_and_leaf(pss: bool) -> tuple[x509.Certificate, x509.Certificate, int]:
    """An RSA CA (PKCS#1 v1.5, or PSS), a branch certificate it signed, its modulus."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    scheme = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if pss else None
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "rsa CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256(), rsa_padding=scheme)
    )
    leaf = devca._leaf_builder(
        ca_cert=ca,
        subject_cn="branch-a",
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        sans=[x509.UniformResourceIdentifier(certs.client_uri("branch-a"))],
        eku=x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=1),
    ).sign(key, hashes.SHA256(), rsa_padding=scheme)
    return ca, leaf, key.public_key().public_numbers().n


@pytest.mark.parametrize("pss", [False, True], ids=["pkcs1v15", "pss"])
def test_an_rsa_signature_has_no_twin_and_its_signed_part_bars_it(pss: bool) -> None:
    ca, leaf, modulus = _rsa_ca_and_leaf(pss)
    signature = int.from_bytes(leaf.signature, "big")
    size = len(leaf.signature)
    for other in (b"\x00" + leaf.signature, (signature + modulus).to_bytes(size + 1, "big")):
        presented = x509.load_der_x509_certificate(_rebuilt(leaf, other))
        with pytest.raises(certs.PeerRefused, match="path validation"):
            certs.identify_peer(presented, ca)
    assert certs.presented_fingerprints(leaf, ca) == {certs.fingerprint(leaf)}
    assert certs.identify_peer(leaf, ca).name == "branch-a"
    revoked = certs.RevocationList(signed_parts=frozenset({certs.signed_part_digest(leaf)}))
    with pytest.raises(certs.PeerRefused, match="revoked"):
        certs.identify_peer(leaf, ca, revoked)
