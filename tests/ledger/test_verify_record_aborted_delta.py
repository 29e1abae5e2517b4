"""``audit verify`` of a record-level ledger whose rounds all aborted names the delta its
epsilon holds at: the one the branches' reports account at.

Why: with record-level DP the branches account their own DP-SGD training and every row
carries their reports, an aborted round's too (the branches trained), and claims the
worst branch's epsilon. The delta printed beside the figure was read from the last row
that *charges* a round (:meth:`~secagg.ledger.verify.AuditResult.claim_delta`), and no
row of such a ledger does: it printed "cumulative epsilon 2.230 (its delta is not
recorded: no DP block records one)", ``--json`` ``"delta": null`` with
``"delta_missing_reason": "not_recorded"``, and ``audit report`` "at a delta not
recorded", where every DP block and every report recorded 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _ledgers import branch_report, record_dpsgd_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger.chain import export_public_key
from secagg.ledger.report import _at_delta
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5
BRANCHES = ["h-a", "h-b", "h-c"]


def _report(steps: int, delta: float = DELTA) -> dict[str, Any]:
    history = [(1.0, 0.02, steps)]
    epsilon = RecordLevelAccountant("rdp", delta, history).epsilon()
    return branch_report(history, epsilon, delta=delta)


def _aborted(number: int, reports: dict[str, dict[str, Any]], delta: float) -> dict[str, Any]:
    row = record_dpsgd_row(number, BRANCHES, reports, delta=delta, population=3)
    return row | {"status": "aborted", "reason": "too few survivors", "contributed": 0}


def _all_aborted(tmp_path: Path) -> tuple[Path, Path]:
    rows = [_aborted(n, {b: _report(100 * n) for b in BRANCHES}, DELTA) for n in (1, 2)]
    path, key = write_ledger(tmp_path / "aborted.ledger", rows)
    return path, export_public_key(key.public_key, tmp_path / "aborted.pub")


def test_verify_prints_the_reports_delta_beside_the_branches_epsilon(tmp_path: Path) -> None:
    path, pub = _all_aborted(tmp_path)
    text = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pub)])
    assert text.exit_code == 0, text.output
    first = text.output.splitlines()[0]
    assert first.endswith("cumulative epsilon 2.230 at delta 1e-05"), first
    assert "not recorded" not in text.output
    as_json = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", str(pub), "--json"]
    )
    payload = json.loads(as_json.output)
    assert payload["epsilon"] > 2.22
    assert payload["delta"] == DELTA and payload["delta_missing_reason"] is None


def test_the_report_states_the_same_delta(tmp_path: Path) -> None:
    path, _ = _all_aborted(tmp_path)
    assert _at_delta(verify_ledger(path).claim_delta()) == "at delta = 1e-05"


def test_the_largest_delta_of_the_branches_latest_reports_is_the_safe_side(
    tmp_path: Path,
) -> None:
    """A restart under a smaller delta: round 2's row and its one report account at
    1e-6, but branch h-b's latest figure (round 1's) holds at 1e-5 only, and the claim
    is the worst branch's: the pair printed is at 1e-5, not the last row's 1e-6."""
    rows = [
        _aborted(1, {b: _report(100) for b in BRANCHES}, DELTA),
        _aborted(2, {"h-a": _report(200, delta=1e-6)}, 1e-6),
    ]
    path, _ = write_ledger(tmp_path / "two.ledger", rows)
    result = verify_ledger(path)
    assert result.ok, result.first_failure
    assert result.claim_delta() == DELTA
