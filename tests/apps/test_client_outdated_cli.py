"""``secagg client`` facing a server of an older secagg release: one line, exit 1.

Runtime review, 2026-12-05: the branch refused each of the older server's round starts
(wire version 2) and waited for the next one for as long as the server ran; the command
never ended. It now stops at the first with one line naming both wire versions and what
to upgrade, and exits 1: the fault is the server's, as when it refuses the branch (2 is
a mistake in the branch's own options or files, 3 a round its policy refused), and a
service manager's restart brings the branch back once the server is upgraded. The
branch's real loop and ``run_branch`` run; only the session is a stand-in that delivers
the older server's round start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _endpoints import version_2_round_start
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.runtime.client import ClientStats, FederationClient


class _OlderServer:
    """A branch's session with an older server: its round start, then silence."""

    def __init__(self) -> None:
        self.messages = [version_2_round_start(1, 6)]
        self.sent: list[bytes] = []

    def receive(self, timeout: float | None = None) -> bytes | None:
        return self.messages.pop(0) if self.messages else None

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)


@pytest.fixture
def branch_certs(tmp_path: Path) -> Path:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "branch-a")
    return ca


def test_a_branch_facing_an_older_server_exits_1_with_one_line(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _OlderServer()

    def serve(self: FederationClient, dial: object, **kwargs: Any) -> ClientStats:
        self.reconnected(session)  # type: ignore[arg-type]
        return self.run(idle_timeout=kwargs.get("idle_timeout"))

    monkeypatch.setattr(FederationClient, "serve", serve)
    result = CliRunner().invoke(
        main,
        ["client", "--server", "127.0.0.1:50999", "--name", "branch-a", "--certs",
         str(branch_certs), "--dimension", "6", "--idle", "1"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "secagg client: branch-a: the server speaks an older secagg wire version (round 1's "
        "start is v2, this branch needs v3): upgrade secagg on the server to this branch's "
        "release, then start the branch again"
    ], result.output
    assert len(session.sent) == 1  # it left the round before it stopped
