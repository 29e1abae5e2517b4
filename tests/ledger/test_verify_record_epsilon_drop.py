"""``audit verify`` on a branch whose PRV epsilon comes out a little lower over a longer
history (Opacus's PRV bound moves with its discretisation grid, which a new run
resizes): the server keeps the branch and records its larger epsilon, and verify must
accept exactly that; a row that claims the lower figure, or a drop beyond the
accountant's error, still fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import history_runs, opacus_epsilon
from secagg.dp.release import RecordRelease, RecordReport

DELTA = 1e-5
#: one branch's history, and the same history one run longer, over which PRV drops
HISTORY = [(1.5, 0.02, 2)]
LONGER = [(1.5, 0.02, 2), (1.65, 0.001, 2)]


@pytest.fixture(scope="module")
def figures() -> tuple[float, float]:
    first, longer = opacus_epsilon("prv", HISTORY, DELTA), opacus_epsilon("prv", LONGER, DELTA)
    assert 0 < first - longer < 1e-4  # the accountant's own drop, the case at hand
    return first, longer


def _rows(first: float, second: float, claim: float | None = None) -> list[dict[str, Any]]:
    """Two rounds of one branch: its report ``first`` on HISTORY, then ``second`` on
    LONGER; the second row claims ``claim`` (default: the larger report)."""
    one = record_dpsgd_row(
        1, ["h-a"], {"h-a": branch_report(HISTORY, first, delta=DELTA, accountant="prv")},
        delta=DELTA, population=1,
    )  # fmt: skip
    two = record_dpsgd_row(
        2, ["h-a"], {"h-a": branch_report(LONGER, second, delta=DELTA, accountant="prv")},
        delta=DELTA, population=1,
    )  # fmt: skip
    if claim is not None:
        two["privacy"]["epsilon"] = claim
    return [one, two]


def test_the_servers_kept_figure_verifies(tmp_path: Path, figures: tuple[float, float]) -> None:
    """The server records the second report with the first's epsilon (the larger): it
    failed as a claim 5.7e-6 above its history's replay (1e-6 was the limit)."""
    first, _ = figures
    result = verify_rows(tmp_path / "kept.sqlite", _rows(first, first))
    assert result.ok, result.first_failure
    assert [eps for _, eps in result.epsilons] == [first, first]
    assert result.record_level == {"h-a": first}


def test_a_report_of_prvs_own_lower_figure_verifies_at_the_larger(
    tmp_path: Path, figures: tuple[float, float]
) -> None:
    """The report as the branch computed it, the row claiming the larger figure: it
    failed as an epsilon that goes down."""
    first, longer = figures
    result = verify_rows(tmp_path / "raw.sqlite", _rows(first, longer, claim=first))
    assert result.ok, result.first_failure
    assert result.epsilons[-1] == (2, first)


def test_a_row_claiming_the_lower_figure_fails(
    tmp_path: Path, figures: tuple[float, float]
) -> None:
    """The branch's epsilon is the larger one from round 1 on: a row claiming less
    flatters."""
    first, longer = figures
    result = verify_rows(tmp_path / "low.sqlite", _rows(first, longer, claim=longer))
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 2 (round 2): claims epsilon")
    assert "below the mechanism's" in result.first_failure


def test_a_drop_beyond_float_noise_between_accountants_fails(
    tmp_path: Path, figures: tuple[float, float]
) -> None:
    """RDP then PRV over the longer history: PRV's bound is far tighter, a real drop
    (only two PRV figures get PRV's error as a tolerance)."""
    first, longer = figures
    rdp = opacus_epsilon("rdp", HISTORY, DELTA)
    assert rdp > first + 0.1
    rows = _rows(first, longer, claim=rdp)
    rows[0]["dp"]["client_reports"]["h-a"] = branch_report(HISTORY, rdp, delta=DELTA)
    rows[0]["privacy"]["epsilon"] = rdp
    result = verify_rows(tmp_path / "switch.sqlite", rows)
    assert result.first_failure is not None
    assert "record-level epsilon goes down" in result.first_failure


_RUN = st.tuples(
    st.sampled_from([1.0, 1.3, 1.5, 4.0, 10.0]),
    st.sampled_from([1e-4, 1e-3, 0.01, 0.02]),
    st.integers(1, 5),
)


@settings(max_examples=8, deadline=None)
@given(runs=st.lists(_RUN, min_size=2, max_size=3))
@example(runs=[*HISTORY, *LONGER[1:]])  # a drop, whatever hypothesis draws
def test_what_the_server_records_for_an_honest_prv_branch_verifies(
    tmp_path_factory: pytest.TempPathFactory, runs: list[tuple[float, float, int]]
) -> None:
    """A branch adds a short run each round (where PRV's figure can come out lower) and
    reports Opacus's own epsilon; the server takes every report, and the rows it writes
    claim epsilons that never go down and verify."""
    release = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    rows = []
    for number in range(1, len(runs) + 1):
        history = tuple(history_runs(runs[:number]))
        epsilon = opacus_epsilon("prv", history, DELTA)
        release.take_report("h-a", RecordReport("prv", DELTA, epsilon, history, 1.0, "customer"))
        release.require_reports(["h-a"])
        reports = release.ledger_block({})["client_reports"]
        rows.append(record_dpsgd_row(number, ["h-a"], reports, delta=DELTA, population=1))
    claims = [row["privacy"]["epsilon"] for row in rows]
    assert claims == sorted(claims)
    result = verify_rows(tmp_path_factory.mktemp("honest") / "r.sqlite", rows)
    assert result.ok, result.first_failure
    assert [eps for _, eps in result.epsilons] == claims
