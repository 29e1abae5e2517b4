"""A branch report whose DP-SGD history gives no finite epsilon, stated as such.

Servers before 2026-12-07 kept each report's stated figure, so a branch whose own
accountant said inf (a run without noise) was signed as ``"inf"`` (the ledger's spelling
of an infinity), and the row claimed inf: the truth about that release. ``audit verify``
refused any non-finite stated figure ("not a finite number"), failing such an honest
ledger as if it were forged, and today's server could not restart on it (restoring the
report raised "record-level epsilon must be a number, not 'inf'"). Now both agree with
what was signed: the figure is infinite, so the ledger is NOT PRIVATE from that row on
(a noiseless release), never VERIFIED as private; a finite claim beside such a history,
or an infinite one beside a finite history, still fails. Today's server never signs one:
it refuses such a report (tests/dp/test_release_record_prv_grid.py and
tests/dp/test_release_record_epsilon_replayed.py).
"""

from __future__ import annotations

import math
from pathlib import Path

from _ledgers import branch_report, record_dpsgd_row, verify_rows

from secagg.dp.accountants import opacus_epsilon
from secagg.dp.release import RecordRelease

DELTA = 1e-5
NOISELESS = [(0.0, 0.01, 10)]  # ten sampled steps without noise: no finite epsilon
NOISY = [(1.0, 0.01, 100)]


def _rows(history: list[tuple[float, float, int]], stated: float) -> list[dict]:
    reports = {"h-a": branch_report(history, stated, delta=DELTA)}
    return [record_dpsgd_row(1, ["h-a"], reports, delta=DELTA, population=1)]


def test_an_infinite_report_the_history_agrees_with_is_not_private_not_forged(
    tmp_path: Path,
) -> None:
    result = verify_rows(tmp_path / "inf.sqlite", _rows(NOISELESS, math.inf))
    assert result.ok, result.first_failure
    assert not result.private
    assert result.noiseless and result.record_level == {"h-a": math.inf}


def test_a_finite_claim_beside_a_noiseless_history_still_fails(tmp_path: Path) -> None:
    result = verify_rows(tmp_path / "finite.sqlite", _rows(NOISELESS, 1.0))
    assert not result.ok and "gives inf" in result.first_failure


def test_an_infinite_claim_beside_a_finite_history_still_fails(tmp_path: Path) -> None:
    """Inf is above any replay, but not the epsilon of what ran: no signed number is."""
    result = verify_rows(tmp_path / "over.sqlite", _rows(NOISY, math.inf))
    assert not result.ok, "an infinite claim beside a history giving a finite figure"
    assert str(opacus_epsilon("rdp", NOISY, DELTA))[:6] in result.first_failure


def test_a_restarted_server_restores_such_a_report_at_inf() -> None:
    """The ledger's report as the server reads it back: ``"inf"``, a string."""
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    report = branch_report(NOISELESS, math.inf, delta=DELTA) | {"epsilon": "inf"}
    release.restore_reports({"h-a": report})
    assert release.ledger_claim(None) == math.inf
