"""The certificate store reads each file through one open: a certificate, a CA, a key
or a revocation list that is a named pipe is one typed refusal, never a hang.

Why: ``--certs`` is checked by the command line, and this layer opened each file again
by its path (``read_bytes``, or a blocking ``os.open`` for keys), so a file swapped for a
named pipe between the two blocked a party's start forever, waiting for a writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fifo import in_thread, needs_fifos

from secagg.transport.certs import (
    CertificateStoreError,
    UnreadableRevocationList,
    load_ca_certificate,
    load_certificate_file,
    load_private_key_file,
    load_revocations,
)

READERS: dict[str, Callable[[Path], Any]] = {
    "certificate": lambda path: load_certificate_file(path, "server certificate"),
    "CA": load_ca_certificate,
    "private key": lambda path: load_private_key_file(path, "server private key"),
    "revocations": lambda path: load_revocations(path, missing_ok=False),
}


@needs_fifos
@pytest.mark.parametrize("reader", READERS, ids=list(READERS))
def test_a_named_pipe_is_a_typed_refusal_not_a_hang(tmp_path: Path, reader: str) -> None:
    fifo = tmp_path / "file.pem"
    os.mkfifo(fifo, 0o600)
    outcome = in_thread(lambda: READERS[reader](fifo), fifo)
    assert isinstance(outcome, CertificateStoreError), outcome
    assert f"{fifo} is a named pipe" in str(outcome)
    if reader == "revocations":
        assert isinstance(outcome, UnreadableRevocationList)  # fails closed, not "none"


def test_a_certificate_past_its_bound_is_refused_unread(tmp_path: Path) -> None:
    from secagg.transport.certs import MAX_CERTIFICATE_BYTES

    path = tmp_path / "server.pem"
    path.write_bytes(b"-" * (MAX_CERTIFICATE_BYTES + 1))
    with pytest.raises(CertificateStoreError, match="is larger than 1024 KiB"):
        load_certificate_file(path, "server certificate")


def test_the_certificate_served_is_the_one_checked_against_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The branch's certificate was read to be checked (against its key, the CA) and
    read again for gRPC: a file swapped between the two was served unchecked. The swap
    is made right after the first parse of the certificate."""
    from cryptography import x509

    from secagg.apps.devca import init_ca, issue_client
    from secagg.transport.certs import CaLayout, load_client_credentials

    ca = tmp_path / "ca"
    init_ca(ca)
    issue_client(ca, "b1")
    issue_client(ca, "b2")
    layout = CaLayout(ca)
    checked = layout.client_cert("b1").read_bytes()
    parse = x509.load_pem_x509_certificate
    swapped: list[bool] = []

    def parse_then_swap(data: bytes, *args: Any) -> x509.Certificate:
        parsed = parse(data, *args)
        if data == checked and not swapped:
            swapped.append(True)
            layout.client_cert("b1").write_bytes(layout.client_cert("b2").read_bytes())
        return parsed

    monkeypatch.setattr(x509, "load_pem_x509_certificate", parse_then_swap)
    credentials = load_client_credentials(ca, "b1")
    assert swapped
    assert credentials.certificate_chain == checked
