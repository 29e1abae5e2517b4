"""``secagg bench papers --out FOLDER``: a folder the command cannot make because of the
machine (a full disk, a quota, an I/O error, no permission, a read-only filesystem) is a
failure of the environment, exit 1, not a mistake in ``--out`` (exit 2): the same path
works once the machine lets it. A path that is the mistake (its parent missing, a file in
the way) stays a usage error naming the flag, as ``certs init --dir`` and ``keyholder-init
--key`` say them (:func:`secagg.apps.commands.common._path_failure`).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.commands import bench as bench_commands


def _mkdir_failing(monkeypatch: pytest.MonkeyPatch, folder: Path, code: int) -> None:
    """``os.mkdir`` of ``folder`` fails with ``code``; any other is made as usual."""
    real = os.mkdir

    def mkdir(path: object, *args: object, **kwargs: object) -> None:
        if os.fspath(path) == str(folder):  # type: ignore[arg-type]
            raise OSError(code, os.strerror(code), str(folder))
        real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bench_commands.os, "mkdir", mkdir)


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EACCES, errno.EROFS])
def test_a_folder_the_machine_cannot_make_is_an_environment_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    folder = tmp_path / "papers-results"
    _mkdir_failing(monkeypatch, folder, code)
    result = CliRunner().invoke(main, ["bench", "papers", "--smoke", "--out", str(folder)])
    assert result.exit_code == 1, result.output  # was 2: "Invalid value for '--out'"
    lines = _error_lines(result.output)
    assert lines == [f"Error: --out: {os.strerror(code)}: {folder}"], result.output
    assert "Traceback" not in result.output and not folder.exists()


@pytest.mark.parametrize("code", [errno.ENOENT, errno.ENOTDIR, errno.EEXIST])
def test_a_folder_the_path_keeps_from_being_made_is_a_usage_error_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    folder = tmp_path / "papers-results"
    _mkdir_failing(monkeypatch, folder, code)
    result = CliRunner().invoke(main, ["bench", "papers", "--smoke", "--out", str(folder)])
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and "'--out'" in lines[0], result.output
    assert os.strerror(code) in lines[0] and str(folder) in lines[0], lines[0]


def test_a_missing_parent_is_a_usage_error_without_a_fake(tmp_path: Path) -> None:
    """The real ``os.mkdir``: the parent of the folder does not exist."""
    folder = tmp_path / "absent" / "papers-results"
    result = CliRunner().invoke(main, ["bench", "papers", "--smoke", "--out", str(folder)])
    assert result.exit_code == 2, result.output
    assert "No such file or directory" in result.output and not folder.parent.exists()
