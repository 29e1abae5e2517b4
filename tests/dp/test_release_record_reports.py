"""Record-level DP-SGD at the server: a round is released only when every update in
its sum is covered by an accepted DP-SGD report (DP audit, 2026-12-04: a branch that
sent none still released, and the ledger claimed the other branches' finite epsilon).
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.dp.release import RecordRelease, RecordReport, UnaccountedContribution
from secagg.errors import SecAggError


def _report(steps: int, epsilon: float = 1.0) -> RecordReport:
    return RecordReport("rdp", 1e-5, epsilon, ((1.0, 0.01, steps),), 1.0, "customer")


def _release(release: RecordRelease, contributors: int) -> object:
    return release.release(
        np.ones(4), contributors=contributors, participants=contributors, noise_added=0.0
    )


def test_a_contributor_without_a_report_is_refused_as_an_abort() -> None:
    """The runtime aborts a round whose release raises a SecAggError: nothing released,
    nothing claimed for the missing branch."""
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    release.take_report("a", _report(100))
    release.take_report("b", _report(100))
    with pytest.raises(UnaccountedContribution, match="3 branches contributed but only 2"):
        _release(release, 3)
    assert issubclass(UnaccountedContribution, SecAggError)
    release.take_report("c", _report(100))
    assert _release(release, 3) is not None  # all three accounted: released


def test_no_report_at_all_is_refused() -> None:
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    with pytest.raises(UnaccountedContribution):
        _release(release, 2)


def test_require_reports_matches_contributors_by_identity() -> None:
    """By count alone a dropped branch's report could stand in for a contributor's."""
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    release.take_report("a", _report(100))
    release.take_report("dropped", _report(100))
    with pytest.raises(UnaccountedContribution, match="no DP-SGD report"):
        release.require_reports(["a", "b"])
    release.require_reports(["a"])


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (_report(50, 0.5), "does not extend"),  # a restarted trainer
        (_report(200, 0.5), "went down"),  # a longer history with a smaller epsilon
    ],
)
def test_a_report_that_rewinds_the_branchs_accounting_is_not_kept(
    second: RecordReport, why: str
) -> None:
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    release.take_report("a", _report(100, 1.0))
    release.ledger_block({})  # round 1 recorded
    release.take_report("a", second)
    assert release.latest["a"].epsilon == 1.0  # the claim keeps the cumulative figure
    with pytest.raises(UnaccountedContribution, match=why):
        release.require_reports(["a"])
    with pytest.raises(UnaccountedContribution, match="refused: 1"):
        _release(release, 1)
    assert release.ledger_block({})["client_reports"] == {}
    release.take_report("a", _report(200, 1.5))  # a report that extends it is kept
    release.require_reports(["a"])
