"""``secagg bench ... --out F/x.json`` where ``F`` is a file, not a folder: the refusal
says so, as ``keyholder-init --key`` does (``the folder F is a file, not a folder``).

Second review of 6274ab22 (helper brief 326, 2026-12-07): the check asked only whether
the folder was a folder, and said ``the folder F does not exist`` of a file that is
there, which sends the user looking for a missing folder they can see.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path


class _Started(Exception):
    """The benchmark would have run: its --out was taken."""


def _refusal(*args: str) -> str:
    """The one printable line of ``secagg bench`` refusing its --out, exit 2."""
    with mock.patch("secagg.apps.bench.emit", side_effect=_Started):
        result: Result = CliRunner().invoke(main, ["bench", *args])
    assert not isinstance(result.exception, _Started), "the benchmark started"
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), result.output
    return lines[0]


@pytest.mark.parametrize("command", ["masking", "dp"])
@pytest.mark.parametrize("typed", ["runs", "./runs", "d/runs"])
def test_a_file_where_the_folder_should_be_is_said_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, typed: str
) -> None:
    """Before: ``the folder runs does not exist`` of a file ``runs`` that is there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / typed).write_text("not a folder\n")
    line = _refusal(command, "--out", f"{typed}/x.json")
    assert line.endswith(f"the folder {typed} is a file, not a folder"), line


def test_a_missing_folder_still_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _refusal("masking", "--out", "runs/x.json")
    assert line.endswith("the folder runs does not exist"), line


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(
        st.characters(whitelist_categories=("Ll", "Lu", "Nd", "Zs", "Cc")), min_size=1, max_size=8
    )
)
def test_any_file_in_its_place_is_said_a_file(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    if name.strip() in ("", ".", "..") or "\x00" in name:
        return
    folder = tmp_path_factory.mktemp("out") / name
    folder.write_text("")
    line = _refusal("masking", "--out", str(folder / "x.json"))
    assert line.endswith(f"the folder {shown_path(str(folder))} is a file, not a folder"), line
