"""``secagg certs init --dir a/b/c`` where ``a/b`` does not exist: one line naming ``--dir``.

Why: the command made every missing folder of the path, silently (newcomer walk,
2026-12-06): ``--dir /etc/secag/certs``, a typo, grew a new tree holding the CA's
private key, and the command said only "CA in /etc/secag/certs". It makes the last
folder of ``--dir`` (``certs init --dir certs``, as docs/deployment.md shows) and,
like the server's ``[server] state`` folder, refuses a path whose parent is missing,
exit 2, naming ``--dir`` and the folder to create, before any key is made.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("depth", [1, 3])
def test_a_dir_whose_parent_is_missing_is_refused_naming_dir(tmp_path: Path, depth: int) -> None:
    missing_parent = tmp_path.joinpath(*[f"typo{i}" for i in range(depth)])
    target = missing_parent / "certs"
    line = _one_line(_run("certs", "init", "--dir", str(target)))
    assert "--dir" in line, line
    assert f"{missing_parent} does not exist" in line, line
    assert not (tmp_path / "typo0").exists()  # nothing made, no key anywhere


def test_the_last_folder_of_dir_is_still_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's ``secagg certs init --dir certs``, in a folder without ``certs``."""
    monkeypatch.chdir(tmp_path)
    result = _run("certs", "init", "--dir", "certs")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "certs" / "ca.pem").is_file()
    nested = _run("certs", "init", "--dir", str(tmp_path / "certs" / "second"))
    assert nested.exit_code == 0, nested.output  # a parent that exists: made as before
    assert (tmp_path / "certs" / "second" / "ca.key").is_file()
