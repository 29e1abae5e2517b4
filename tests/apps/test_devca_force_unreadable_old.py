"""``secagg certs issue NAME --force`` never re-admits a certificate it cannot bar.

Certificate review (2026-12-07): re-issuing lifts the name's bar, and the certificate it
replaces (valid for TLS until it expires) stays out only by its own entry on the list.
That entry was written only if the old file read (``contextlib.suppress``): with the
file corrupted or deleted, ``--force`` lifted the bar and the old certificate, a leaked
key's, was admitted again as the branch. Now the command refuses in one line (exit 2),
nothing written, whenever a replaced certificate existed (its file, its key, or the
name's bar says so) but does not read; the way back is the file from a backup, or
another name. In process: the development CA, the verifier, click's runner.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.transport import certs


def _issued(tmp_path: Path) -> tuple[Path, x509.Certificate]:
    """A CA with b1 issued; b1's certificate (its key is taken to have leaked)."""
    directory = tmp_path / "ca"
    devca.init_ca(directory)
    devca.issue_client(directory, "b1")
    pem = (directory / "clients" / "b1.pem").read_bytes()
    return directory, x509.load_pem_x509_certificate(pem)


def _corrupt(directory: Path) -> None:
    (directory / "clients" / "b1.pem").write_bytes(b"not a certificate\n")


def _delete_then_revoke_by_name(directory: Path) -> None:
    """The certificate deleted here; ``revoke --force`` bars the name (all it can)."""
    (directory / "clients" / "b1.pem").unlink()
    devca.revoke(directory, "b1", force=True)


def _delete_with_its_key_kept(directory: Path) -> None:
    (directory / "clients" / "b1.pem").unlink()


#: what can happen to b1's certificate file before the operator re-issues b1 with --force
MISHAPS: dict[str, Callable[[Path], None]] = {
    "corrupted": _corrupt,
    "deleted, the name revoked": _delete_then_revoke_by_name,
    "deleted, its key kept": _delete_with_its_key_kept,
}


@pytest.mark.parametrize("mishap", sorted(MISHAPS))
def test_force_never_puts_a_new_certificate_beside_an_admitted_old_one(
    tmp_path: Path, mishap: str
) -> None:
    """Re-issued means the old certificate is barred; else nothing is written (and a
    revoked name stays barred). Before: re-issued each time, the old certificate (the
    leaked key's) admitted as b1 beside the new one."""
    directory, old = _issued(tmp_path)
    MISHAPS[mishap](directory)
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    try:
        devca.issue_client(directory, "b1", force=True)
    except devca.ReplacedCertificateUnknown:
        after = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
        assert after == before  # nothing written: no new key beside the old one
        if mishap == "deleted, the name revoked":
            with pytest.raises(certs.PeerRefused, match="revoked"):
                certs.PeerVerifier(directory).identify(old)
    else:
        with pytest.raises(certs.PeerRefused, match="revoked"):
            certs.PeerVerifier(directory).identify(old)


@pytest.mark.parametrize("mishap", sorted(MISHAPS))
def test_the_cli_refuses_in_one_line_naming_the_way_back(tmp_path: Path, mishap: str) -> None:
    directory, _ = _issued(tmp_path)
    MISHAPS[mishap](directory)
    result = CliRunner().invoke(main, ["certs", "issue", "b1", "--dir", str(directory), "--force"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, lines
    assert len(lines) == 1, lines
    assert "b1" in lines[0] and "restore it from a backup" in lines[0], lines
    assert str(directory / "clients" / "b1.") in lines[0], lines


def test_a_restored_certificate_is_barred_and_the_branch_re_admitted(tmp_path: Path) -> None:
    """The way back the refusal names: with the file back, the old certificate is barred
    (by its signed part too) and the new one admitted."""
    directory, old = _issued(tmp_path)
    saved = (directory / "clients" / "b1.pem").read_bytes()
    _corrupt(directory)
    with pytest.raises(devca.ReplacedCertificateUnknown):
        devca.issue_client(directory, "b1", force=True)
    (directory / "clients" / "b1.pem").write_bytes(saved)
    new = devca.issue_client(directory, "b1", force=True)
    verifier = certs.PeerVerifier(directory)
    with pytest.raises(certs.PeerRefused, match="revoked"):
        verifier.identify(old)
    assert certs.signed_part_digest(old) in certs.load_revocations(directory).signed_parts
    fresh = x509.load_pem_x509_certificate(new.certificate.read_bytes())
    assert verifier.identify(fresh).name == "b1"


def test_force_on_a_name_with_nothing_on_file_is_a_first_issue(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    devca.init_ca(directory)
    issued = devca.issue_client(directory, "b1", force=True)
    assert issued.certificate.exists()
    assert certs.load_revocations(directory) == certs.RevocationList()


def test_a_corrupted_certificate_file_does_not_stop_revoke_force(tmp_path: Path) -> None:
    """Before: revoke failed on the unreadable file, --force too, so the leaked key's
    name could not be barred until the file was moved away. Now without --force one
    line says --force bars the name; with it the name is barred (that certificate
    with it), and issue --force will not lift the bar without the file."""
    directory, old = _issued(tmp_path)
    _corrupt(directory)
    listed = (directory / "revoked.json").read_bytes()
    with pytest.raises(certs.CertificateStoreError, match="--force to bar the name"):
        devca.revoke(directory, "b1")
    assert (directory / "revoked.json").read_bytes() == listed
    assert "b1" in devca.revoke(directory, "b1", force=True).names
    verifier = certs.PeerVerifier(directory)
    with pytest.raises(certs.PeerRefused, match="revoked"):
        verifier.identify(old)
    with pytest.raises(devca.ReplacedCertificateUnknown):
        devca.issue_client(directory, "b1", force=True)
    with pytest.raises(certs.PeerRefused, match="revoked"):
        verifier.identify(old)
