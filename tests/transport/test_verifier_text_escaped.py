"""The X.509 verifier's reason reaches the server's log escaped: a peer's SAN cannot
forge a log line.

Transport review (2026-12-06): ``certs._path_validation_detail`` put cryptography's
verifier text into the refusal, and so into the server's "refused peer" WARNING, as it
was. That text can quote the peer's certificate: under a CA with DNS name constraints
(a deployment's own PKI), a leaf that CA signed with a SAN that is no DNS name is refused
with "unsatisfiable DNS name constraint: malformed SAN <the SAN as written>". A newline
in the SAN forged a second log line ("ERROR branch-002: ..."), an ANSI escape cleared
the operator's screen. Now every character that is not printable is escaped as in a
``repr``, and the text is bounded.

In-process: a certificate, a verifier, a log record; no network.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps import devca
from secagg.transport import certs

FORGED = "x\nERROR branch-002: forged line \x1b[2J\x7f"
NOW = dt.datetime.now(dt.UTC)


def _constrained_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA that may sign only names under ``bank.internal`` (DNS name constraints)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bank PKI")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName("bank.internal")], excluded_subtrees=None
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _leaf_with_dns_san(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, san: str
) -> x509.Certificate:
    """A client certificate ``ca`` signed for branch-001 with ``san`` as a DNS SAN too."""
    key = ec.generate_private_key(ec.SECP256R1())
    return devca._leaf_builder(
        ca_cert=ca,
        subject_cn="branch-001",
        public_key=key.public_key(),
        sans=[x509.UniformResourceIdentifier("urn:secagg:client:branch-001"), x509.DNSName(san)],
        eku=ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=NOW - dt.timedelta(minutes=5),
        not_after=NOW + dt.timedelta(days=1),
    ).sign(ca_key, hashes.SHA256())


def test_a_san_quoted_by_the_verifier_cannot_forge_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca, ca_key = _constrained_ca()
    leaf = _leaf_with_dns_san(ca, ca_key, FORGED)
    with (
        caplog.at_level(logging.WARNING, logger="secagg.transport.certs"),
        pytest.raises(certs.PeerRefused) as refused,
    ):
        certs.identify_peer(leaf, ca)
    reason = refused.value.reason
    assert "malformed SAN" in reason  # the verifier's own words are kept
    assert "x\\nERROR branch-002: forged line \\x1b[2J\\x7f" in reason  # the SAN, escaped
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines
    assert lines[0].startswith("refused peer: certificate fails X.509 path validation")
    assert all(character.isprintable() for character in lines[0]), lines[0]


def test_a_long_san_is_cut() -> None:
    ca, ca_key = _constrained_ca()
    leaf = _leaf_with_dns_san(ca, ca_key, "\n" * 5000)
    with pytest.raises(certs.PeerRefused) as refused:
        certs.identify_peer(leaf, ca)
    assert len(refused.value.reason) < 400


class _VerifierSaid(Exception):
    """Stands in for cryptography's VerificationError: only its text is read."""


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=200))
def test_any_verifier_text_becomes_one_printable_bounded_line(said: str) -> None:
    detail = certs._path_validation_detail(_VerifierSaid(f"validation failed: {said}"))
    assert all(character.isprintable() for character in detail)
    assert len(detail) <= certs._MAX_VALIDATION_DETAIL
    if said.isprintable() and " (encountered processing" not in said and len(said) <= 300:
        assert detail == said  # the verifier's own sentences read as written
