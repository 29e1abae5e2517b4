"""What a client's certificate says reaches the server's log escaped, one line a refusal.

Hostile review of the transport (2026-12-06): a new session over the per-identity
rate is refused before ``identify`` runs, so before anything checks the certificate's
common name against the branch-name pattern, and its WARNING line named the peer by
that common name as it was. TLS only proves that the federation's CA signed the
certificate; a CA that signs for more than this federation (a deployment's own PKI),
or a common name a careless operator typed, put a newline and terminal escapes into
the server's log: a forged second line ("ERROR branch-002: ...") and a cleared screen.
Now the name is quoted with escapes (its ``repr``), as the certificate module's own
refusal lines already quote a name.

Real gRPC with TLS on loopback; every wait has a generous upper bound.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from secagg.apps import devca
from secagg.transport import certs, grpc_transport
from secagg.transport.grpc_transport import SESSION_METHOD, THROTTLE_DETAIL, GrpcServerTransport

BOUND = 60.0  # the upper bound of every wait: the refusals come within a second

#: at most 64 characters, the longest common name X.509 allows
HOSTILE_CN = "x\nERROR branch-002: \x1b[2Jrun certs init --force"


def _hostile_client(ca_dir: Path) -> tuple[bytes, bytes]:
    """A client certificate the federation's CA signed (clientAuth, so TLS accepts it)
    whose common name is no branch name: its PEM key and certificate."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = devca._leaf_builder(
        ca_cert=ca_cert,
        subject_cn=HOSTILE_CN,
        public_key=key.public_key(),
        sans=[x509.UniformResourceIdentifier("urn:secagg:client:x")],
        eku=ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=1),
    )
    certificate = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    devca.init_ca(tmp_path)
    return tmp_path


@pytest.fixture
def server(ca_dir: Path) -> Iterator[GrpcServerTransport]:
    verifier = certs.PeerVerifier(ca_dir)
    transport = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca_dir).to_grpc(),
        identify=lambda context: verifier.identify(context.auth_context()).name,
        max_message_bytes=1 << 20,
        session_burst=1,
        session_rate=0.01,  # no refill within the test
    )
    transport.start()
    try:
        yield transport
    finally:
        transport.stop(grace=0)


def _refusal(channel: grpc.Channel) -> grpc.StatusCode:
    """Open one session with nothing to send; the code the server refused it with."""
    call = channel.stream_stream(SESSION_METHOD)(iter(()), timeout=BOUND)
    with pytest.raises(grpc.RpcError) as refused:
        for _ in call:
            pass
    return refused.value.code()


def test_a_throttled_peer_is_named_escaped_in_one_line(
    ca_dir: Path, server: GrpcServerTransport, caplog: pytest.LogCaptureFixture
) -> None:
    key, chain = _hostile_client(ca_dir)
    credentials = grpc.ssl_channel_credentials(
        (ca_dir / "ca.pem").read_bytes(), private_key=key, certificate_chain=chain
    )
    with (
        grpc.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel,
        caplog.at_level(logging.WARNING, logger=grpc_transport.__name__),
    ):
        assert _refusal(channel) == grpc.StatusCode.UNAUTHENTICATED  # identify refuses it
        assert _refusal(channel) == grpc.StatusCode.RESOURCE_EXHAUSTED  # the burst is spent
    lines = [r.getMessage() for r in caplog.records if THROTTLE_DETAIL in r.getMessage()]
    assert len(lines) == 1, lines
    assert "\n" not in lines[0] and "\x1b" not in lines[0], lines[0]
    assert repr(HOSTILE_CN) in lines[0]  # still named, so the operator can find it
