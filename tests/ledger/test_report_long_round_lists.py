"""The report's status names a long run of rounds in one short list.

Before: a ledger without DP (or with seeded noise in every round) named every round in
its NOT PRIVATE paragraph, and ``audit report`` printed that paragraph to the terminal
as its verdict: for a 10^5-row ledger a 600 kB line (measured: 11 MB of markdown, 15 s).
Now the list is cut as ``verify`` cuts it, ``1, 2, ..., 100000 (100000 in all)``; the
table still lists every round.
"""

from __future__ import annotations

from pathlib import Path

from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key
from secagg.ledger.report import build_report


def test_a_long_ledger_without_dp_names_its_rounds_in_one_short_list(tmp_path: Path) -> None:
    rows = [ledger_row(number, None, None, delta=None) for number in range(1, 31)]
    path, key = write_ledger(tmp_path / "long.ledger", rows)
    text, _ = build_report(path, key.public_key)
    status = text.split("\n- ledger public key", 1)[0]
    assert "round(s) 1, 2, 3, 4, 5, 6, 7, ..., 30 (30 in all) completed and released" in status
    assert sum(line.startswith("| ") and "| complete |" in line for line in text.splitlines()) == 30
    pub = str(export_public_key(key.public_key, tmp_path / "k.pub"))
    run = CliRunner().invoke(
        main, ["audit", "report", str(path), "--pubkey", pub, "--out", str(tmp_path / "r")]
    )
    assert run.exit_code == 0, run.output
    verdict = run.stderr.splitlines()[0]
    assert verdict.startswith("verdict: NOT PRIVATE: released without differential privacy")
    assert len(verdict) < 400 and "29, 30" not in verdict


def test_a_short_list_is_named_in_full(tmp_path: Path) -> None:
    rows = [ledger_row(number, None, None, delta=None) for number in range(1, 9)]
    path, key = write_ledger(tmp_path / "short.ledger", rows)
    text, _ = build_report(path, key.public_key)
    assert "round(s) 1, 2, 3, 4, 5, 6, 7, 8 completed and released" in text
