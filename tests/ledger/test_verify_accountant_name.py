"""A central row's ``dp.accountant`` is the name of the accountant its claim is replayed
with: a value that is no string is no name, and the failure says which field of which
row holds it. It was stringified first (``str(5)``) and refused as an unknown accountant
``'5'``, naming neither the field nor that the row recorded a number (left alone in the
review of 2026-12-05)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from _ledgers import central_client_rows, central_dp, ledger_row, write_ledger

from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


@pytest.mark.parametrize("value", [5, True, None, ["pld"], {"name": "pld"}])
def test_a_per_client_row_whose_accountant_is_no_name_fails_naming_the_field(
    tmp_path: Path, value: object
) -> None:
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    rows = copy.deepcopy(rows)
    rows[1]["dp"]["accountant"] = value
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    failure = str(verify_ledger(path, key.public_key).first_failure)
    assert failure.startswith("row 2 (round 2): ")
    assert f"records dp.accountant as {value!r}, not an accountant's name" in failure


def test_an_older_central_row_whose_accountant_is_no_name_fails_naming_the_field(
    tmp_path: Path,
) -> None:
    """A row from before per-client charging (``_central_round``'s own path)."""
    dp = central_dp(Z, DELTA, accountant=7)  # type: ignore[arg-type]
    path, key = write_ledger(tmp_path / "l.ledger", [ledger_row(1, dp, 1.0)])
    failure = str(verify_ledger(path, key.public_key).first_failure)
    assert failure.startswith("row 1 (round 1): ")
    assert "records dp.accountant as 7, not an accountant's name" in failure
