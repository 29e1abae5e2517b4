"""``audit report`` with ``--prior-ledger`` as a reviewer read it beside ``audit verify``
(review 2026-12-05).

The budget line printed the delta as recorded (every digit of the float) where verify
prints it at 6 significant digits rounded up, so the two outputs for one ledger gave
two deltas; and with an archive that overlaps this file (rows shared by both, read
once as the prior ledger's) the rows line counted only this file's rows that are not
shared, while verify's note names the shared ones.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.report import build_report

Z = 1.5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("c", "d"), ("a", "d")]
SPLIT = 3
#: rounded to the nearest at 6 significant digits this reads 1.23456e-06, below the
#: delta that ran: rounded up (as verify shows it) it is 1.23457e-06
DELTA = 1.2345641e-6
SHOWN = "1.23457e-06"


def _rows(delta: float) -> list[dict]:
    """Per-client central rows at ``delta``, each printing the delta it accounts at."""
    rows = central_client_rows(COHORTS, Z, delta)[0]
    for row in rows:
        row["privacy"]["delta"] = delta
    return rows


def _budget_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("- budget spent"))


def _verify_line(tmp_path: Path, path: Path, key: LedgerKey, prior: Path) -> str:
    pub = export_public_key(key.public_key, tmp_path / "l.pub")
    result = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", str(pub), "--prior-ledger", str(prior)]
    )
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[0]


@pytest.mark.parametrize("own_rows", [0, 3])
def test_the_delta_is_shown_as_verify_shows_it(tmp_path: Path, own_rows: int) -> None:
    """A ledger begun afresh (no row yet: the prior's delta) or holding rounds 4-6 (its
    own last row's): the report printed ``1.2345641e-06``, verify ``1.23457e-06``."""
    rows = _rows(DELTA)
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows[:SPLIT])
    tail, _ = write_ledger(tmp_path / "tail.ledger", rows[SPLIT : SPLIT + own_rows], key)
    text, _ = build_report(tail, key.public_key, prior_ledger=prior)
    spent = _budget_line(text)
    assert f"at delta = {SHOWN}" in spent, spent
    assert repr(DELTA) not in spent
    assert float(SHOWN) >= DELTA  # rounded up: never a smaller delta than ran
    assert _verify_line(tmp_path, tail, key, prior).endswith(f"at delta {SHOWN}")


def _pruned(tmp_path: Path, archived_after: int, deleted_upto: int) -> tuple[Path, Path, LedgerKey]:
    """Six rounds in one ledger, an archive of it copied after ``archived_after`` rounds
    and rows 1..``deleted_upto`` then deleted from the live file."""
    rows = _rows(1e-5)
    live, key = write_ledger(tmp_path / "live.ledger", rows[:archived_after])
    archive = tmp_path / "archive.ledger"
    shutil.copyfile(live, archive)
    ledger = Ledger(live, key)
    try:
        for row in rows[archived_after:]:
            ledger.append(row)
    finally:
        ledger.close()
    db = sqlite3.connect(live)
    db.execute("DELETE FROM ledger WHERE seq <= ?", (deleted_upto,))
    db.commit()
    db.close()
    return archive, live, key


@pytest.mark.parametrize(
    ("archived_after", "deleted_upto", "shared"),
    [(4, 3, "row 4 of this file is"), (5, 2, "rows 3-5 of this file are")],
)
def test_the_rows_line_says_how_many_rows_are_shared(
    tmp_path: Path, archived_after: int, deleted_upto: int, shared: str
) -> None:
    """Rows 4-6 in the live file, 1-4 in the archive: the report read "rows: 2" (this
    file's rows after the archive) and said nothing of row 4, which this file holds too."""
    archive, live, key = _pruned(tmp_path, archived_after, deleted_upto)
    text, _ = build_report(live, key.public_key, prior_ledger=archive)
    assert "**VERIFIED**" in text
    line = next(x for x in text.splitlines() if x.startswith("- rows: "))
    count = archived_after - deleted_upto
    own = 6 - archived_after
    assert line.startswith(f"- rows: {own} (and {count} more in this file, shared"), line
    assert f"{shared} in the prior ledger too" in line
    assert "read once, as the prior ledger's" in line


def test_the_rows_line_without_shared_rows_is_as_it_was(tmp_path: Path) -> None:
    rows = _rows(1e-5)
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows[:SPLIT])
    tail, _ = write_ledger(tmp_path / "tail.ledger", rows[SPLIT:], key)
    text, _ = build_report(tail, key.public_key, prior_ledger=prior)
    line = next(x for x in text.splitlines() if x.startswith("- rows: "))
    assert line.startswith("- rows: 3; complete rounds: 3;"), line
    assert "shared" not in line
