"""A branch or key holder whose ``--certs`` holds no certificate of its name is told how
one is issued, in its one line naming ``--certs``.

Why: the walk-through of 2026-12-05 went from ``keyholder-init`` to ``keyholder --name
compliance`` and stopped at ``certificate of client 'compliance' not found at ...``,
which did not say that the key holder's certificate is issued like a branch's; the
deployment guide now has the step, and the line names the command too (walk-through of
2026-12-07). A folder that does not exist keeps its own words.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main


def _error_line(args: list[str]) -> str:
    """The one line of a usage error, after checking its exit status (2)."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def _party(command: str, name: str, certs: Path) -> list[str]:
    """A dial of ``command`` (client or keyholder) as ``name`` with ``--certs certs``,
    to a port nobody serves: it stops at its certificates before any dial."""
    common = ["--server", "127.0.0.1:9", "--name", name, "--certs", str(certs)]
    if command == "client":
        return ["client", *common, "--dimension", "3"]
    return ["keyholder", *common]


@pytest.mark.parametrize(
    ("command", "name"), [("client", "branch-009"), ("keyholder", "compliance")]
)
def test_a_party_without_its_certificate_is_told_to_issue_one(
    tmp_path: Path, command: str, name: str
) -> None:
    certs = tmp_path / "certs"
    assert CliRunner().invoke(main, ["certs", "init", "--dir", str(certs)]).exit_code == 0
    line = _error_line(_party(command, name, certs))
    assert line.startswith(
        f"Error: Invalid value for '--certs': certificate of client '{name}' not found at "
    ), line
    assert f"issue one with 'secagg certs issue {name}' where the CA is" in line, line
    assert f"(ca.pem, {name}.pem, {name}.key)" in line, line
    # issued as the line says, the party gets past its certificates
    issued = CliRunner().invoke(main, ["certs", "issue", name, "--dir", str(certs)])
    assert issued.exit_code == 0, issued.output
    dialled = CliRunner().invoke(main, [*_party(command, name, certs), "--connect-timeout", "1"])
    assert "'--certs'" not in dialled.output, dialled.output
    assert dialled.exit_code == 1, dialled.output  # nobody serves port 9


def test_a_missing_certs_folder_keeps_its_own_words(tmp_path: Path) -> None:
    line = _error_line(_party("client", "branch-009", tmp_path / "nowhere"))
    assert "does not exist" in line, line
    assert "certs issue" not in line, line
