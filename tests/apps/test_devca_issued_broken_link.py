"""``devca.issued_clients`` leaves out a name whose ``clients/NAME.pem`` is a symbolic
link to nothing, and says so (review leftover, 2026-12-07).

Before: the names were the ``*.pem`` entries of ``clients/``, links that lead to no file
included, so a certificate moved to a disk not mounted still counted as issued: the
roster built from it (``PeerVerifier(allowed=issued_clients(...))``, as its docstring
offers) admitted any CA-signed certificate of that name, one the CA can no longer show
or bar by fingerprint, and ``revoke``'s "(issued: ...)" listed it, all without a word.
Now the function keeps its word ("names that have a certificate"): such a name is left
out, with a warning naming the link and where it leads. In process, no subprocess.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from secagg.apps import devca
from secagg.transport import certs


def _ca_with_a_moved_certificate(tmp_path: Path) -> tuple[Path, bytes]:
    """A CA with b1 issued and b2 issued then moved away, a link to nothing in its place;
    b2's certificate (still signed by the CA, wherever it went)."""
    directory = tmp_path / "ca"
    devca.init_ca(directory)
    devca.issue_client(directory, "b1")
    devca.issue_client(directory, "b2")
    moved = directory / "clients" / "b2.pem"
    pem = moved.read_bytes()
    moved.unlink()
    moved.symlink_to(tmp_path / "unmounted" / "b2.pem")
    return directory, pem


def test_a_link_to_nothing_is_not_an_issued_name_and_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, _ = _ca_with_a_moved_certificate(tmp_path)
    with caplog.at_level(logging.WARNING, logger=devca.__name__):
        assert devca.issued_clients(directory) == {"b1"}
    assert "b2.pem" in caplog.text and "unmounted" in caplog.text


def test_the_roster_from_issued_names_refuses_the_moved_name(tmp_path: Path) -> None:
    directory, moved_pem = _ca_with_a_moved_certificate(tmp_path)
    verifier = certs.PeerVerifier(directory, allowed=devca.issued_clients(directory))
    with pytest.raises(certs.PeerRefused, match="unknown client name"):
        verifier.identify(moved_pem)


def test_revoke_of_an_unknown_name_does_not_list_the_moved_name(tmp_path: Path) -> None:
    directory, _ = _ca_with_a_moved_certificate(tmp_path)
    with pytest.raises(devca.UnknownClient) as refused:
        devca.revoke(directory, "b3")
    assert "(issued: b1)" in str(refused.value)
