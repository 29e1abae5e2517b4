"""``secagg client`` / ``secagg keyholder`` given a server name that does not exist
say so in one line at once, not after ``--connect-timeout`` (front-door review,
2026-12-05: 30 s of redials of a name DNS had already denied)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main


@pytest.fixture
def party_certs(tmp_path: Path) -> Path:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "branch-a")
    devca.issue_client(ca, "keyholder")
    return ca


@pytest.mark.parametrize(
    ("command", "name", "extra"),
    [("client", "branch-a", ["--dimension", "4"]), ("keyholder", "keyholder", [])],
)
def test_a_server_name_that_does_not_resolve_fails_at_once_in_one_line(
    party_certs: Path, command: str, name: str, extra: list[str]
) -> None:
    began = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            command, "--server", "no-such-host.invalid:50051", "--name", name,
            "--certs", str(party_certs), "--connect-timeout", "30", *extra,
        ],
    )  # fmt: skip
    took = time.monotonic() - began
    assert took < 10.0, took  # 30 s (the whole --connect-timeout) before
    assert result.exit_code == 1, result.output  # as the CLI's other dial failures
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"secagg {command}: {name}: cannot reach no-such-host.invalid")
    assert "does not resolve" in lines[0] and "--server" in lines[0]
