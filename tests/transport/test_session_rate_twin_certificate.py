"""One certificate is one bucket of new sessions, whichever way its signature is encoded.

Transport review (2026-12-07, helper 252): the server's token bucket of new sessions is
keyed per identity, and the key was the digest of the client certificate as TLS handed it
over. An ECDSA signature can be flipped (``s`` -> ``n - s``) by anyone holding the
certificate, and TLS takes the result (tests/transport/test_revocation_twin_signature.py),
so one identity held two buckets: twice the burst and twice the rate of new sessions the
limit promises. Now the key is the digest of the certificate's signed part, the same for
both encodings. In-process: the key function and the buckets, no network.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _twin_signature import flipped
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from secagg.apps import devca
from secagg.transport.grpc_server import _identity_key, _SessionRate

PEER_CERT = "x509_pem_cert"  # the auth context's key of the peer certificate


def _auth(certificate: x509.Certificate) -> dict[str, list[bytes]]:
    return {PEER_CERT: [certificate.public_bytes(serialization.Encoding.PEM)]}


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[x509.Certificate, x509.Certificate]:
    directory: Path = tmp_path_factory.mktemp("rate") / "ca"
    devca.init_ca(directory)
    loaded = []
    for name in ("branch-a", "branch-b"):
        devca.issue_client(directory, name)
        pem = (directory / "clients" / f"{name}.pem").read_bytes()
        loaded.append(x509.load_pem_x509_certificate(pem))
    return loaded[0], loaded[1]


def test_a_flipped_certificate_shares_its_bucket(
    issued: tuple[x509.Certificate, x509.Certificate],
) -> None:
    branch_a, branch_b = issued
    key = _identity_key(_auth(branch_a))
    assert key is not None
    assert _identity_key(_auth(flipped(branch_a))) == key
    assert _identity_key(_auth(branch_b)) != key  # another certificate, another bucket
    rate = _SessionRate(burst=2, rate=0.001)
    now = 1000.0
    admitted = [
        rate.admit(_identity_key(_auth(each)), now) == (0.0, 0)
        for each in (branch_a, flipped(branch_a), branch_a, flipped(branch_a))
    ]
    assert admitted == [True, True, False, False]  # one burst of 2, not two
