"""A record-level row claims the epsilon each branch's DP-SGD history gives, not the one
its report states.

Why: the server kept the epsilon a branch's report stated, and the worst branch's stated
figure is what every record-level ledger row claims and the server signs. A report of
epsilon 0.5 beside a history of (z 1, q 0.1, 1000 steps), which gives 27.16 by the
report's own RDP accountant, was signed as a claim of 0.5 (`audit verify` failed the
ledger only afterwards). The server now replays each report's history by its accountant
at its delta, as the verifier does, and records and claims that figure (a history it
cannot replay or state a finite figure for is refused:
tests/dp/test_release_record_signed_replay.py).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import opacus_epsilon
from secagg.dp.release import RecordRelease, RecordReport, UnaccountedContribution

DELTA = 1e-5


def _released_claim(report: RecordReport) -> float | None:
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    release.take_report("branch-a", report)
    out = release.release(np.ones(4), contributors=1, participants=1, noise_added=0.0)
    block = release.ledger_block(out.store)
    assert block["client_reports"]["branch-a"]["epsilon"] == release.ledger_claim(out.epsilon)
    return release.ledger_claim(out.epsilon)


def test_an_understated_report_is_claimed_at_its_historys_epsilon() -> None:
    history = ((1.0, 0.1, 1000),)
    ran = opacus_epsilon("rdp", history, DELTA)
    assert ran > 27  # 27.16
    claim = _released_claim(RecordReport("rdp", DELTA, 0.5, history, 1.0, "customer"))
    assert claim == ran


@settings(max_examples=25, deadline=None)
@given(
    z=st.floats(0.5, 5.0),
    q=st.floats(0.001, 1.0),
    steps=st.integers(1, 500),
    understated=st.floats(0.0, 0.999),
)
def test_no_claim_lies_below_what_the_history_gives(
    z: float, q: float, steps: int, understated: float
) -> None:
    """Whatever a report states, the row's claim is at least its history's epsilon, and
    an honest report (stating exactly that) is claimed as stated."""
    history = ((z, q, steps),)
    ran = opacus_epsilon("rdp", history, DELTA)
    stated = RecordReport("rdp", DELTA, ran * understated, history, 1.0, "record")
    assert _released_claim(stated) == ran
    honest = RecordReport("rdp", DELTA, ran, history, 1.0, "record")
    assert _released_claim(honest) == ran


def test_an_overstated_report_is_claimed_at_its_historys_epsilon() -> None:
    """A figure above the history's is not kept either: ``audit verify`` fails a report
    more than 1e-6 above its replay, and what is signed is the figure of what ran."""
    history = ((2.0, 0.01, 100),)
    ran = opacus_epsilon("rdp", history, DELTA)
    assert _released_claim(RecordReport("rdp", DELTA, ran + 1.0, history, 1.0, "record")) == ran


def test_a_history_no_accountant_can_evaluate_is_refused() -> None:
    """A noise multiplier past Opacus's floats (1e200) cannot be accounted: no figure is
    claimed for it (the report's 0 was), and its round is not released. Refused now by a
    look at the entries, past the largest noise a trainer takes (10^4), before any replay
    (tests/dp/test_release_record_prv_grid.py)."""
    history = ((1e200, 0.1, 10),)
    with pytest.raises(UnaccountedContribution, match="noise multiplier of 1e\\+200"):
        _released_claim(RecordReport("rdp", DELTA, 0.0, history, 1.0))


def test_a_history_too_long_to_replay_costs_nothing_and_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wire allows 10^5 runs of up to 2^32 - 1 steps, which Opacus's PRV cannot
    evaluate in bounded time or memory (1.1 GiB at 4e9 steps): the server replays only a
    history an honest trainer can have and refuses a longer one (its stated figure was
    kept, whatever it was); the accountant is never asked."""
    from secagg.dp import release as release_module

    def never(*_: object) -> None:
        raise AssertionError("the accountant was asked")

    monkeypatch.setattr(release_module.RecordLevelAccountant, "epsilon", never)
    many_runs = tuple((1.0 + i / 1000, 0.01, 1) for i in range(1000))
    many_steps = ((50.0, 1e-6, 4_000_000_000),)
    for history in (many_runs, many_steps):
        with pytest.raises(UnaccountedContribution, match="the server replays"):
            _released_claim(RecordReport("prv", DELTA, 2.0, history, 1.0))


def test_no_report_is_replayed_inside_a_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay costs seconds of PRV, and a report arrives inside a phase of the round,
    whose deadline keeps running: take_report never replays on the caller's thread (the
    server's); the replays run beside the phases, off it (since 0aa1d1aa), and each
    report is replayed once, whenever the background thread gets to it.

    Before 0aa1d1aa this asked that take_report ask nothing of the accountant at all;
    with the replays started on arrival that asserted a race (the background thread
    had or had not begun by then: it failed a fresh-clone CI)."""
    from secagg.dp import release as release_module

    asked: list[threading.Thread] = []
    real = release_module.RecordLevelAccountant.epsilon

    def counted(self: object) -> float:
        asked.append(threading.current_thread())
        return real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(release_module.RecordLevelAccountant, "epsilon", counted)
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    history = ((1.0, 0.1, 1000),)
    for branch in ("branch-a", "branch-b", "branch-c"):  # the round's reports, one by one
        release.take_report(branch, RecordReport("rdp", DELTA, 0.5, history, 1.0))
    caller = threading.current_thread()
    assert caller not in asked  # whatever ran by now ran off the server's thread
    release.release(np.ones(4), contributors=3, participants=3, noise_added=0.0)
    assert len(asked) == 3
    assert release.ledger_claim(None) == opacus_epsilon("rdp", history, DELTA)
    assert len(asked) == 3  # once per report


def test_a_history_without_noise_is_refused() -> None:
    history = ((0.0, 0.1, 10),)
    assert math.isinf(opacus_epsilon("rdp", history, DELTA))
    with pytest.raises(UnaccountedContribution, match="no finite epsilon"):
        _released_claim(RecordReport("rdp", DELTA, 1.0, history, 1.0, "record"))


def test_a_restored_report_is_held_to_its_history_too() -> None:
    """A ledger written before reports were replayed may record an understated figure:
    a restarted server claimed it again until that branch reported anew."""
    history = ((1.0, 0.1, 1000),)
    ran = opacus_epsilon("rdp", history, DELTA)
    recorded = RecordReport("rdp", DELTA, 0.5, history, 1.0, "customer").as_dict()
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    release.restore_reports({"branch-a": recorded})
    assert release.ledger_claim(None) == ran
    honest = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    honest.restore_reports({"branch-a": {**recorded, "epsilon": ran}})
    assert honest.ledger_claim(None) == ran


def test_a_history_split_into_one_step_entries_is_replayed_as_its_runs() -> None:
    """10^5 entries of one step (the wire's most) are one run of 10^5 steps: replayed as
    Opacus keeps an honest trainer's history, one run, not 10^5 of them."""
    split = ((2.0, 0.001, 1),) * 100_000
    ran = opacus_epsilon("rdp", ((2.0, 0.001, 100_000),), DELTA)
    assert _released_claim(RecordReport("rdp", DELTA, 0.0, split, 1.0)) == ran
