"""A private key file that group or others may read is refused, not merely warned about.

Why: a key readable by other local users is a key they may already have copied; loading
it anyway (with a log line nobody reads) turns a misconfiguration into a silent
compromise. The operator fixes it with ``chmod 600``; one who truly cannot (a secret
mount with fixed modes) opts out explicitly.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.devca import init_ca, issue_client
from secagg.errors import ConfigurationError
from secagg.transport.certs import (
    CertificateStoreError,
    InsecureKeyFile,
    load_client_credentials,
    load_private_key_file,
    load_server_credentials,
)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    init_ca(directory)
    issue_client(directory, "branch-a")
    return directory


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The common default umask (022), which would leave new files world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610], ids=oct)
def test_a_server_key_readable_by_others_is_refused(ca_dir: Path, mode: int) -> None:
    key = ca_dir / "server.key"
    key.chmod(mode)
    with pytest.raises(InsecureKeyFile) as caught:
        load_server_credentials(ca_dir)
    message = str(caught.value)
    assert str(key) in message
    assert f"chmod 600 {key}" in message
    # the commands offer no switch around the rule: the message names none (review)
    assert "allow_insecure_key_permissions" not in message
    assert f"mode {mode:04o}" in message
    # a configuration error of the certificate store: callers already catch these
    assert isinstance(caught.value, CertificateStoreError)
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.path == key


def test_a_client_key_in_a_bundle_readable_by_others_is_refused(ca_dir: Path) -> None:
    key = ca_dir / "clients" / "branch-a.key"
    key.chmod(0o644)
    with pytest.raises(InsecureKeyFile, match=f"chmod 600 {key}"):
        load_client_credentials(ca_dir, "branch-a")
    explicit = ca_dir / "elsewhere.key"
    explicit.write_bytes(key.read_bytes())
    explicit.chmod(0o640)
    with pytest.raises(InsecureKeyFile, match=f"chmod 600 {explicit}"):
        load_client_credentials(ca_dir, "branch-a", key=explicit)


def test_a_ca_key_readable_by_others_stops_issuing(ca_dir: Path) -> None:
    (ca_dir / "ca.key").chmod(0o644)
    with pytest.raises(InsecureKeyFile, match="CA private key"):
        issue_client(ca_dir, "branch-b")
    assert not (ca_dir / "clients" / "branch-b.key").exists()


def test_the_refusal_comes_before_the_key_is_parsed(tmp_path: Path) -> None:
    """Even a garbled key is refused for its mode first: the mode is the operator's
    first problem, and nothing of the file's content is echoed either way."""
    key = tmp_path / "garbled.key"
    key.write_bytes(b"not a key")
    key.chmod(0o644)
    with pytest.raises(InsecureKeyFile):
        load_private_key_file(key, "test key")


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700], ids=oct)
def test_owner_only_modes_load(ca_dir: Path, mode: int) -> None:
    (ca_dir / "server.key").chmod(mode)
    (ca_dir / "clients" / "branch-a.key").chmod(mode)
    load_server_credentials(ca_dir)
    load_client_credentials(ca_dir, "branch-a")


def test_the_explicit_opt_out_loads_and_still_warns(
    ca_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (ca_dir / "server.key").chmod(0o640)
    (ca_dir / "clients" / "branch-a.key").chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="secagg.transport.certs"):
        server = load_server_credentials(ca_dir, allow_insecure_key_permissions=True)
        client = load_client_credentials(ca_dir, "branch-a", allow_insecure_key_permissions=True)
    assert server.private_key == (ca_dir / "server.key").read_bytes()
    assert client.private_key == (ca_dir / "clients" / "branch-a.key").read_bytes()
    warnings = [r.getMessage() for r in caplog.records if r.name == "secagg.transport.certs"]
    assert len(warnings) == 2
    assert all("chmod 600" in w for w in warnings)
    assert "PRIVATE" not in caplog.text


def test_certs_init_and_issue_write_owner_only_keys_that_load(
    tmp_path: Path, lax_umask: None
) -> None:
    """The normal path never trips the rule, whatever the umask."""
    directory = tmp_path / "certs"
    runner = CliRunner()
    init = runner.invoke(main, ["certs", "init", "--dir", str(directory)])
    assert init.exit_code == 0, init.output
    issue = runner.invoke(main, ["certs", "issue", "branch-a", "--dir", str(directory)])
    assert issue.exit_code == 0, issue.output
    keys = [directory / "ca.key", directory / "server.key", directory / "clients" / "branch-a.key"]
    for key in keys:
        assert _mode(key) == 0o600, key
    load_server_credentials(directory)
    load_client_credentials(directory, "branch-a")
    # and issuing reads the CA key under the same rule without complaint
    again = runner.invoke(main, ["certs", "issue", "branch-b", "--dir", str(directory)])
    assert again.exit_code == 0, again.output


def test_the_cli_reports_a_readable_ca_key_as_a_usage_error(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    init_ca(directory)
    (directory / "ca.key").chmod(0o644)
    result = CliRunner().invoke(main, ["certs", "issue", "branch-a", "--dir", str(directory)])
    assert result.exit_code == 2
    assert f"chmod 600 {directory / 'ca.key'}" in result.output


def test_a_branch_with_a_readable_key_stops_before_dialling(ca_dir: Path) -> None:
    """``secagg client`` loads its key before it dials: a readable key is a usage error
    (exit 2) naming the fix, and no connection is attempted (port 1 would refuse)."""
    key = ca_dir / "clients" / "branch-a.key"
    key.chmod(0o644)
    result = CliRunner().invoke(
        main,
        [
            "client", "--server", "127.0.0.1:1", "--name", "branch-a", "--certs", str(ca_dir),
            "--dimension", "4", "--connect-timeout", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"chmod 600 {key}" in " ".join(result.output.split())
    assert "Traceback" not in result.output
