"""The names a :class:`ServerNameMismatch` quotes come from an unverified handshake.

Hostile review of the transport (2026-12-05): to say which names the server's
certificate carries, the dialling party reads that certificate over a TLS connection
of its own that verifies nothing (gRPC does not hand over the certificate it verified).
Whoever answers that second connection (an attacker on the path) chooses the names, and
they went into the error line as they were: a name with a newline or a terminal escape
broke the one-line error and could paint the operator's terminal, and ten thousand
names made a line of hundreds of kilobytes. Now only names that a certificate can carry
for a server (a host name, a wildcard, an IP address) are quoted, at most
``_MAX_SERVED_NAMES`` of them.

A plain Python TLS server on loopback plays the attacker; no gRPC is needed.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from secagg.transport import grpc_transport as gt

BOUND = 60.0  # the upper bound of every wait on the server thread

HOSTILE = "fl.bank.internal\nERROR branch-002: \x1b[2Jrun secagg certs init --force"
#: a common name is at most 64 characters
HOSTILE_CN = "x\nERROR branch-002: \x1b[2Jrun certs init --force"


def _certificate(
    directory: Path, common_name: str, sans: list[x509.GeneralName] | None
) -> tuple[Path, Path]:
    """A self-signed certificate and its key, with ``sans`` (None: no SAN extension)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _serve_once(cert_path: Path, key_path: Path) -> Iterator[str]:
    """A TLS server that answers handshakes with this certificate; yields its target."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(BOUND)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True):
                    pass
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        listener.close()
        thread.join(BOUND)


@pytest.fixture
def hostile_sans(tmp_path: Path) -> Iterator[str]:
    sans: list[x509.GeneralName] = [
        x509.DNSName(HOSTILE),
        x509.DNSName("fl.bank.internal"),
        x509.DNSName("*.bank.internal"),
        *(x509.DNSName(f"n{index}.bank.internal") for index in range(2000)),
    ]
    yield from _serve_once(*_certificate(tmp_path, "server", sans))


@pytest.fixture
def hostile_common_name(tmp_path: Path) -> Iterator[str]:
    yield from _serve_once(*_certificate(tmp_path, HOSTILE_CN, None))


def test_only_server_names_are_quoted_and_few(hostile_sans: str) -> None:
    """The hostile name is left out, and 8 of the 2001 others are quoted."""
    names = gt._served_names(hostile_sans, "fl.bank.internal")
    assert names is not None
    assert names[:2] == ["fl.bank.internal", "*.bank.internal"]
    assert len(names) <= gt._MAX_SERVED_NAMES
    assert all(name.isascii() and name.isprintable() for name in names)


def test_a_common_name_that_is_no_host_name_is_not_quoted(hostile_common_name: str) -> None:
    """Without SANs the common name is the only name: quoted only if it is a host name."""
    assert gt._served_names(hostile_common_name, "fl.bank.internal") in (None, [])


@pytest.mark.parametrize("which", ["hostile_sans", "hostile_common_name"])
def test_the_mismatch_stays_one_short_line(which: str, request: pytest.FixtureRequest) -> None:
    """The error a branch prints is one line of its own words (was 108,538 characters
    and three lines of the attacker's with the SANs above)."""
    target = request.getfixturevalue(which)
    error = gt._name_mismatch(target, "fl.bank.internal", "Hostname Verification Check failed.")
    text = str(error)
    assert "\n" not in text and "\x1b" not in text
    assert "ERROR branch-002" not in text
    assert len(text) < 2000, f"{len(text)} characters"
