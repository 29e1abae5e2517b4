"""A ledger written before PRV was asked a history's distinct pairs still verifies
(2026-12-07).

Until 2026-12-07 the server replayed a branch's history by Opacus's PRV on its runs as
recorded (consecutive entries of one ``(z, q)`` merged only) and signed that figure;
since then PRV is asked the history's distinct pairs
(:func:`~secagg.dp.accountants.distinct_runs`), a figure a few parts in 10^8 away where a
pair repeats apart. ``audit verify`` holds a claim to at most float noise (1e-8
relative) below its replay, so such a ledger, which verified when it was written,
failed: "claims record-level epsilon 22.15770360333744 but its DP-SGD history gives
22.15770399059563". Verify now also accepts the figure of the runs as recorded (and the
larger one the server kept) for a PRV history that repeats a pair in at most 32 runs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows
from opacus.accountants import PRVAccountant

from secagg.dp.accountants import history_runs, opacus_epsilon

DELTA = 1e-3
#: a pair repeated apart, whose two figures lie 1.7e-8 (relative) apart
HISTORY = [(2.756, 0.3, 1), (0.846, 0.02, 50), (0.694, 0.3, 50), (2.756, 0.3, 50)]


def _signed_before(history: list[tuple[float, float, int]]) -> float:
    """What the server signed for ``history`` before 2026-12-07: Opacus's PRVAccountant
    on its runs as recorded (at least 0); computed once for the module's tests."""
    return _signed_before_runs(tuple(history))


@functools.cache
def _signed_before_runs(history: tuple[tuple[float, float, int], ...]) -> float:
    accountant = PRVAccountant()
    accountant.history = history_runs(history)
    with np.errstate(divide="ignore"):  # log(1 - q) at q = 1, Opacus's own
        return max(0.0, float(accountant.get_epsilon(delta=DELTA)))


def _row(number: int, history: list[tuple[float, float, int]], claim: float) -> dict[str, Any]:
    reports = {"h-a": branch_report(history, claim, delta=DELTA, accountant="prv")}
    return record_dpsgd_row(number, ["h-a"], reports, delta=DELTA, population=1)


def test_the_two_figures_differ_past_float_noise() -> None:
    """The premise: the merged figure lies above the one signed then by more than the
    1e-8 (relative) a claim may lie below its replay."""
    merged = opacus_epsilon("prv", HISTORY, DELTA)
    assert merged - _signed_before(HISTORY) > 1e-8 * merged


def test_an_old_servers_ledger_still_verifies(tmp_path: Path) -> None:
    """Two rows as that server wrote them: the repeating history, then the same with
    more steps in its last run, each row claiming the larger figure it kept."""
    first = _signed_before(HISTORY)
    longer = [*HISTORY[:-1], (2.756, 0.3, 60)]
    second = max(first, _signed_before(longer))
    result = verify_rows(
        tmp_path / "rows.sqlite", [_row(1, HISTORY, first), _row(2, longer, second)]
    )
    assert result.ok, result.first_failure


def test_a_claim_below_both_figures_still_fails(tmp_path: Path) -> None:
    """The fallback opens no gap: a claim 1e-6 (relative) below the figure signed then
    lies below every figure of what ran, and fails."""
    understated = _signed_before(HISTORY) * (1 - 1e-6)
    result = verify_rows(tmp_path / "rows.sqlite", [_row(1, HISTORY, understated)])
    assert not result.ok
    assert "claims record-level epsilon" in str(result.first_failure)


def test_no_runs_as_recorded_past_what_that_server_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """33 runs alternating between two pairs (past the 32 runs any server replayed): a
    wrong claim fails on the merged figure alone, 2 grids, not a grid a run (a hostile
    ledger of 10^5 alternating runs would cost verify hours there)."""
    from opacus.accountants import prv

    grids: list[object] = []
    real = prv.discretize

    def counted(tprv: object, domain: object) -> object:
        grids.append(tprv)
        return real(tprv, domain)

    monkeypatch.setattr(prv, "discretize", counted)
    history = [(2.0, 0.01, 5), (3.0, 0.02, 5)] * 16 + [(2.0, 0.01, 5)]
    result = verify_rows(tmp_path / "rows.sqlite", [_row(1, history, 0.01)])
    assert not result.ok
    assert len(grids) == 2
