"""``secagg audit verify`` / ``report``'s verdict line on stderr (``FAILED: L: ...``,
``FAILED: L cannot be read as a ledger: ...``, ``NOT READ: L: ...``) stays one printable
line whatever the ledger's file is called, its exit status unchanged.

Helper brief 323 (2026-12-07): the ledger's path was printed raw in those lines, so a
ledger named ``$'a\\nb'`` split the verdict over two lines (a script that greps the
verdict line for the file found a line without it) and an escape in the name reached
the terminal. The name is now shown by ``shown_path`` (its ``repr`` where it is not
plain), as the usage errors already showed it (tests/apps/test_path_flag_one_line.py).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from _ledgers import ledger_row, write_ledger
from _odd_names import LINE_BREAKER, NAME_CHARACTER
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path
from secagg.ledger import export_public_key
from secagg.ledger.chain import LedgerKeptChanging

#: a head the ledger (two rows) does not hold: the anchor fails, ``FAILED: L: ...``
_FAR_HEAD = "9:" + "ab" * 32


def _ledger(folder: Path, name: str) -> tuple[str, str]:
    """A signed two-row ledger at ``folder/name`` and its public key's PEM."""
    folder.mkdir(parents=True, exist_ok=True)
    path, key = write_ledger(folder / name, [ledger_row(1, None, None), ledger_row(2, None, None)])
    pem = export_public_key(key.public_key, folder / "ledger.pub")
    return str(path), str(pem)


def _damaged(folder: Path, name: str) -> tuple[str, str]:
    """A ledger missing its head table: changed, so FAILED (exit 1), not a usage error."""
    path, pem = _ledger(folder, name)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE ledger_head")
    db.commit()
    db.close()
    return path, pem


def _kept_changing(*_: object, **__: object) -> None:
    raise LedgerKeptChanging("the ledger changed during each of 3 reads\n(a server appending)")


def _out_failed(*_: object, **__: object) -> None:
    raise OSError(28, "No space left on device", "report.png")


#: a verdict line's case -> (the command line from a folder and a ledger's name, the
#: exit status, the line's start, what is patched to reach the line)
Case = tuple[Callable[[Path, str], list[str]], int, str, dict[str, Callable[..., None]]]


def _verify_cut(d: Path, n: str) -> list[str]:
    path, pem = _ledger(d, n)
    return ["audit", "verify", path, "--pubkey", pem, "--expect-head", _FAR_HEAD]


def _verify_damaged(d: Path, n: str) -> list[str]:
    path, pem = _damaged(d, n)
    return ["audit", "verify", path, "--pubkey", pem]


def _report_damaged(d: Path, n: str) -> list[str]:
    path, pem = _damaged(d, n)
    return ["audit", "report", path, "--pubkey", pem, "--out", str(d / "out")]


def _verify(d: Path, n: str) -> list[str]:
    path, pem = _ledger(d, n)
    return ["audit", "verify", path, "--pubkey", pem]


def _report_to(d: Path, n: str) -> list[str]:
    path, pem = _ledger(d, n)
    return ["audit", "report", path, "--pubkey", pem, "--out", str(d / f"out-{n}")]


CASES: dict[str, Case] = {
    "verify, the anchor fails": (_verify_cut, 1, "FAILED: ", {}),
    "verify, a damaged ledger": (_verify_damaged, 1, "FAILED: ", {}),
    "report, a damaged ledger": (_report_damaged, 1, "FAILED: ", {}),
    "verify, no read held still": (
        _verify,
        5,
        "NOT READ: ",
        {"secagg.ledger.verify.verify_ledger": _kept_changing},
    ),
    "report, no read held still": (
        _verify,  # the same files; the command is changed below
        5,
        "NOT READ: ",
        {"secagg.ledger.report.build_report": _kept_changing},
    ),
    "report, --out fails as it is written": (
        _report_to,
        1,
        "FAILED: cannot write the report to --out ",
        {"secagg.ledger.report.write_report_files": _out_failed},
    ),
}

#: names a terminal would not show as typed
ODD_NAMES = {
    "a line break": "a\nb.ledger",
    "a carriage return": "a\rb.ledger",
    "a tab": "a\tb.ledger",
    "an ANSI escape": "a\x1b[31mred.ledger",
    "a bidirectional override": "a\u202eb.ledger",
    "a line separator": "a\u2028b.ledger",
}


def _run(case: str, folder: Path, name: str) -> tuple[Result, str]:
    """The case's command on a ledger called ``name``: its result and the path named."""
    build, _, _, patches = CASES[case]
    args = build(folder, name)
    if case.startswith("report, no read"):
        args[1] = "report"
        args += ["--out", str(folder / "out")]
    patchers = [mock.patch(target, side_effect=effect) for target, effect in patches.items()]
    for patcher in patchers:
        patcher.start()
    try:
        result = CliRunner().invoke(main, args)
    finally:
        for patcher in patchers:
            patcher.stop()
    named = args[args.index("--out") + 1] if case.startswith("report, --out") else args[2]
    return result, named


def _verdict(case: str, result: Result) -> str:
    """The one printable verdict line, the case's exit status, no traceback."""
    _, status, start, _ = CASES[case]
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].isprintable(), lines[0]
    assert lines[0].startswith(start), lines[0]
    return lines[0]


@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_ledger_with_an_odd_name_gets_a_one_line_verdict(
    tmp_path: Path, case: str, kind: str
) -> None:
    """Before: the line broke where the name does, or carried its escape (6 cases).
    Now: one printable line naming the file as its ``repr``, the exit status unchanged."""
    result, named = _run(case, tmp_path, ODD_NAMES[kind])
    line = _verdict(case, result)
    assert shown_path(named) in line, line
    assert shown_path(named) != named


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_plain_name_is_printed_as_typed(tmp_path: Path, case: str) -> None:
    """A plain name is as it was: ``FAILED: /tmp/.../l.ledger: ...``."""
    result, named = _run(case, tmp_path, "l.ledger")
    line = _verdict(case, result)
    assert named in line and repr(named) not in line, line


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(sorted(CASES)),
    before=st.text(NAME_CHARACTER, max_size=8),
    odd=LINE_BREAKER,
    after=st.text(NAME_CHARACTER, max_size=8),
)
def test_any_ledger_name_with_a_control_character_gets_one_line(
    tmp_path_factory: pytest.TempPathFactory, case: str, before: str, odd: str, after: str
) -> None:
    """Whatever the name holds around a control or separator character: one printable
    verdict line, the case's exit status."""
    name = before + odd + after
    if len(os.fsencode(name)) > 200 or name in (".", ".."):  # another mistake
        return
    folder = tmp_path_factory.mktemp("odd")
    try:
        result, _ = _run(case, folder, name)
        _verdict(case, result)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
def test_verifys_config_line_shows_the_file_one_line(tmp_path: Path, kind: str) -> None:
    """``verify --config F``'s ``config F: ...`` line on stdout named the file raw too:
    a line break split it, an escape reached the terminal. Its exit status is the
    verdict's (3 here: a ledger without DP), unchanged."""
    path, pem = _ledger(tmp_path, "l.ledger")
    config = tmp_path / f"{ODD_NAMES[kind]}.toml"
    config.write_text('[federation]\nname = "test"\nclients = ["a", "b", "c"]\ndimension = 4\n')
    result = CliRunner().invoke(
        main, ["audit", "verify", path, "--pubkey", pem, "--config", str(config)]
    )
    assert result.exit_code == 3, result.output
    assert all(line.isprintable() for line in result.output.splitlines()), result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("config ")]
    assert line.startswith(f"config {shown_path(str(config))}: "), line
