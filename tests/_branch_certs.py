"""Branch certificates from a development CA, for tests of the active variant.

Shared by the tests where branches prove who they are (tests/runtime/test_branch_policy.py,
tests/runtime/test_branch_budget.py): a CA made with :mod:`secagg.apps.devca`, one
client certificate per branch name, and each certificate's DER bytes, which the server's
``identity_of`` returns and an active round's spec lists."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from secagg.apps import devca


def branch_certificates(folder: Path, names: list[str]) -> tuple[Path, dict[str, bytes]]:
    """A development CA in ``folder / "certs"`` that issued one certificate per name:
    the CA folder and each name's certificate (DER)."""
    ca = folder / "certs"
    devca.init_ca(ca)
    ders = {}
    for name in names:
        devca.issue_client(ca, name)
        pem = (ca / "clients" / f"{name}.pem").read_bytes()
        ders[name] = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ca, ders
