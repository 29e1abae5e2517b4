"""The CLI's TLS probe names a certificate failure in the transport's words.

Transport review (2026-12-06): ``secagg client``/``keyholder`` explain a dial that
failed without a cause by probing TLS once (``dialling._probe_tls``), and that probe
had wording of its own: a server whose certificate had expired read "the server's
certificate is not trusted by ca.pem (certificate has expired); is that the
federation's CA, and does the server's certificate name 127.0.0.1?", and a server
refusing this branch's expired certificate read "was NAME.pem issued by the
federation's CA?", while the transport's own dial said "the server's certificate has
expired" and "refused this party's certificate as expired". One function now holds
those words (``grpc_dial.certificate_failure_cause``); the probe adds its context (the
CA file, this party's certificate, the library's own words).

A plain ``ssl`` server on loopback plays the federation server, accepting one
connection; every wait has a generous bound and ends on the event.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _threads import BOUND
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from secagg.apps import devca
from secagg.apps.commands.dialling import _probe_tls
from secagg.transport.certs import CaLayout

NAME = "branch-001"


def _expired_pair(ca_dir: Path, cn: str, eku: x509.ObjectIdentifier) -> tuple[bytes, bytes]:
    """A (certificate, key) PEM pair of ``ca_dir``'s CA for ``cn`` that expired yesterday."""
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(cn)]
    if eku == ExtendedKeyUsageOID.SERVER_AUTH:
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = devca._leaf_builder(
        ca_cert=ca,
        subject_cn=cn,
        public_key=key.public_key(),
        sans=sans,
        eku=eku,
        not_before=now - dt.timedelta(days=2),
        not_after=now - dt.timedelta(days=1),
    ).sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    devca.init_ca(directory)
    devca.issue_client(directory, NAME)
    return directory


def _serve_once(ca_dir: Path, certificate: Path, key: Path) -> Iterator[int]:
    """A TLS server with ``certificate`` that asks for a client certificate of the CA,
    accepts one connection and sends one byte to a client it accepts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate), str(key))
    context.load_verify_locations(cafile=str(ca_dir / "ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(BOUND)

    def serve() -> None:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        with raw:
            raw.settimeout(BOUND)
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.sendall(b"x")
            except (ssl.SSLError, OSError):
                pass  # the client's certificate refused (the alert is sent), or it hung up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(BOUND)


def test_an_expired_server_certificate_is_named_as_expired(ca_dir: Path, tmp_path: Path) -> None:
    pem, key = _expired_pair(ca_dir, "localhost", ExtendedKeyUsageOID.SERVER_AUTH)
    (tmp_path / "server.pem").write_bytes(pem)
    (tmp_path / "server.key").write_bytes(key)
    for port in _serve_once(ca_dir, tmp_path / "server.pem", tmp_path / "server.key"):
        said = _probe_tls(f"127.0.0.1:{port}", str(ca_dir), NAME)
    assert said is not None
    assert "the server's certificate has expired" in said  # the transport's words
    assert "certificate has expired" in said  # the library's own, for a search
    assert str(CaLayout(ca_dir).ca_cert) in said  # the probe's context stays
    assert "is that the federation's CA" not in said  # no advice that does not apply
    assert "\n" not in said


def test_this_partys_expired_certificate_is_named_as_refused_for_it(ca_dir: Path) -> None:
    layout = CaLayout(ca_dir)
    pem, key = _expired_pair(ca_dir, NAME, ExtendedKeyUsageOID.CLIENT_AUTH)
    layout.client_cert(NAME).write_bytes(pem)
    layout.client_key(NAME).write_bytes(key)
    for port in _serve_once(ca_dir, layout.server_cert, layout.server_key):
        said = _probe_tls(f"127.0.0.1:{port}", str(ca_dir), NAME)
    assert said is not None
    assert "refused this party's certificate as expired" in said  # the transport's words
    assert str(layout.client_cert(NAME)) in said  # which file is meant
    assert "issued by the federation's CA" not in said
    assert "\n" not in said
