"""A PRV history Opacus cannot evaluate at a sample rate of 0 is refused as it arrives.

A run of steps at rate 0 and noise 0 (or a noise multiplier whose square is 0) samples
nothing, yet Opacus's PRV "cannot compute epsilon" for it, so its replay gives no
figure. The arrival check sized its grid as finite (it asked about no noise only at a
rate above 0), so the report passed every check on arrival, and its refusal at the
replay, after the sum was unmasked, aborted the round: one branch could abort a round
by appending such a run to an honest history (2026-12-07). It is now refused as it
arrives, as every history PRV cannot evaluate is (docs/privacy.md); RDP gives it a
figure and keeps it.
"""

from __future__ import annotations

import pytest

from secagg.dp.accountants import opacus_epsilon
from secagg.dp.accounting import PrvCannotEvaluate
from secagg.dp.release import RecordRelease, RecordReport

DELTA = 1e-5
HONEST = ((1.0, 0.01, 100),)

UNEVALUABLE = [
    ((0.0, 0.0, 5),),
    ((1e-200, 0.0, 5),),  # its square is 0
    (*HONEST, (0.0, 0.0, 5)),  # appended to an honest history
    ((0.0, 0.0, 5), *HONEST),
]


@pytest.mark.parametrize("history", UNEVALUABLE, ids=["z0", "z1e-200", "after", "before"])
def test_a_prv_run_at_rate_zero_without_noise_is_refused_on_arrival(
    history: tuple[tuple[float, float, int], ...],
) -> None:
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    problem = release.report_problem("h-a", RecordReport("prv", DELTA, 1.0, history, 1.0))
    assert problem is not None and "'prv' accountant" in problem, problem


def test_the_replay_has_no_figure_for_it() -> None:
    """What the replay after the sum met (the shortest history: the others' PRV runs
    cost most of a second each before Opacus refuses)."""
    with pytest.raises(PrvCannotEvaluate, match="Cannot compute epsilon"):
        opacus_epsilon("prv", UNEVALUABLE[0], DELTA)


def test_rdp_keeps_such_a_history_and_prv_an_honest_one() -> None:
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    sampled_nothing = (*HONEST, (0.0, 0.0, 5))
    assert release.report_problem("h-a", RecordReport("rdp", DELTA, 1.0, sampled_nothing)) is None
    # a run at rate 0 with noise is evaluable, and kept
    with_noise = (*HONEST, (1.0, 0.0, 5))
    assert release.report_problem("h-b", RecordReport("prv", DELTA, 1.0, with_noise)) is None
