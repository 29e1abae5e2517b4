"""``secagg audit report``'s lines on stdout naming the files it wrote (ledger-report.md,
.png, .html): one printable line each, whatever ``--out`` is called.

Helper brief 325 (2026-12-07, item 3): those lines printed each path raw while the rest
of the command shows a path by ``shown_path``, so an ``--out`` folder named ``$'a\\nb'``
split each written file's line in two (a script reading one path a line read two that
are not files) and an escape in its name reached the terminal.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from _odd_names import LINE_BREAKER, NAME_CHARACTER
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path
from secagg.ledger import export_public_key

#: the files a report writes, in the order it names them (the .png when it has a plot)
_FILES = ("ledger-report.md", "ledger-report.png", "ledger-report.html")


def _report(folder: Path, out: str) -> Result:
    """``audit report`` of a signed two-row ledger in ``folder``, to ``out``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [ledger_row(1, None, None), ledger_row(2, None, None)]
    path, key = write_ledger(folder / "l.ledger", rows)
    pem = export_public_key(key.public_key, folder / "ledger.pub")
    return CliRunner().invoke(
        main, ["audit", "report", str(path), "--pubkey", str(pem), "--out", out]
    )


def _written_lines(result: Result, out: str) -> list[str]:
    """stdout's lines (exit 0), checked to be the files written, each one printable line."""
    assert result.exit_code == 0, result.output
    written = [Path(out) / name for name in _FILES if (Path(out) / name).exists()]
    assert len(written) >= 2, written  # the .md and the .html at least
    lines = result.stdout.splitlines()
    assert lines == [shown_path(str(path)) for path in written], result.stdout
    assert all(line.isprintable() for line in lines), lines
    return lines


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "a\tb", "a\x1b[31mred", "a\u202eb", "a\u2028b"])
def test_an_odd_out_folder_is_named_one_line_a_file(tmp_path: Path, name: str) -> None:
    """Before: a line break split each line, an escape reached the terminal."""
    out = str(tmp_path / name)
    lines = _written_lines(_report(tmp_path, out), out)
    assert all(line.startswith(repr(str(Path(out)))[:-1]) for line in lines), lines


def test_a_plain_out_folder_is_named_as_before(tmp_path: Path) -> None:
    out = str(tmp_path / "my report")
    lines = _written_lines(_report(tmp_path, out), out)
    assert lines[0] == str(Path(out) / "ledger-report.md")
    assert lines[-1] == str(Path(out) / "ledger-report.html")


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    before=st.text(NAME_CHARACTER, max_size=8),
    odd=LINE_BREAKER,
    after=st.text(NAME_CHARACTER, max_size=8),
)
def test_any_out_folder_with_a_control_character_gets_one_line_a_file(
    tmp_path_factory: pytest.TempPathFactory, before: str, odd: str, after: str
) -> None:
    name = before + odd + after
    if len(os.fsencode(name)) > 200 or name.strip() in (".", ".."):  # another mistake
        return
    folder = tmp_path_factory.mktemp("out")
    try:
        _written_lines(_report(folder, str(folder / name)), str(folder / name))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
