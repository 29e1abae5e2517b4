"""A failed ledger's rows are shown as recorded, and its plot takes the rows with a
round number: one recorded as 10**400 (an int, but no round any server writes) crashed
``audit report`` in matplotlib (``int too large to convert to float``) instead of
writing the FAILED report (found by test_verify_hostile_rows' property test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger

from secagg.ledger.report import build_report


@pytest.mark.parametrize("number", [10**400, -(10**400), 2**53])
def test_a_row_whose_round_no_float_holds_is_reported_not_a_crash(
    tmp_path: Path, number: int
) -> None:
    rows, _ = central_client_rows([("a", "b"), ("a", "c"), ("b", "c")], 1.5, 1e-5)
    rows[1]["round"] = number
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    text, _ = build_report(path, key.public_key)
    assert "**FAILED**: row 2 " in text
