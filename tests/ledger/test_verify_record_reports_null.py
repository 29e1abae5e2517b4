"""A record-level DP-SGD row whose ``dp.client_reports`` is null (or any other non-object)
fails ``audit verify`` naming the row, and ``audit report`` reports it as FAILED.

Why: the shape check lets a DP block's ``client_reports`` be null (a block without
branch reports), and a completed row was then refused for lacking them, but an aborted
row's went straight to the replay, which called ``.items()`` on it: ``verify_ledger``
raised AttributeError, ``audit verify`` printed "FAILED: L cannot be read as a ledger:
'NoneType' object has no attribute 'items'" (no row named, the ledger blamed as
unreadable) and ``audit report`` ended in a traceback (hostile review, 2026-12-06).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from _ledgers import branch_report, record_dpsgd_row, write_ledger

from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger import report
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5


def _rows(reports: Any) -> list[dict[str, Any]]:
    """Round 1 completed by branch a; round 2 aborted, its block's reports ``reports``."""
    history = [(1.0, 0.01, 100)]
    epsilon = RecordLevelAccountant("rdp", DELTA, history).epsilon()
    first = record_dpsgd_row(
        1, ["a"], {"a": branch_report(history, epsilon, delta=DELTA)}, delta=DELTA, population=1
    )
    second = copy.deepcopy(first) | {"round": 2, "status": "aborted"}
    second["dp"]["client_reports"] = reports
    return [first, second]


@pytest.mark.parametrize("reports", [None, [], "none", 3], ids=repr)
def test_verify_names_the_row(tmp_path: Path, reports: Any) -> None:
    path, key = write_ledger(tmp_path / "l.ledger", _rows(reports))
    result = verify_ledger(path, key.public_key)  # raised AttributeError for null
    assert not result.ok
    assert str(result.failure).startswith("row 2 (round 2): "), result.failure
    assert "dp.client_reports" in str(result.failure)


def test_the_report_says_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, key = write_ledger(tmp_path / "l.ledger", _rows(None))
    monkeypatch.setattr(report, "_plot", lambda *_args, **_kwargs: None)  # text only: cheap
    text, _ = report.build_report(path, key.public_key)  # a traceback before
    assert "**FAILED**: row 2 (round 2): " in text


def test_an_empty_object_is_an_aborted_round_nobody_reported_in(tmp_path: Path) -> None:
    """What the server writes for an aborted round no branch reported in: it verifies."""
    path, key = write_ledger(tmp_path / "l.ledger", _rows({}))
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.failure
