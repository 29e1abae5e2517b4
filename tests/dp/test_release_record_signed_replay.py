"""What a record-level server signs for a branch is what ``audit verify`` replays for it.

Why: the server replayed each branch's DP-SGD history (tests/dp/test_release_record_
epsilon_replayed.py) but still signed rows ``audit verify`` then failed for good: a
stated figure above the replay was kept (verify fails a report more than 1e-6 above its
replay), a history past the replay caps kept its stated figure whatever it was, a
report whose accountant changed replayed below the branch's last figure (verify: "goes
down"), and a history without noise was recorded as ``"inf"`` (verify: "not a finite
number"). Each case drives :class:`RecordRelease` as the server does (reports, the
identity check, the release, the row's block and claim), signs the rows it would write
and verifies them.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgers import record_dpsgd_row, verify_rows

from secagg.dp.accountants import opacus_epsilon
from secagg.dp.release import (
    MAX_REPLAYED_RUNS,
    RecordRelease,
    RecordReport,
    UnaccountedContribution,
)

DELTA = 1e-5


def _round(release: RecordRelease, number: int, reports: dict[str, RecordReport]) -> dict[str, Any]:
    """One completed round as the server runs it: each branch's report arrives, the
    contributors are matched by identity, the sum is released and its row written
    (refusals raise :class:`UnaccountedContribution`, and no row is written)."""
    for identity, report in reports.items():
        release.take_report(identity, report)
    release.require_reports(reports)
    out = release.release(np.ones(4), contributors=len(reports), participants=len(reports),
                          noise_added=0.0)  # fmt: skip
    block = release.ledger_block(out.store)
    row = record_dpsgd_row(number, sorted(reports), block["client_reports"], delta=DELTA,
                           population=len(reports))  # fmt: skip
    row["privacy"]["epsilon"] = release.ledger_claim(out.epsilon)
    return row


def _verified(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    result = verify_rows(tmp_path / "ledger.sqlite", rows)
    assert result.ok, result.first_failure
    return result


def test_an_overstated_report_is_signed_at_its_replay_and_verifies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the stated 1 above the replay was signed, and verify failed the row."""
    history = ((2.0, 0.01, 100),)
    ran = opacus_epsilon("rdp", history, DELTA)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    with caplog.at_level(logging.WARNING, logger="secagg.dp"):
        row = _round(release, 1, {"h-a": RecordReport("rdp", DELTA, ran + 1.0, history, 1.0)})
    assert row["privacy"]["epsilon"] == ran
    assert row["dp"]["client_reports"]["h-a"]["epsilon"] == ran
    assert "states epsilon" in caplog.text  # the operator hears the figure was not kept
    _verified(tmp_path, [row])


def test_a_report_past_the_replay_caps_is_refused_not_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """33 runs (one over the cap) beside a stated 0.01: the server signed 0.01 while the
    history gives more than 1, and verify failed the row. The report is now refused, as
    it arrives and without asking the accountant (the caps bound the server's work), so
    the branch counts as unreported and its round is not released."""
    from secagg.dp import release as release_module

    history = tuple((1.0 + i / 100, 0.01, 10) for i in range(MAX_REPLAYED_RUNS + 1))
    assert opacus_epsilon("rdp", history, DELTA) > 1
    honest = ((1.0, 0.01, 10),)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    reports = {
        "h-a": RecordReport("rdp", DELTA, opacus_epsilon("rdp", honest, DELTA), honest, 1.0),
        "h-b": RecordReport("rdp", DELTA, 0.01, history, 1.0),
    }
    asked: list[object] = []
    real = release_module.RecordLevelAccountant.epsilon

    def counted(self: object) -> float:
        asked.append(getattr(self, "history", None))
        return real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(release_module.RecordLevelAccountant, "epsilon", counted)
    with pytest.raises(UnaccountedContribution, match="more than the 32 runs"):
        _round(release, 1, reports)
    assert all(h is None or len(h) <= MAX_REPLAYED_RUNS for h in asked)
    # the round without that branch is released and signed at the honest branch's figure
    row = _round(release, 1, {"h-a": reports["h-a"]})
    assert "h-b" not in row["dp"]["client_reports"]
    assert release.ledger_claim(None) == reports["h-a"].epsilon
    _verified(tmp_path, [row])


def test_a_report_whose_replay_falls_below_the_branchs_last_is_refused(tmp_path: Path) -> None:
    """The branch's first report by RDP, the next by PRV over a longer history, stating
    at least the last figure (so nothing refused it as it arrived): its PRV replay lies
    below the RDP figure recorded before. The server signed the row (holding the larger
    figure) and verify failed it ("goes down"); the report is now refused at the replay
    and the branch's last figure stays what is claimed."""
    first = ((1.0, 0.01, 100),)
    longer = ((1.0, 0.01, 200),)
    before = opacus_epsilon("rdp", first, DELTA)
    assert opacus_epsilon("prv", longer, DELTA) < before  # PRV is tighter than RDP
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    one = _round(release, 1, {"h-a": RecordReport("rdp", DELTA, before, first, 1.0)})
    with pytest.raises(UnaccountedContribution, match="below the"):
        _round(release, 2, {"h-a": RecordReport("prv", DELTA, before + 0.1, longer, 1.0)})
    assert release.ledger_claim(None) == before
    _verified(tmp_path, [one])


def test_a_history_that_gives_no_finite_epsilon_is_refused(tmp_path: Path) -> None:
    """A history without noise (z = 0) gives epsilon infinite: the server recorded the
    report as ``"inf"`` and signed an infinite claim, which verify fails (no finite
    figure); an honest server does not release an update without a guarantee. The
    contributor is refused even where another branch's report would make up the count
    (a report from a branch that dropped out of the sum)."""
    honest = ((1.0, 0.01, 10),)
    fine = RecordReport("rdp", DELTA, opacus_epsilon("rdp", honest, DELTA), honest, 1.0)
    noiseless = RecordReport("rdp", DELTA, 0.5, ((0.0, 0.01, 10),), 1.0)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    for identity, report in (("h-a", fine), ("h-b", noiseless), ("h-c", fine)):
        release.take_report(identity, report)
    with pytest.raises(UnaccountedContribution, match="no finite epsilon"):
        release.require_reports(["h-a", "h-b"])  # h-c reported, but its input dropped
    assert "h-b" not in release.latest
    assert math.isfinite(release.ledger_claim(None))
    release.ledger_block({})  # the aborted round's row
    row = _round(release, 1, {"h-a": fine})
    _verified(tmp_path, [row])


def test_a_restored_branch_keeps_the_figure_its_rows_signed(tmp_path: Path) -> None:
    """A restarted server claims no less for a branch than its rows signed (the figure
    the branch's next report is held to), whatever that report states."""
    history = ((1.0, 0.01, 100),)
    ran = opacus_epsilon("rdp", history, DELTA)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    one = _round(release, 1, {"h-a": RecordReport("rdp", DELTA, ran, history, 1.0)})
    restarted = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    restarted.restore_reports(one["dp"]["client_reports"])
    assert restarted.ledger_claim(None) == ran
    longer = ((1.0, 0.01, 150),)
    two = _round(restarted, 2, {"h-a": RecordReport("rdp", DELTA, ran, longer, 1.0)})
    assert two["privacy"]["epsilon"] == opacus_epsilon("rdp", longer, DELTA) > ran
    _verified(tmp_path, [one, two])
