"""``secagg certs issue`` / ``revoke`` on a folder without a CA say where a relative
``--dir`` was read from and the way out.

Why: the walk-through of 2026-12-07 ran ``secagg certs issue branch-001`` in another
folder than the one ``certs init`` had made ``certs/`` in, and read only ``Error: Invalid
value for --dir: CA certificate not found at certs/ca.pem``: nothing said the relative
folder was the current one, nor how a CA is made. ``issue`` now names both ways out (the
CA's folder, or ``secagg certs init --dir D``); ``revoke`` names the folder only (a
revocation in a new CA bars nothing anyone holds); a file in the way keeps its own words.
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


def test_issue_in_another_folder_names_it_and_certs_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _error_line(["certs", "issue", "branch-001"])
    assert line.startswith("Error: Invalid value for --dir: CA certificate not found at"), line
    assert f"(read from the current folder {tmp_path})" in line, line
    assert "pass --dir the folder that holds the CA's ca.pem" in line, line
    assert "'secagg certs init --dir certs'" in line, line
    assert not (tmp_path / "certs").exists()  # nothing made


def test_revoke_names_the_folder_but_never_a_new_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _error_line(["certs", "revoke", "branch-001", "--dir", "certs"])
    assert f"(read from the current folder {tmp_path})" in line, line
    assert "pass --dir the folder that holds the CA's ca.pem" in line, line
    assert "certs init" not in line, line


def test_an_absolute_dir_is_named_without_the_current_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    line = _error_line(["certs", "issue", "branch-001", "--dir", str(folder)])
    assert f"CA certificate not found at {folder / 'ca.pem'}: pass --dir" in line, line
    assert "current folder" not in line, line
    assert f"'secagg certs init --dir {folder}'" in line, line


def test_a_file_in_the_way_keeps_its_own_words(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("not a folder")
    line = _error_line(["certs", "issue", "b", "--dir", str(tmp_path / "f" / "certs")])
    assert line.endswith("a part of that path is a file, not a folder"), line
    assert "certs init" not in line, line
