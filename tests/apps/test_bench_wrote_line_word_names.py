"""``secagg bench ... --out FILE``'s ``wrote FILE (...)`` line names FILE after
``wrote``, shown by ``shown_path``, whatever FILE is called: a name that is also a piece
of the word ``wrote`` is no exception.

Second review of e17689b6 (helper brief 326, 2026-12-07): the line was made by
replacing the first occurrence of FILE in ``wrote FILE (...)`` with its shown form, so a
name found inside ``wrote `` itself was shown there instead: ``--out 'e '`` (a trailing
blank, which ``shown_path`` quotes) printed ``wrot'e 'e  (dp: ...)``, and ``--out ' '``
printed ``wrote' '  (dp: ...)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _odd_names import NAME_CHARACTER
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secagg.apps.commands.bench import _emit_bench
from secagg.apps.commands.common import shown_path

#: a benchmark's result as ``emit`` takes it (what its headline reads)
RESULT = {"benchmark": "dp", "cells": [{"status": "complete"}], "seconds": 1.25}
HEADLINE = "(dp: 1 cell in 1.2 s)"


def _wrote_line(folder: Path, out: str, capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``_emit_bench`` prints for ``out`` typed in ``folder``."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        _emit_bench("secagg bench dp", dict(RESULT), out)
        assert json.loads(Path(out).read_text()) == RESULT
    finally:
        os.chdir(here)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), lines
    return lines[0]


@pytest.mark.parametrize("out", ["e ", "te ", "rote ", " ", "  ", "wrote "])
def test_a_name_inside_the_word_wrote_is_shown_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """Before: ``wrot'e 'e  (dp: ...)`` for ``--out 'e '``."""
    assert _wrote_line(tmp_path, out, capsys) == f"wrote {shown_path(out)} {HEADLINE}"


@pytest.mark.parametrize("out", ["e", "w", "wrote", "x.json"])
def test_a_plain_name_is_as_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """A plain name (one inside ``wrote`` included) was right before and stays so."""
    assert _wrote_line(tmp_path, out, capsys) == f"wrote {out} {HEADLINE}"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(out=st.text(NAME_CHARACTER, min_size=1, max_size=8))
@example(out="e ")
@example(out="ote ")
def test_any_name_is_shown_once_after_wrote(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    if len(os.fsencode(out)) > 200 or out in (".", ".."):  # another mistake
        return
    folder = tmp_path_factory.mktemp("out")
    assert _wrote_line(folder, out, capsys) == f"wrote {shown_path(out)} {HEADLINE}"
