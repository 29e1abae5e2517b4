"""``audit verify`` replays each branch report of every record-level row through Opacus;
Opacus's RDP curve of one ``(q, sigma)`` is computed once per process, not once per
report (a 2 000-row, 8-branch RDP ledger took 98 s, nearly all of it there), and every
epsilon is the float it was without the cache (checked in
tests/dp/test_accountants_rdp_memo.py, with the memo itself)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp

from secagg.dp import accountants
from secagg.dp.accountants import opacus_epsilon

DELTA = 1e-5
BRANCH_RATES = (0.01, 0.02, 0.05)
PRIOR = (1.1 / math.sqrt(3), 1.0, 1)  # simulate's charged feature statistics


def _history(rate: float, number: int) -> list[tuple[float, float, int]]:
    return [PRIOR, (1.1, rate, number * int(1 / rate))]


def test_the_replay_computes_each_runs_rdp_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 rows of 3 branches: Opacus's per-order RDP is computed for each distinct (q,
    sigma) and order at most once (4 pairs here: the prior and a rate per branch), not
    for every run of every report (30 x 3 x 2 times)."""
    rows = []
    for number in range(1, 31):
        reports = {}
        for index, rate in enumerate(BRANCH_RATES):
            history = _history(rate, number)
            epsilon = opacus_epsilon("rdp", history, DELTA)
            reports[f"h-{index}"] = branch_report(history, epsilon, delta=DELTA)
        rows.append(record_dpsgd_row(number, list(reports), reports, delta=DELTA, population=3))
    computed: list[tuple[float, float, float]] = []
    original = rdp._compute_rdp

    def counted(q: float, sigma: float, alpha: float) -> float:
        computed.append((q, sigma, alpha))
        return original(q, sigma, alpha)

    monkeypatch.setattr(rdp, "_compute_rdp", counted)
    rdp.compute_rdp.secagg_memo.cache_clear()  # the rows' own epsilons filled it
    # and the process's epsilon memo (since the record-level replay, 5411126), which
    # would answer the replay without asking Opacus at all: an auditor's process starts empty
    monkeypatch.setattr(accountants, "_EPSILON_MEMO", {})
    result = verify_rows(tmp_path / "rows.sqlite", rows)
    assert result.ok, result.first_failure
    orders = len(RDPAccountant.DEFAULT_ALPHAS)
    assert 0 < len(computed) == len(set(computed)) <= (1 + len(BRANCH_RATES)) * orders
