"""``secagg audit verify`` / ``report``'s verdict line stays one printable line when the
ledger is typed in a form the ledger layer writes otherwise (``./L``, ``D//L``): the
reason's own mention of the file is shown too, not only the typed form.

Second review of 1f278885 (helper brief 324, 2026-12-07): ``_verdict_line`` showed the
ledger by ``shown_path`` where the reason names it as typed, but the ledger layer names
the file as :class:`~pathlib.Path` writes it (``./a\\x1bb.ledger`` becomes
``a\\x1bb.ledger``, ``D//L`` becomes ``D/L``), so ``FAILED: './a\\x1bb.ledger' cannot be
read as a ledger: a<ESC>b.ledger is not a readable ledger: ...`` sent the escape to the
terminal, which 1f278885 set out to stop. Exit statuses unchanged (1: FAILED).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path
from secagg.ledger import export_public_key


@pytest.fixture
def in_folder(tmp_path: Path) -> Iterator[Path]:
    """Run from ``tmp_path``: ``./L`` names a ledger there."""
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def _damaged(folder: Path, name: str) -> str:
    """A signed two-row ledger at ``folder/name`` missing its head table (FAILED, exit 1,
    with a reason that names the file), and its public key's PEM."""
    path, key = write_ledger(folder / name, [ledger_row(1, None, None), ledger_row(2, None, None)])
    pem = export_public_key(key.public_key, folder / "ledger.pub")
    db = sqlite3.connect(path)
    db.execute("DROP TABLE ledger_head")
    db.commit()
    db.close()
    return str(pem)


#: how a user may type the ledger at ``folder/name``
FORMS: dict[str, Callable[[Path, str], str]] = {
    "./L": lambda _folder, name: f"./{name}",
    "D//L": lambda folder, name: f"{folder}//{name}",
    "D/./L": lambda folder, name: f"{folder}/./{name}",
}

#: a ledger file's odd names: what a terminal would act on or not show as typed
ODD = {
    "an ANSI escape": "a\x1b[31mred.ledger",
    "a bidirectional override": "a\u202eb.ledger",
    "a delete": "a\x7fb.ledger",
}


def _line(folder: Path, typed: str, pem: str, command: str) -> str:
    args = ["audit", command, typed, "--pubkey", pem]
    if command == "report":
        args += ["--out", str(folder / "out")]
    result: Result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["verify", "report"])
@pytest.mark.parametrize("odd", sorted(ODD))
@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_ledger_typed_in_another_form_gets_a_printable_verdict(
    in_folder: Path, form: str, odd: str, command: str
) -> None:
    """Before: the reason named the file raw in the ledger layer's form, its escape
    reaching the terminal. Now: one printable line, the typed form first."""
    name = ODD[odd]
    pem = _damaged(in_folder, name)
    typed = FORMS[form](in_folder, name)
    line = _line(in_folder, typed, pem, command)
    assert line.isprintable(), line
    assert line.startswith(f"FAILED: {shown_path(typed)} cannot be read as a ledger: "), line
    assert shown_path(str(Path(typed))) in line, line  # the reason's mention, shown


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    form=st.sampled_from(sorted(FORMS)),
    before=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), max_size=5
    ),
    odd=st.sampled_from(["\x1b", "\x7f", "\u202e", "\x9b", "\u200b"]),
    after=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), max_size=5
    ),
)
def test_any_odd_name_in_any_typed_form_gets_a_printable_verdict(
    tmp_path_factory: pytest.TempPathFactory, form: str, before: str, odd: str, after: str
) -> None:
    """Whatever the name holds around a character a terminal would act on."""
    name = before + odd + after + ".ledger"
    folder = tmp_path_factory.mktemp("typed")
    pem = _damaged(folder, name)
    typed = FORMS[form](folder, name) if form != "./L" else str(folder / "." / name)
    line = _line(folder, typed, pem, "verify")
    assert line.isprintable(), line


@pytest.mark.parametrize("command", ["verify", "report"])
@pytest.mark.parametrize("odd", sorted(ODD))
@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_prior_ledger_typed_in_another_form_gets_a_printable_usage_error(
    in_folder: Path, form: str, odd: str, command: str
) -> None:
    """``--prior-ledger ./P`` that is not a ledger: the usage error (exit 2) named ``P``
    as the ledger layer writes it, raw (``_usage_error`` looked for the typed form only),
    its escape reaching the terminal. Now: one printable line naming it shown."""
    path, key = write_ledger(in_folder / "l.ledger", [ledger_row(1, None, None)])
    pem = str(export_public_key(key.public_key, in_folder / "ledger.pub"))
    prior = ODD[odd].replace(".ledger", ".txt")
    (in_folder / prior).write_text("not a ledger")
    typed = FORMS[form](in_folder, prior)
    args = ["audit", command, str(path), "--pubkey", pem, "--prior-ledger", typed]
    if command == "report":
        args += ["--out", str(in_folder / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), result.output
    assert lines[0].startswith("Error: Invalid value for '--prior-ledger': "), lines[0]
    assert shown_path(str(Path(typed))) in lines[0], lines[0]
