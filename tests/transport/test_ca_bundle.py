"""``ca.pem`` holds exactly one CA certificate; a bundle is refused in one line.

Transport review (2026-12-05): every loader of ``ca.pem`` read only its first
certificate (and handed only that one to gRPC), so a bundle holding the old and the new
CA during a rotation silently trusted only the first: branches issued by the second
failed in the handshake as "another CA", or, old CA first, the old (perhaps suspect)
CA went on being the one trusted. The federation trusts one CA; a bundle is refused by
every party that loads ``ca.pem`` (server, verifier, branch), naming the file, and so is
a certificate that is not a CA's (a leaf copied over it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.certs import CertificateStoreError

_LOADERS: dict[str, Callable[[Path], object]] = {
    "server": lambda d: certs.load_server_credentials(d),
    "verifier": lambda d: certs.PeerVerifier(d),
    "branch": lambda d: certs.load_client_credentials(d, "branch-001"),
    "branch-checking-itself": lambda d: certs.load_client_credentials(
        d, "branch-001", check_self=True
    ),
}


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-001")
    return directory


@pytest.fixture
def other_ca_pem(tmp_path: Path) -> bytes:
    directory = tmp_path / "next-ca"
    devca.init_ca(directory)
    return (directory / "ca.pem").read_bytes()


@pytest.mark.parametrize("loader", sorted(_LOADERS))
@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_a_bundle_of_two_cas_is_refused_in_one_line(
    ca_dir: Path, other_ca_pem: bytes, loader: str, order: str
) -> None:
    own = (ca_dir / "ca.pem").read_bytes()
    bundle = own + other_ca_pem if order == "old-first" else other_ca_pem + own
    (ca_dir / "ca.pem").write_bytes(bundle)

    with pytest.raises(CertificateStoreError) as refused:
        _LOADERS[loader](ca_dir)
    message = str(refused.value)
    assert "\n" not in message
    assert str(ca_dir / "ca.pem") in message
    assert "holds 2 certificates" in message
    assert "exactly one CA" in message


@pytest.mark.parametrize("loader", sorted(_LOADERS))
def test_a_leaf_certificate_as_ca_pem_is_named(ca_dir: Path, loader: str) -> None:
    (ca_dir / "ca.pem").write_bytes((ca_dir / "clients" / "branch-001.pem").read_bytes())

    with pytest.raises(CertificateStoreError) as refused:
        _LOADERS[loader](ca_dir)
    assert "is not a CA certificate" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("loader", sorted(_LOADERS))
def test_a_single_ca_still_loads(ca_dir: Path, loader: str) -> None:
    _LOADERS[loader](ca_dir)
