"""A certificate from the federation's own CA cannot pass for another party's name.

Hostile review of the transport (2026-12-05), identity: a party is its certificate's
name, and the roster and the revocation list compare names exactly, so every spelling
that could read as another party's name must be refused before it is compared: a
name differing only by case or a trailing dot is another name (not on the roster), a
NUL or a Unicode look-alike is no name at all, a second name in the SAN does not make
the certificate that party's too, and a certificate that is itself a CA (a leaf with
``cA=true``) is no party even with every other field right. All of these are signed
by the federation's CA here: the strongest position an insider who tricks the CA
operator can reach.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secagg.apps import devca
from secagg.transport.certs import CaLayout, PeerRefused, PeerVerifier, client_uri

ROSTER = ("branch-a", "branch-b")


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("identity-spellings")
    devca.init_ca(directory)
    return directory


def _leaf(
    ca_dir: Path,
    common_name: str,
    sans: list[x509.GeneralName],
    *,
    ca: bool = False,
) -> bytes:
    """A client certificate signed by the federation's CA, with the extensions ``devca``
    gives one; ``ca`` makes it a certificate that may sign others (``cA=true``)."""
    ca_cert, ca_key = devca._load_ca(CaLayout(ca_dir))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _uri(name: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier("urn:secagg:client:" + name)


def test_the_honest_spelling_is_accepted(ca_dir: Path) -> None:
    """Guards the refusals below: the builder makes certificates the server accepts."""
    verifier = PeerVerifier(ca_dir, allowed=ROSTER)
    pem = _leaf(ca_dir, "branch-a", [_uri("branch-a")])
    assert verifier.identify(pem).name == "branch-a"


@pytest.mark.parametrize(
    ("common_name", "reason"),
    [
        ("BRANCH-A", "unknown client name"),  # case: another name
        ("Branch-a", "unknown client name"),
        ("branch-a.", "unknown client name"),  # trailing dot: another name
        ("branch-a\x00", "not a client name"),  # NUL
        ("branch-a\x00.evil", "not a client name"),
        ("br\u0430nch-a", "not a client name"),  # Cyrillic a
        ("branch\u2010a", "not a client name"),  # Unicode hyphen
        ("\uff42ranch-a", "not a client name"),  # fullwidth b
        ("branch-a ", "not a client name"),  # trailing space
    ],
)
def test_a_look_alike_of_a_roster_name_is_refused(
    ca_dir: Path, common_name: str, reason: str
) -> None:
    verifier = PeerVerifier(ca_dir, allowed=ROSTER)
    # a URI is ASCII: a look-alike carries the roster name's URI, which is no help to it
    uri = _uri(common_name) if common_name.isascii() else _uri("branch-a")
    pem = _leaf(ca_dir, common_name, [uri])
    with pytest.raises(PeerRefused, match=reason):
        verifier.identify(pem)


def test_a_second_name_in_the_san_does_not_make_it_that_party(ca_dir: Path) -> None:
    """The name is the common name; another party's URI beside it changes nothing."""
    verifier = PeerVerifier(ca_dir, allowed=ROSTER)
    both = _leaf(ca_dir, "branch-a", [_uri("branch-b"), _uri("branch-a")])
    assert verifier.identify(both).name == "branch-a"
    only_other = _leaf(ca_dir, "branch-a", [_uri("branch-b")])
    with pytest.raises(PeerRefused, match="SAN does not match"):
        verifier.identify(only_other)


def test_a_ca_certificate_is_no_party_even_with_every_other_field_right(ca_dir: Path) -> None:
    verifier = PeerVerifier(ca_dir, allowed=ROSTER)
    pem = _leaf(
        ca_dir, "branch-a", [x509.UniformResourceIdentifier(client_uri("branch-a"))], ca=True
    )
    with pytest.raises(PeerRefused, match="cA must not be asserted in an EE certificate"):
        verifier.identify(pem)
