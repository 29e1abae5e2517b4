"""``audit verify`` replays a branch's history as runs, as the server does (2026-12-07).

The server merges consecutive entries of one ``(z, q)`` into a run before it replays
(:func:`~secagg.dp.accountants.history_runs`), so a report split into one-step entries
passes every cap as one run; verify gave Opacus the entries as recorded, and Opacus's
PRV composes each on its grid: 200 entries of (2, 0.01, 1) took 11.4 s of CPU where the
run took 0.06 s, and the wire allows 10^5 entries a report, each row's report a new
history, so one branch could make a ledger's audit take hours. Verify now replays the
runs, after checking each entry as before; the figure is the server's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows

from secagg.dp.accountants import opacus_epsilon
from secagg.ledger import replay

DELTA = 1e-5
ENTRIES = 40
SPLIT = [(2.0, 0.01, 1)] * ENTRIES


def _replayed_histories(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Every history verify hands to the record-level accountant."""
    seen: list[list[Any]] = []

    class Recording(replay.RecordLevelAccountant):  # type: ignore[misc,name-defined]
        def epsilon(self) -> float:
            seen.append(list(self.history))
            return super().epsilon()

    monkeypatch.setattr(replay, "RecordLevelAccountant", Recording)
    return seen


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_verify_replays_split_entries_as_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, accountant: str
) -> None:
    epsilon = opacus_epsilon(accountant, [(2.0, 0.01, ENTRIES)], DELTA)  # the server's
    reports = {"h-a": branch_report(SPLIT, epsilon, delta=DELTA, accountant=accountant)}
    rows = [record_dpsgd_row(1, ["h-a"], reports, delta=DELTA, population=1)]
    seen = _replayed_histories(monkeypatch)
    result = verify_rows(tmp_path / "rows.sqlite", rows)
    assert result.ok, result.first_failure
    assert seen == [[(2.0, 0.01, ENTRIES)]]


def test_a_bad_entry_still_fails_verify(tmp_path: Path) -> None:
    """Merging checks nothing away: a negative step count beside a run that would
    absorb it still fails verify."""
    history = [(2.0, 0.01, 5), (2.0, 0.01, -1)]
    reports = {"h-a": branch_report(history, 0.1, delta=DELTA)}
    rows = [record_dpsgd_row(1, ["h-a"], reports, delta=DELTA, population=1)]
    result = verify_rows(tmp_path / "rows.sqlite", rows)
    assert not result.ok
