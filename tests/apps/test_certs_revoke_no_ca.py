"""``secagg certs revoke`` on a folder without a CA names ``--dir``, in ``issue``'s words.

Why: ``certs revoke --dir D NAME`` on a folder holding no CA said ``Error: no CA in D
(secagg certs init makes one)``, naming the folder but not the flag that gave it, while
``certs issue`` on the same folder says ``Invalid value for --dir: CA certificate not
found at D/ca.pem`` (CLI review, 2026-12-06). Both now say the latter, exit 2, and the
folder is left as it was (no revocation list written into it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main


def _error_line(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1]


@pytest.mark.parametrize("kind", ["empty folder", "missing folder", "a file"])
def test_revoke_without_a_ca_names_dir_as_issue_does(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "certs"
    if kind == "empty folder":
        folder.mkdir()
    elif kind == "a file":
        folder.write_text("not a folder")
    revoke = _error_line(["certs", "revoke", "branch-001", "--dir", str(folder)])
    issue = _error_line(["certs", "issue", "branch-001", "--dir", str(folder)])
    # the same words up to the way out, where issue adds 'secagg certs init' (a revocation
    # is never a new CA's: tests/apps/test_certs_no_ca_advice.py)
    assert issue.startswith(revoke), (revoke, issue)
    assert revoke.startswith("Error: Invalid value for --dir: CA certificate not found at")
    assert str(folder / "ca.pem") in revoke, revoke
    if kind == "empty folder":
        assert list(folder.iterdir()) == []  # nothing written into it
    elif kind == "missing folder":
        assert not folder.exists()
