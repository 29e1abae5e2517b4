"""A certificate revoked by fingerprint stays revoked when its ECDSA signature is flipped.

Transport review (2026-12-07, helper 252): an ECDSA signature ``(r, s)`` has a twin
``(r, n - s)`` that the same public key verifies over the same message, and anyone can
compute it without the signer's key. A certificate re-encoded with the twin signature
is the same certificate (the same signed part: serial, name, key, validity), yet its
SHA-256 fingerprint, which the revocation list bars "exact certificates" by, is another.
``secagg certs issue NAME --force`` (the way back in for a branch whose key leaked:
``revoke``, then issue a fresh key) lifts the name's bar and bars the old certificate by
fingerprint only; the leaked key with its old certificate, flipped, was admitted again
as the branch: gRPC's TLS took the flipped certificate, and ``identify_peer`` found its
fingerprint on no list. Now revocation looks at the fingerprints of both encodings.

In-process (a development CA, the verifier) but for one session over loopback mTLS,
which shows the whole way in: the TLS handshake, the server's ``identify``, a message.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from _threads import BOUND
from _twin_signature import flipped
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.base import NotAccepted
from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport


@pytest.fixture(scope="module")
def readmitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, x509.Certificate, bytes]:
    """A CA whose branch-a was revoked and re-issued with a fresh key (its name re-admitted,
    its old certificate barred by fingerprint); the old certificate and its key."""
    directory = tmp_path_factory.mktemp("twin") / "ca"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    old = x509.load_pem_x509_certificate((directory / "clients" / "branch-a.pem").read_bytes())
    old_key = (directory / "clients" / "branch-a.key").read_bytes()
    devca.revoke(directory, "branch-a")
    devca.issue_client(directory, "branch-a", force=True)
    return directory, old, old_key


def test_the_flipped_certificate_is_another_fingerprint_the_ca_signature_verifies(
    readmitted: tuple[Path, x509.Certificate, bytes],
) -> None:
    directory, old, _ = readmitted
    twin = flipped(old)
    assert certs.fingerprint(twin) != certs.fingerprint(old)
    ca = certs.load_ca_certificate(directory / "ca.pem")
    twin.verify_directly_issued_by(ca)  # a valid certificate of the CA: no key needed


def test_a_revoked_certificate_flipped_is_still_refused(
    readmitted: tuple[Path, x509.Certificate, bytes],
) -> None:
    directory, old, _ = readmitted
    verifier = certs.PeerVerifier(directory)
    with pytest.raises(certs.PeerRefused, match="revoked"):
        verifier.identify(old)
    with pytest.raises(certs.PeerRefused, match="revoked"):
        verifier.identify(flipped(old))


def test_a_live_certificate_flipped_is_still_the_branch(
    readmitted: tuple[Path, x509.Certificate, bytes],
) -> None:
    """No refusal for what is not revoked: the new certificate, flipped, is branch-a."""
    directory, _, _ = readmitted
    new = x509.load_pem_x509_certificate((directory / "clients" / "branch-a.pem").read_bytes())
    verifier = certs.PeerVerifier(directory)
    assert verifier.identify(flipped(new)).name == "branch-a"


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_each_curve_order_makes_the_twin_signature(curve: ec.EllipticCurve) -> None:
    """The orders the verifier flips with are the curves' (a wrong one verifies nothing)."""
    key = ec.generate_private_key(curve)
    r, s = decode_dss_signature(key.sign(b"signed part", ec.ECDSA(hashes.SHA256())))
    twin = encode_dss_signature(r, certs._CURVE_ORDERS[curve.name] - s)
    key.public_key().verify(twin, b"signed part", ec.ECDSA(hashes.SHA256()))


def test_the_leaked_key_with_its_flipped_certificate_gets_no_session(
    readmitted: tuple[Path, x509.Certificate, bytes], tmp_path: Path
) -> None:
    """Before: the session opened as branch-a and its message reached the server."""
    directory, old, old_key = readmitted
    bundle = tmp_path / "leaked"
    bundle.mkdir()
    shutil.copy(directory / "ca.pem", bundle / "ca.pem")
    (bundle / "branch-a.pem").write_bytes(flipped(old).public_bytes(serialization.Encoding.PEM))
    (bundle / "branch-a.key").write_bytes(old_key)
    (bundle / "branch-a.key").chmod(0o600)
    verifier = certs.PeerVerifier(directory)
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(directory).to_grpc(),
        max_message_bytes=1 << 16,
        identify=lambda context: verifier.identify(context.auth_context()).name,
    )
    server.start()
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=certs.load_client_credentials(bundle, "branch-a").to_grpc(),
        max_message_bytes=1 << 16,
    )
    try:
        with pytest.raises(NotAccepted):
            client.connect(timeout=BOUND)
        assert server.connected() == set()
    finally:
        client.close()
        server.stop(grace=0)


def test_a_ca_on_a_curve_without_a_known_order_fails_closed() -> None:
    """A twin that cannot be computed is a revocation that cannot be checked: refused."""
    key = ec.generate_private_key(ec.SECP256K1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "k1 CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(certs.PeerRefused, match="secp256k1"):
        certs.presented_fingerprints(ca, ca)


def _ca_on(curve: ec.EllipticCurve) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA whose key is on ``curve`` (a deployment's own PKI need not be P-256)."""
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"{curve.name} CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
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
        .sign(key, hashes.SHA384())
    )
    return certificate, key


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
def test_a_revoked_certificate_of_a_larger_curve_flipped_is_still_refused(
    curve: ec.EllipticCurve,
) -> None:
    """The twin is rebuilt right for every curve (P-521's signature needs DER's long
    lengths): the flipped certificate of a revoked fingerprint is refused."""
    ca, ca_key = _ca_on(curve)
    now = dt.datetime.now(dt.UTC)
    leaf = devca._leaf_builder(
        ca_cert=ca,
        subject_cn="branch-a",
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        sans=[x509.UniformResourceIdentifier(certs.client_uri("branch-a"))],
        eku=x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=1),
    ).sign(ca_key, hashes.SHA384())
    twin = flipped(leaf, certs._CURVE_ORDERS[curve.name])
    twin.verify_directly_issued_by(ca)
    revoked = certs.RevocationList(fingerprints=frozenset({certs.fingerprint(leaf)}))
    assert certs.identify_peer(twin, ca).name == "branch-a"  # valid, and not revoked yet
    with pytest.raises(certs.PeerRefused, match="revoked"):
        certs.identify_peer(twin, ca, revoked)
