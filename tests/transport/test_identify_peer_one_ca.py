"""``identify_peer`` holds a CA handed over in memory to the rule of ``ca.pem``.

Review of the CA rule (2026-12-05): ``ca.pem`` is read as exactly one CA certificate
by every loader, but :func:`~secagg.transport.certs.identify_peer` also takes the CA
as PEM bytes (an active-variant branch checks other branches' certificates that way),
and read a bundle there as its first certificate: the anchor trusted depended on the
order of the bundle, and nothing was said. It now refuses a bundle, and a leaf, in
the same one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.certs import CertificateStoreError


@pytest.fixture(scope="module")
def own_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("own-ca")
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-001")
    return directory


@pytest.fixture(scope="module")
def other_ca_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    directory = tmp_path_factory.mktemp("other-ca")
    devca.init_ca(directory)
    return (directory / "ca.pem").read_bytes()


def _branch(own_ca: Path) -> bytes:
    return (own_ca / "clients" / "branch-001.pem").read_bytes()


@pytest.mark.parametrize("order", ["own-first", "other-first"])
@pytest.mark.parametrize("kind", ["bytes", "str"])
def test_a_bundle_as_the_ca_is_refused_in_one_line(
    own_ca: Path, other_ca_pem: bytes, order: str, kind: str
) -> None:
    own = (own_ca / "ca.pem").read_bytes()
    bundle = own + other_ca_pem if order == "own-first" else other_ca_pem + own
    ca: bytes | str = bundle if kind == "bytes" else bundle.decode("ascii")

    with pytest.raises(CertificateStoreError) as refused:
        certs.identify_peer(_branch(own_ca), ca)
    message = str(refused.value)
    assert "\n" not in message
    assert "holds 2 certificates" in message
    assert "exactly one CA" in message


@pytest.mark.parametrize("kind", ["bytes", "certificate"])
def test_a_leaf_as_the_ca_is_named(own_ca: Path, kind: str) -> None:
    leaf = _branch(own_ca)
    ca: bytes | x509.Certificate = leaf if kind == "bytes" else x509.load_pem_x509_certificate(leaf)

    with pytest.raises(CertificateStoreError, match="is not a CA certificate"):
        certs.identify_peer(leaf, ca)


@pytest.mark.parametrize("kind", ["bytes", "str", "certificate"])
def test_the_one_ca_still_identifies(own_ca: Path, kind: str) -> None:
    pem = (own_ca / "ca.pem").read_bytes()
    ca: bytes | str | x509.Certificate = {
        "bytes": pem,
        "str": pem.decode("ascii"),
        "certificate": x509.load_pem_x509_certificate(pem),
    }[kind]

    assert certs.identify_peer(_branch(own_ca), ca).name == "branch-001"


def test_garbage_as_the_ca_is_still_a_store_error(own_ca: Path) -> None:
    with pytest.raises(CertificateStoreError, match="is not a PEM certificate"):
        certs.identify_peer(_branch(own_ca), b"not a certificate")
