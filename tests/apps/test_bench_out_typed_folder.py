"""``secagg bench ... --out FILE`` whose folder is missing (or not writable) names that
folder as it was typed: a relative ``--out runs/x.json`` is refused as ``the folder runs
does not exist``, not as the absolute path the check computed.

Helper brief 325 (2026-12-07, item 4): the check took the folder of
``os.path.abspath(value)`` and named that, so ``--out runs/x.json`` typed in
``/home/ana/project`` said ``the folder /home/ana/project/runs does not exist``: a path
the user never typed, and a long one to match against what they did (the other path
flags, ``certs init --dir``, ``keyholder-init --key``, ``audit``, name the path as typed).
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands import bench as bench_commands
from secagg.apps.commands.common import shown_path


class _Started(Exception):
    """The benchmark would have run: its --out was taken."""


def _bench(*args: str) -> Result:
    with mock.patch("secagg.apps.bench.emit", side_effect=_Started):
        return CliRunner().invoke(main, ["bench", *args])


def _line(result: Result, status: int) -> str:
    """The one line of the refusal, with ``status``, nothing started."""
    assert not isinstance(result.exception, _Started), "the benchmark started"
    assert "Traceback" not in result.output
    assert result.exit_code == status, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), result.output
    return lines[0]


@pytest.mark.parametrize("command", ["masking", "grpc"])
@pytest.mark.parametrize("folder", ["runs", "runs/2026/dec", "./runs", "../gone-above/runs"])
def test_a_missing_folder_is_named_as_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, folder: str
) -> None:
    # run one folder down, so that ``..`` is still inside the test's own folder
    inner = tmp_path / "inner"
    inner.mkdir()
    monkeypatch.chdir(inner)
    line = _line(_bench(command, "--out", f"{folder}/x.json"), 2)
    assert f"the folder {folder} does not exist" in line, line
    assert str(tmp_path) not in line, line


def test_an_absolute_path_is_named_absolute(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    line = _line(_bench("masking", "--out", str(folder / "x.json")), 2)
    assert f"the folder {folder} does not exist" in line, line


def test_a_folder_the_machine_will_not_let_it_write_in_is_named_as_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No permission (``os.access`` says so: the test may run as root) is the machine's,
    exit 1, naming the folder as typed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(bench_commands.os, "access", lambda *_a, **_k: False)
    line = _line(_bench("masking", "--out", "runs/x.json"), 1)
    assert line == "Error: --out: Permission denied: runs", line


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(
        st.text(
            st.characters(whitelist_categories=("Ll", "Lu", "Nd", "Zs", "Cc")),
            min_size=1,
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_relative_missing_folder_is_named_as_typed(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    if any(part.strip() in ("", ".", "..") or "\x00" in part for part in parts):
        return
    folder = os.path.join(*parts)
    if len(os.fsencode(folder)) > 200:
        return
    cwd = tmp_path_factory.mktemp("cwd")
    here = os.getcwd()
    os.chdir(cwd)
    try:
        line = _line(_bench("masking", "--out", os.path.join(folder, "x.json")), 2)
    finally:
        os.chdir(here)
    assert f"the folder {shown_path(folder)} does not exist" in line, line
    assert str(cwd) not in line, line
