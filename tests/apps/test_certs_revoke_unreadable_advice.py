"""``secagg certs revoke NAME`` over a certificate file it cannot read says what helps.

Why: every such file was refused with the same advice, "it cannot be barred by itself;
use --force to bar the name", which is right for a file that holds no certificate (a
corrupt one, a folder) but not for one the machine refused to read (no permission, an
I/O error): that certificate is intact and is barred by itself once it can be read, so
the first remedy is to let the command read it and revoke again (``--force`` still bars
the name at once). The usage errors (exit 2) named no flag (``Error: client certificate
at P is not a PEM certificate: ...``) where the one rule names ``--dir``; and a link at
``clients/NAME.pem`` to a file that is gone (or a loop of links) read ``'NAME' has no
certificate in clients (issued: NAME)``, contradicting itself. Nothing is written in any
of these cases: the revocation list is as it was.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.transport import certs as transport_certs


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    folder = tmp_path / "ca"
    devca.init_ca(folder)
    devca.issue_client(folder, "kh")
    return folder


def _revoke(ca: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["certs", "revoke", "kh", "--dir", str(ca), *extra])


def _line(result: Result, status: int) -> str:
    assert result.exit_code == status, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO], ids=errno.errorcode.get)
def test_a_certificate_the_machine_will_not_read_is_advised_to_be_read_again(
    ca: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    certificate = ca / "clients" / "kh.pem"
    revoked = (ca / "revoked.json").read_bytes()
    real = transport_certs.read_regular_file

    def read(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(certificate):
            raise OSError(code, os.strerror(code), str(certificate))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(transport_certs, "read_regular_file", read)
    line = _line(_revoke(ca), 1)
    assert line.startswith(f"Error: --dir: client certificate at {certificate} cannot be read")
    # was only "it cannot be barred by itself; use --force to bar the name 'kh'"
    assert "let secagg certs read it and revoke again" in line, line
    assert "bars the certificate itself" in line and "--force" in line, line
    assert (ca / "revoked.json").read_bytes() == revoked


def test_a_corrupt_certificate_names_dir_and_advises_force(ca: Path) -> None:
    (ca / "clients" / "kh.pem").write_bytes(b"not a certificate")
    revoked = (ca / "revoked.json").read_bytes()
    line = _line(_revoke(ca), 2)
    assert line.startswith("Error: Invalid value for --dir: client certificate at "), line
    assert "is not a PEM certificate" in line and "use --force to bar the name 'kh'" in line
    assert (ca / "revoked.json").read_bytes() == revoked
    assert _revoke(ca, "--force").exit_code == 0  # the name barred, as advised


@pytest.mark.parametrize("what", ["a folder", "a loop of links", "a link to nothing"])
def test_a_certificate_path_that_names_no_file_names_dir_and_does_not_contradict_itself(
    ca: Path, what: str
) -> None:
    certificate = ca / "clients" / "kh.pem"
    certificate.unlink()
    if what == "a folder":
        certificate.mkdir()
    elif what == "a loop of links":
        certificate.symlink_to(certificate.name)
    else:
        certificate.symlink_to(ca / "gone.pem")
    revoked = (ca / "revoked.json").read_bytes()
    line = _line(_revoke(ca), 2)
    assert line.startswith("Error: Invalid value for --dir: "), line
    assert "issued: kh" not in line, line  # "has no certificate ... (issued: kh)"
    assert str(certificate) in line and "use --force to bar the name" in line, line
    if what == "a link to nothing":
        assert f"a link to {ca / 'gone.pem'}, which does not exist" in line, line
    assert (ca / "revoked.json").read_bytes() == revoked
