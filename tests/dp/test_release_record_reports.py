"""Record-level DP-SGD at the server: a round is released only when every update in
its sum is covered by an accepted DP-SGD report (DP audit, 2026-12-04: a branch that
sent none still released, and the ledger claimed the other branches' finite epsilon).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.release import (
    PRV_EPSILON_ERROR,
    RecordRelease,
    RecordReport,
    UnaccountedContribution,
    record_epsilon_drop_allowed,
)
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


#: what (z 1, q 0.01, 100 steps) gives by RDP at delta 1e-5: what the server records for it
#: whatever a report states (tests/dp/test_release_record_signed_replay.py)
_RAN_100 = 1.2141452107864754


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (_report(50, _RAN_100), "does not extend"),  # a restarted trainer
        # a longer history stating less than the figure recorded for the last report
        (_report(200, _RAN_100 - 0.5), "went down"),
    ],
)
def test_a_report_that_rewinds_the_branchs_accounting_is_not_kept(
    second: RecordReport, why: str
) -> None:
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    release.take_report("a", _report(100, 5.0))
    release.ledger_block({})  # round 1 recorded, at the history's figure
    release.take_report("a", second)
    assert release.latest["a"].epsilon == _RAN_100  # the claim keeps the cumulative figure
    with pytest.raises(UnaccountedContribution, match=why):
        release.require_reports(["a"])
    with pytest.raises(UnaccountedContribution, match="refused: 1"):
        _release(release, 1)
    assert release.ledger_block({})["client_reports"] == {}
    release.take_report("a", _report(200, 5.5))  # a report that extends it is kept
    release.require_reports(["a"])


#: a branch's DP-SGD history, and the same history one run longer, on which Opacus's
#: PRV accountant states a smaller epsilon (found by a random search over honest
#: histories: its bound moves with the discretisation grid, which the new run resizes)
PRV_HISTORY = ((1.5, 0.02, 2),)
PRV_LONGER = ((1.5, 0.02, 2), (1.65, 0.001, 2))


def test_an_honest_prv_drop_keeps_the_branch_and_its_larger_epsilon() -> None:
    """A history that extends the last one, with PRV's own figure 5.7e-6 below the last
    report's: the branch's rounds were refused (any drop was a rewind). Now the report is
    kept with the larger epsilon, so nothing the server keeps, claims or records goes
    down."""
    from secagg.dp.accountants import opacus_epsilon

    first = opacus_epsilon("prv", PRV_HISTORY, 1e-5)
    longer = opacus_epsilon("prv", PRV_LONGER, 1e-5)
    assert 0 < first - longer < 1e-4  # the accountant's own drop, the case at hand
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    release.take_report("a", RecordReport("prv", 1e-5, first, PRV_HISTORY, 1.0, "customer"))
    assert release.ledger_block({})["client_reports"]["a"]["epsilon"] == first
    release.take_report("a", RecordReport("prv", 1e-5, longer, PRV_LONGER, 1.0, "customer"))
    release.require_reports(["a"])  # the round is not refused
    assert _release(release, 1) is not None
    assert release.latest["a"].epsilon == first
    assert release.ledger_claim(None) == first
    recorded = release.ledger_block({})["client_reports"]["a"]
    assert recorded["epsilon"] == first  # the larger figure, never the smaller
    assert recorded["history"] == [list(run) for run in PRV_LONGER]


@settings(max_examples=150, deadline=None)
@given(
    accountant=st.sampled_from(["prv", "rdp"]),
    moves=st.lists(
        st.tuples(st.integers(-2, 3), st.floats(-0.03, 0.03, allow_nan=False)),
        min_size=1,
        max_size=12,
    ),
)
def test_kept_and_recorded_epsilons_never_go_down(
    accountant: str, moves: list[tuple[int, float]]
) -> None:
    """A branch's reports wander (steps back or on, epsilon down or up by up to 0.03):
    a report is kept exactly when its history extends the last kept one and its epsilon
    is at most the accountant's error below it (PRV: 0.01; otherwise float noise), and
    what is kept, claimed and recorded is never below anything kept before. A stated
    epsilon is recorded as the history's figure (replayed at the row), or the last kept
    one where the replay lies within the accountant's error below it, and the next
    report is held to that."""
    from secagg.dp.accountants import opacus_epsilon

    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    kept: float | None = None
    kept_steps = stated = 0
    steps = 100
    for extra, change in moves:
        steps, stated = steps + extra, max(0.0, (stated or 1.0) + change)
        release.take_report("a", RecordReport(accountant, 1e-5, stated, ((1.0, 0.01, steps),)))
        replayed = opacus_epsilon(accountant, ((1.0, 0.01, steps),), 1e-5)
        sent = replayed
        recorded = release.ledger_block({})["client_reports"]
        slack = PRV_EPSILON_ERROR if accountant == "prv" else 1e-8 * max(1.0, kept or 0.0)
        if kept is None or (steps >= kept_steps and kept - stated <= slack):
            kept, kept_steps = max(kept or 0.0, sent), steps
            assert recorded["a"]["epsilon"] == kept
            assert recorded["a"]["history"] == [[1.0, 0.01, steps]]
        else:
            assert recorded == {}
        assert release.latest["a"].epsilon == release.ledger_claim(None) == kept


@pytest.mark.parametrize(
    ("accountants", "before", "after", "allowed"),
    [
        (("prv", "prv"), PRV_EPSILON_ERROR, 0.0, True),
        (("prv", "prv"), 1.01 * PRV_EPSILON_ERROR, 0.0, False),
        (("prv", "prv"), 1.0, 1.0 - 1.01 * PRV_EPSILON_ERROR, False),
        (("rdp", "rdp"), 1.0, 1.0 - 1e-9, True),
        (("rdp", "rdp"), 1.0, 1.0 - 1e-6, False),
        (("rdp", "prv"), 1.0, 1.0 - 1e-6, False),  # another accountant: float noise only
        (("prv", "prv"), math.inf, 5.0, False),  # from no guarantee to one: a rewind
        (("prv", "prv"), 5.0, math.inf, True),
    ],
)
def test_the_drop_rule_at_its_edges(
    accountants: tuple[str, str], before: float, after: float, allowed: bool
) -> None:
    assert record_epsilon_drop_allowed(accountants, before, after) is allowed


@pytest.mark.parametrize("delta", [2e-5, 1e-5 * (1 + 1e-12), 5e-6])
def test_a_report_at_another_delta_is_not_kept(delta: float) -> None:
    """The ledger row prints the federation's delta beside the worst branch's epsilon: a
    branch that accounted at a larger delta (by any amount) states a smaller epsilon than
    holds at the printed one, and the server signed it as the row's claim (``audit
    verify`` then failed the ledger for good). A smaller delta is refused too, as verify
    does (the row would not state what the branch accounted)."""
    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    release.take_report("a", RecordReport("rdp", delta, 1.0, ((1.0, 0.01, 100),)))
    with pytest.raises(UnaccountedContribution, match="accounts at delta"):
        release.require_reports(["a"])
    assert release.latest == {} and release.ledger_claim(None) is None
    assert release.ledger_block({})["client_reports"] == {}
    release.take_report("a", _report(100))  # at the federation's delta: kept
    release.require_reports(["a"])
