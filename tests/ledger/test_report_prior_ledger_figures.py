"""``audit report`` with ``--prior-ledger`` as a reviewer read it beside ``audit verify``
(review 2026-12-05).

The budget line printed the delta as recorded (every digit of the float) where verify
prints it at 6 significant digits rounded up, so the two outputs for one ledger gave
two deltas; and with an archive that overlaps this file (rows shared by both, read
once as the prior ledger's) the rows line counted only this file's rows that are not
shared, while verify's note names the shared ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import LedgerKey, export_public_key
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
