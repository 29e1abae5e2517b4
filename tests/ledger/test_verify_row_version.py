"""The row ``version`` is read: 3 for rows today's server writes, each of whose DP
blocks must record ``dp.sampling`` whole; older versions verify as before; a newer one
is refused.

Why: ``ROW_VERSION`` stayed 2 when rows gained ``dp.sampling`` (2026-12-02) and its
``seeded`` flag (2026-12-03), and nothing read it. The verifier required the record only
of rows it recognised as newer by other fields (``dp.composition = per_client``, a
distributed row's ``corrupt_fraction``), so a central row without them whose record was
dropped verified with its sampling kind, rate, ``delta >= 1/N`` and population checks
skipped; and a row of a layout no verifier knew verified on the fields it did know.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_client_rows, central_dp, ledger_row, verify_rows

from secagg.dp.accountants import GaussianAccountant
from secagg.ledger.entry import ROW_VERSION

Z, DELTA = 1.5, 1e-5
SAMPLING = {"kind": "poisson", "rate": 1.0, "population": 4, "seeded": False}


def _central_rows(sampling: dict[str, Any] | None = SAMPLING) -> list[dict]:
    """Central rows charged to every client at rate 1 (no per-client marker, no
    amplification), recording ``sampling`` whole: what a version-3 row holds."""
    accountant = GaussianAccountant(DELTA, "rdp")
    rows = []
    for number in range(1, 4):
        accountant.step(Z, 1.0)
        extra = {} if sampling is None else {"sampling": copy.deepcopy(sampling)}
        rows.append(ledger_row(number, central_dp(Z, DELTA, **extra), accountant.epsilon()))
    return rows


def test_the_rows_the_server_writes_are_version_3_and_verify(tmp_path: Path) -> None:
    assert ROW_VERSION == 3
    rows, _ = central_client_rows([("a", "b"), ("a", "c")], Z, DELTA)
    assert {row["version"] for row in rows} == {3}
    assert ledger_row(1, None, None)["version"] == 3  # no DP block: nothing to record
    assert verify_rows(tmp_path / "l.ledger", rows).ok
    assert verify_rows(tmp_path / "c.ledger", _central_rows()).ok


@pytest.mark.parametrize("drop", [None, "kind", "rate", "population", "seeded"])
def test_a_version_3_row_without_its_sampling_record_fails(
    tmp_path: Path, drop: str | None
) -> None:
    """A central row with neither older marker: it verified with its record dropped."""
    rows = _central_rows()
    assert rows[1]["version"] == 3
    if drop is None:
        del rows[1]["dp"]["sampling"]
    else:
        del rows[1]["dp"]["sampling"][drop]
    result = verify_rows(tmp_path / "l.ledger", rows)
    missing = "no dp.sampling" if drop is None else f"a dp.sampling without {drop}"
    assert str(result.first_failure).startswith(
        f"row 2 (round 2): is row version 3 but records {missing}: every DP row of version 3"
    ), result.first_failure


def test_an_older_row_without_the_record_still_verifies(tmp_path: Path) -> None:
    """Rows of versions 1 and 2 keep the older rule: the record is required only where
    another field shows the row was written after it (test_verify_sampling_required)."""
    rows = _central_rows(sampling=None)
    assert {row["version"] for row in rows} == {2}  # the layout of a block without it
    rows[0]["version"] = 1
    del rows[0]["noise_seeded"]
    result = verify_rows(tmp_path / "l.ledger", rows)
    assert result.ok, result.first_failure
    assert result.without_sampling == 3


def test_a_row_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    rows = _central_rows()
    rows[2]["version"] = ROW_VERSION + 1
    result = verify_rows(tmp_path / "l.ledger", rows)
    assert str(result.first_failure).startswith(
        "row 3 (round 3): is row version 4, newer than the 3 this verifier knows"
    ), result.first_failure


@pytest.mark.parametrize("version", [None, "3", 3.0, True, 0, -1, [3]])
def test_a_row_whose_version_is_no_version_fails(tmp_path: Path, version: object) -> None:
    rows = _central_rows()
    if version is None:
        del rows[0]["version"]
    else:
        rows[0]["version"] = version
    result = verify_rows(tmp_path / "l.ledger", rows)
    assert str(result.first_failure).startswith(
        "row 1 (round 1): version must be a row version (an integer >= 1), not "
    ), result.first_failure
