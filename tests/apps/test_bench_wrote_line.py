"""``secagg bench ... --out FILE``'s line on stdout saying where the JSON went (``wrote
FILE (dp: 1 cell in 1.2 s)``): one printable line whatever ``FILE`` is called, the path
shown by ``shown_path`` as the command's errors show it.

Helper brief 325 (2026-12-07), found beside item 3 (``audit report``'s written files
printed raw): ``bench dp --out $'a\\nb/x.json'`` printed ``wrote a`` and ``b/x.json (dp:
...)`` on two lines, and an escape in the name reached the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from _odd_names import LINE_BREAKER, NAME_CHARACTER
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.bench import _emit_bench
from secagg.apps.commands.common import shown_path

#: a benchmark's result as ``emit`` takes it (what its headline reads)
RESULT = {"benchmark": "dp", "cells": [{"status": "complete"}], "seconds": 1.25}


def _wrote_line(out: str, capsys: pytest.CaptureFixture[str]) -> str:
    """The one printable line ``_emit_bench`` prints for ``out``, the file written whole."""
    _emit_bench("secagg bench dp", dict(RESULT), out)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), lines
    assert json.loads(Path(out).read_text()) == RESULT
    return lines[0]


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "a\tb", "a\x1b[31mred", "a\u202eb", "a\u2028b"])
def test_an_odd_out_is_named_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Before: a line break split the line, an escape reached the terminal."""
    (tmp_path / name).mkdir()
    out = str(tmp_path / name / "x.json")
    line = _wrote_line(out, capsys)
    assert line == f"wrote {shown_path(out)} (dp: 1 cell in 1.2 s)", line


def test_a_plain_out_is_named_as_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "my results.json")
    assert _wrote_line(out, capsys) == f"wrote {out} (dp: 1 cell in 1.2 s)"


def test_the_command_prints_it_so(tmp_path: Path) -> None:
    """The whole command (a benchmark of seconds): its one stdout line."""
    (tmp_path / "a\nb").mkdir()
    out = str(tmp_path / "a\nb" / "x.json")
    result = CliRunner().invoke(main, ["bench", "dp", "--d", "1000", "--runs", "1", "--out", out])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {shown_path(out)} (dp: "), lines


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    before=st.text(NAME_CHARACTER, max_size=8),
    odd=LINE_BREAKER,
    after=st.text(NAME_CHARACTER, max_size=8),
)
def test_any_out_with_a_control_character_is_one_line(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    before: str,
    odd: str,
    after: str,
) -> None:
    name = before + odd + after
    if len(os.fsencode(name)) > 200 or name in (".", ".."):  # another mistake
        return
    folder = tmp_path_factory.mktemp("out")
    try:
        out = str(folder / name)
        assert _wrote_line(out, capsys).startswith(f"wrote {shown_path(out)} (")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
