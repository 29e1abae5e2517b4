"""``secagg audit report --expect-head``: the head that vouches for a copy read without
its log, with ``audit verify``'s meaning and messages.

Why: a ledger file in WAL mode with no ``-wal`` beside it (the main file copied from a
running or killed server, or a ledger closed by a secagg before 2026-12-07) fails unless
``--expect-head`` names a head it holds. ``verify`` took that head; ``report`` had no
such option, so it could only write a FAILED report for such a copy, even one whose
auditor held the head the server printed when it stopped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from _ledgers import central_client_rows
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key

Z, DELTA = 1.5, 1e-5
ROWS, _ = central_client_rows([("a", "b"), ("a", "c"), ("a", "b")], Z, DELTA)
KEY = LedgerKey.generate()


def _copied_from_a_running_server(folder: Path) -> tuple[Path, Path, str, str]:
    """The main file of a running writer copied alone (WAL mode, no ``-wal`` beside the
    copy); its key's PEM; the head after row 2 (which the copy holds); the live head
    after row 3 (which it does not)."""
    live = folder / "live.ledger"
    ledger = Ledger(live, KEY)
    try:
        ledger.append(ROWS[0])
        ledger.append(ROWS[1])
        held = ledger.anchor()
        (folder / "copy").mkdir()
        copy = Path(shutil.copy(live, folder / "copy"))
        ledger.append(ROWS[2])
        later = ledger.anchor()
    finally:
        ledger.close()
    assert copy.read_bytes()[18:20] == b"\x02\x02"  # WAL mode, and no log beside it
    return copy, export_public_key(KEY.public_key, folder / "k.pub"), held, later


def _report(copy: Path, pem: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    """Exit status, terminal output and the written markdown ('' when none)."""
    result = CliRunner().invoke(
        main, ["audit", "report", str(copy), "--pubkey", str(pem), "--out", str(out), *extra]
    )
    written = out / "ledger-report.md"
    return result.exit_code, result.output, written.read_text() if written.exists() else ""


def test_without_the_head_the_copy_reports_failed(tmp_path: Path) -> None:
    copy, pem, _, _ = _copied_from_a_running_server(tmp_path)
    status, output, text = _report(copy, pem, tmp_path / "out")
    assert status == 0, output
    assert "verdict: FAILED" in output and "read without its log" in output
    assert "**FAILED**" in text


def test_a_head_the_copy_holds_vouches_for_it_as_verify_does(tmp_path: Path) -> None:
    copy, pem, held, _ = _copied_from_a_running_server(tmp_path)
    status, output, text = _report(copy, pem, tmp_path / "out", "--expect-head", held)
    assert status == 0, output
    assert "verdict: VERIFIED" in output, output
    assert f"- expected head `{held}` is in the ledger" in text
    # verify's note, word for word: rows after the head may be missing from the copy
    verified = CliRunner().invoke(
        main, ["audit", "verify", str(copy), "--pubkey", str(pem), "--expect-head", held]
    )
    assert verified.exit_code == 0, verified.output
    note = next(line for line in verified.output.splitlines() if "read without its log" in line)
    assert note.removeprefix("note: ") in " ".join(text.split())


def test_a_head_the_copy_does_not_hold_reports_failed(tmp_path: Path) -> None:
    copy, pem, _, later = _copied_from_a_running_server(tmp_path)
    status, output, text = _report(copy, pem, tmp_path / "out", "--expect-head", later)
    assert status == 0, output
    assert "verdict: FAILED" in output
    assert "rows were cut from the end" in output and "read without its log" in output
    assert "**FAILED**" in text and "- expected head `" not in text


def test_a_malformed_head_is_one_usage_line_naming_the_flag(tmp_path: Path) -> None:
    copy, pem, _, _ = _copied_from_a_running_server(tmp_path)
    status, output, text = _report(copy, pem, tmp_path / "out", "--expect-head", "3:nothex")
    assert status == 2
    assert "Invalid value for '--expect-head'" in output
    assert "Traceback" not in output and text == ""


def test_report_and_verify_share_one_definition_of_the_option() -> None:
    """The same help and the same check: one definition, not a copy that drifts."""
    from secagg.apps.audit.cli import report, verify

    def option(command: object) -> object:
        return next(p for p in command.params if p.name == "expect_head")  # type: ignore[attr-defined]

    ours, theirs = option(report), option(verify)
    assert ours.help == theirs.help and ours.callback is theirs.callback  # type: ignore[attr-defined]
    assert ours.metavar == theirs.metavar == "SEQ:HASH"  # type: ignore[attr-defined]
