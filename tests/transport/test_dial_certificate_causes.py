"""A dial that fails on a certificate says whose certificate failed and why.

Transport review (2026-12-06): every certificate failure of a dial read "this party's
certificates must come from the federation's CA, and the server's certificate must
carry the name dialled", whatever BoringSSL had found: a server whose certificate had
expired, or one running with another CA's certificate, sent the branch's operator to
check the branch's own files and the name dialled. Now the line names the cause (the
server's certificate is not signed by this party's CA; it has expired; it is not valid
yet; the server refused this party's certificate), keeping BoringSSL's words after it.

Two real gRPC dials on loopback (the wording is gRPC's, so it is taken from gRPC), the
rest on the texts gRPC gives; every wait has a generous bound.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from _threads import BOUND
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.grpc_dial import _dial_failure
from secagg.transport.grpc_transport import (
    GrpcClientTransport,
    GrpcServerTransport,
    HandshakeFailed,
)

#: how gRPC 1.85 reports a server certificate its client cannot verify (captured)
_GRPC_SAID = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:33931: Tls "
    "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:"
    "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: {reason}: OK"
)


@pytest.mark.parametrize(
    ("reason", "meaning"),
    [
        ("unable to get local issuer certificate", "not signed by the CA in this party's ca.pem"),
        ("self signed certificate", "not signed by the CA in this party's ca.pem"),
        ("certificate has expired", "the server's certificate has expired"),
        ("certificate is not yet valid", "the server's certificate is not valid yet"),
        ("unsupported certificate purpose", "not one for a server"),
    ],
)
def test_a_server_certificate_failure_is_named(reason: str, meaning: str) -> None:
    failure = _dial_failure("127.0.0.1:33931", 30.0, _GRPC_SAID.format(reason=reason))
    assert isinstance(failure, HandshakeFailed)
    text = str(failure)
    assert meaning in text
    assert reason in text  # BoringSSL's own words stay, for a search
    assert "must carry the name dialled" not in text  # no advice that does not apply


@pytest.mark.parametrize(
    ("alert", "meaning"),
    [
        ("TLSV1_ALERT_UNKNOWN_CA", "not signed by the CA the server trusts"),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "refused this party's certificate as expired"),
    ],
)
def test_a_tls12_servers_alert_names_this_partys_certificate(alert: str, meaning: str) -> None:
    said = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Tls "
        f"handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:10000418:SSL "
        f"routines:OPENSSL_internal:{alert}: OK"
    )
    failure = _dial_failure("127.0.0.1:1", 30.0, said)
    assert isinstance(failure, HandshakeFailed)
    assert "the server refused this party's certificate" in str(failure)
    assert meaning in str(failure)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("causes") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    return directory


def _expired_server_credentials(federation: Path) -> grpc.ServerCredentials:
    """The federation CA's server certificate for 127.0.0.1, expired yesterday."""
    ca = x509.load_pem_x509_certificate((federation / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((federation / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = devca._leaf_builder(
        ca_cert=ca,
        subject_cn="localhost",
        public_key=key.public_key(),
        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=now - dt.timedelta(days=2),
        not_after=now - dt.timedelta(days=1),
    ).sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return grpc.ssl_server_credentials(
        [(key_pem, certificate.public_bytes(serialization.Encoding.PEM))],
        root_certificates=(federation / "ca.pem").read_bytes(),
        require_client_auth=True,
    )


def _other_ca_server_credentials(tmp_path: Path) -> grpc.ServerCredentials:
    other = tmp_path / "other"
    devca.init_ca(other)
    return certs.load_server_credentials(other).to_grpc()


@pytest.fixture
def serving(
    request: pytest.FixtureRequest, federation: Path, tmp_path: Path
) -> Iterator[GrpcServerTransport]:
    credentials = (
        _expired_server_credentials(federation)
        if request.param == "expired"
        else _other_ca_server_credentials(tmp_path)
    )
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=credentials,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch-a",
    )
    server.start()
    yield server
    server.stop(grace=0)


@pytest.mark.parametrize(
    ("serving", "meaning"),
    [
        ("expired", "the server's certificate has expired"),
        ("other-ca", "the server's certificate is not signed by the CA in this party's ca.pem"),
    ],
    indirect=["serving"],
)
def test_a_branch_hears_why_the_servers_certificate_failed(
    serving: GrpcServerTransport, federation: Path, meaning: str
) -> None:
    client = GrpcClientTransport(
        f"127.0.0.1:{serving.port}",
        channel_credentials=certs.load_client_credentials(federation, "branch-a").to_grpc(),
        max_message_bytes=1 << 20,
    )
    try:
        with pytest.raises(HandshakeFailed) as caught:
            client.connect(timeout=BOUND)  # the first failed handshake ends it, not the bound
    finally:
        client.close()
    text = str(caught.value)
    assert meaning in text
    assert "\n" not in text
