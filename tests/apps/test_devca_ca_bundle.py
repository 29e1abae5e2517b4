"""``secagg certs issue`` and ``secagg certs revoke`` read ``ca.pem`` by the one CA rule.

Review of the CA rule (2026-12-05): the server, the verifier and every branch refuse a
``ca.pem`` holding more than one certificate (or a leaf), but the development CA read
only the first certificate of it itself, so ``certs issue`` went on signing with
whichever CA came first in a rotation bundle, and ``certs revoke`` wrote into a folder
no server can start from. Both now refuse it in the same one line naming the file,
before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.errors import SecAggError
from secagg.transport.certs import CertificateStoreError

_ACTIONS: dict[str, Callable[[Path], object]] = {
    "issue": lambda d: devca.issue_client(d, "branch-002"),
    "issue-again": lambda d: devca.issue_client(d, "branch-001", force=True),
    "revoke": lambda d: devca.revoke(d, "branch-001"),
}
_COMMANDS: dict[str, list[str]] = {
    "issue": ["certs", "issue", "branch-002"],
    "revoke": ["certs", "revoke", "branch-001"],
}


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-001")
    return directory


def _bundle(ca_dir: Path, tmp_path: Path) -> None:
    """Put the current CA and a second one side by side in ``ca.pem``, as a rotation would."""
    other = tmp_path / "next-ca"
    devca.init_ca(other)
    ca = ca_dir / "ca.pem"
    ca.write_bytes(ca.read_bytes() + (other / "ca.pem").read_bytes())


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*.*")}


@pytest.mark.parametrize("action", sorted(_ACTIONS))
def test_a_bundle_in_ca_pem_is_refused_and_nothing_is_written(
    ca_dir: Path, tmp_path: Path, action: str
) -> None:
    _bundle(ca_dir, tmp_path)
    before = _snapshot(ca_dir)

    with pytest.raises(CertificateStoreError) as refused:
        _ACTIONS[action](ca_dir)
    message = str(refused.value)
    assert "\n" not in message
    assert str(ca_dir / "ca.pem") in message
    assert "holds 2 certificates" in message
    assert "exactly one CA" in message
    assert _snapshot(ca_dir) == before  # bad input changes no state


@pytest.mark.parametrize("action", sorted(_ACTIONS))
def test_a_leaf_as_ca_pem_is_named(ca_dir: Path, action: str) -> None:
    (ca_dir / "ca.pem").write_bytes((ca_dir / "clients" / "branch-001.pem").read_bytes())
    before = _snapshot(ca_dir)

    with pytest.raises(CertificateStoreError, match="is not a CA certificate"):
        _ACTIONS[action](ca_dir)
    assert _snapshot(ca_dir) == before


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_the_cli_refuses_a_bundle_in_one_line(ca_dir: Path, tmp_path: Path, command: str) -> None:
    _bundle(ca_dir, tmp_path)

    result: Result = CliRunner().invoke(main, [*_COMMANDS[command], "--dir", str(ca_dir)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "holds 2 certificates" in lines[0]
    assert "ca.pem" in lines[0]


@pytest.mark.parametrize("action", sorted(_ACTIONS))
def test_a_single_ca_still_issues_and_revokes(ca_dir: Path, action: str) -> None:
    _ACTIONS[action](ca_dir)


def test_revoking_without_a_ca_keeps_its_own_line(tmp_path: Path) -> None:
    with pytest.raises(devca.UnknownClient, match=r"no CA in .* \(secagg certs init makes one\)"):
        devca.revoke(tmp_path, "branch-001")
