"""A party's own certificate is checked before it dials, and its missing files are named
in both layouts.

Operator pass of 2026-12-04: a branch holding another CA's certificate, or an expired
one, learnt it only from the server hanging up after two handshakes ("Socket closed",
inferred as a refusal: see test_refusal_inference.py); its own files say it with
certainty. A bundle without its key read "not found at DIR/clients/NAME.key" (the CA
directory's layout), and a --certs folder that does not exist was not said to be one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport.certs import MissingCertificate, OwnCertificateUnusable


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("own") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    return directory


def _bundle(tmp_path: Path, ca_pem: Path, issuer: Path, name: str = "branch-a") -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "ca.pem").write_bytes(ca_pem.read_bytes())
    for suffix in (".pem", ".key"):
        (bundle / f"branch-a{suffix}").write_bytes(
            (issuer / "clients" / f"{name}{suffix}").read_bytes()
        )
    (bundle / "branch-a.key").chmod(0o600)
    return bundle


def test_a_good_bundle_and_the_ca_directory_pass(ca: Path, tmp_path: Path) -> None:
    certs.load_client_credentials(ca, "branch-a", check_self=True)
    certs.load_client_credentials(_bundle(tmp_path, ca / "ca.pem", ca), "branch-a", check_self=True)


def test_another_cas_certificate_is_refused_before_any_dial(ca: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    devca.init_ca(other)
    devca.issue_client(other, "branch-a")
    bundle = _bundle(tmp_path, ca / "ca.pem", other)
    certs.load_client_credentials(bundle, "branch-a")  # unchecked: loads (tests use it)
    with pytest.raises(OwnCertificateUnusable, match="would be refused by a server that trusts"):
        certs.load_client_credentials(bundle, "branch-a", check_self=True)


def test_an_expired_certificate_is_refused_naming_its_end(ca: Path, tmp_path: Path) -> None:
    issuer = tmp_path / "issuer"
    devca.init_ca(issuer)
    for name in ("ca.pem", "ca.key"):  # the federation's CA issues it, 30 days ago
        (issuer / name).write_bytes((ca / name).read_bytes())
    real_now = devca._now
    devca._now = lambda: real_now() - dt.timedelta(days=30)  # type: ignore[assignment]
    try:
        devca.issue_client(issuer, "branch-a", validity_days=2)
    finally:
        devca._now = real_now  # type: ignore[assignment]
    bundle = _bundle(tmp_path, ca / "ca.pem", issuer)
    with pytest.raises(OwnCertificateUnusable, match=r"expired on \d{4}-\d\d-\d\d .* UTC"):
        certs.load_client_credentials(bundle, "branch-a", check_self=True)


def test_a_certificate_of_another_name_is_refused(ca: Path, tmp_path: Path) -> None:
    devca.issue_client(ca, "branch-b")
    bundle = _bundle(tmp_path, ca / "ca.pem", ca, name="branch-b")  # saved as branch-a
    with pytest.raises(OwnCertificateUnusable, match="names 'branch-b', not 'branch-a'"):
        certs.load_client_credentials(bundle, "branch-a", check_self=True)


def test_missing_files_are_named_in_both_layouts(ca: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingCertificate, match=r"the folder .*nowhere does not exist"):
        certs.load_client_credentials(tmp_path / "nowhere", "branch-a")
    bundle = _bundle(tmp_path, ca / "ca.pem", ca)
    (bundle / "branch-a.key").unlink()
    with pytest.raises(MissingCertificate) as missing:
        certs.load_client_credentials(bundle, "branch-a")
    assert str(missing.value) == (
        f"private key of client 'branch-a' not found at {bundle}/clients/branch-a.key "
        f"nor {bundle}/branch-a.key"
    )
