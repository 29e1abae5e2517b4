"""Opacus's PRV accountant is asked a history's distinct ``(z, q)`` runs, at Opacus's figure.

PRV discretises every run of a history on one grid and composes the run's steps by one
Fourier power, so its replay cost a grid per run whatever the steps: a history whose runs
alternate between two pairs (``A, B, A, B, ...``) cost a grid per run, and the server
refused it past 8 runs, though composition is commutative and its two distinct pairs
compose to the same privacy loss. :func:`~secagg.dp.accountants.opacus_epsilon` now
merges every run of one pair (:func:`~secagg.dp.accountants.distinct_runs`) before PRV
is asked; its figure stays Opacus's own: bit for bit where no pair repeats (an honest
trainer's history), within Opacus's ``eps_error`` otherwise.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants import PRVAccountant

from secagg.dp.accountants import distinct_runs, opacus_epsilon, prv_replay_points

#: Opacus's ``get_epsilon`` default, the error its PRV figure is stated to
EPS_ERROR = 0.01


def _opacus_prv(history: list[tuple[float, float, int]], delta: float) -> float:
    """Opacus's PRVAccountant on ``history`` exactly as given."""
    accountant = PRVAccountant()
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta=delta))


def _discretised_runs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every run Opacus's PRV discretises (one grid each: the replay's cost)."""
    from opacus.accountants import prv

    seen: list[object] = []
    real = prv.discretize

    def counted(tprv: object, domain: object) -> object:
        seen.append(tprv)
        return real(tprv, domain)

    monkeypatch.setattr(prv, "discretize", counted)
    return seen


def test_alternating_runs_cost_a_grid_per_distinct_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """6 runs alternating between two pairs: PRV discretised 6 grids (each as large as
    the history's), now 2; the figure is Opacus's within its eps_error."""
    history = [(1.137, 0.01, 40), (2.213, 0.02, 30)] * 3
    grids = _discretised_runs(monkeypatch)
    ours = opacus_epsilon("prv", history, 1e-5)
    assert len(grids) == 2
    assert abs(ours - _opacus_prv(history, 1e-5)) <= EPS_ERROR


def test_the_grid_count_is_of_the_distinct_pairs() -> None:
    """The arrival check counts what the replay discretises: two distinct pairs, however
    many runs alternate between them (it counted 10 grids for the history here)."""
    two = [(1.137, 0.01, 200), (2.213, 0.02, 150)]
    alternating = [(1.137, 0.01, 40), (2.213, 0.02, 30)] * 5
    assert prv_replay_points(alternating, 1e-5) == prv_replay_points(two, 1e-5)


def test_a_history_without_a_repeated_pair_is_asked_as_given() -> None:
    """An honest trainer's history (its statistics' release, then one noise and rate):
    Opacus's own float, so no figure of ``secagg simulate`` moves."""
    history = [(5.773502691896258, 1.0, 1), (0.868, 256 / 50_000, 588)]
    assert distinct_runs(history) == history
    assert opacus_epsilon("prv", history, 1e-5) == _opacus_prv(history, 1e-5)


def test_distinct_runs_keeps_first_order_and_zero_step_runs() -> None:
    """Pairs in the order they first appear, steps added; a run of no step stays (Opacus
    sizes its domain from every run's single step, so dropping it could move the figure)."""
    runs = [(1.0, 0.1, 3), (2.0, 0.2, 0), (1.0, 0.1, 4), (3.0, 0.3, 5), (2.0, 0.2, 2)]
    assert distinct_runs(runs) == [(1.0, 0.1, 7), (2.0, 0.2, 2), (3.0, 0.3, 5)]
    assert distinct_runs([(2.0, 0.2, 0)]) == [(2.0, 0.2, 0)]


#: noises and rates a history draws its pairs from: a few, so the RDP curves Opacus sizes
#: the domain from are computed once for the test (the PRV evaluations are what it checks)
_PAIRS = st.sampled_from([(1.137, 0.02), (2.5, 0.001), (0.9, 0.01), (4.0, 1.0)])


@settings(max_examples=20, deadline=None)
@given(
    st.lists(_PAIRS, min_size=1, max_size=3, unique=True),
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 30)), min_size=2, max_size=4),
    st.sampled_from([1e-5, 1e-6, 1e-3]),
)
def test_the_merged_figure_is_opacuss_within_its_error(
    pairs: list[tuple[float, float]], picks: list[tuple[int, int]], delta: float
) -> None:
    """Random histories of a few pairs in any order, repeats and all: the epsilon of the
    distinct runs lies within Opacus's eps_error of its PRVAccountant on the history as
    given (both are Opacus's upper bound of one composition, on one domain)."""
    history = [(*pairs[i % len(pairs)], steps) for i, steps in picks]
    theirs = _opacus_prv(history, delta)
    ours = opacus_epsilon("prv", history, delta)
    assert math.isfinite(ours) and math.isfinite(theirs)
    assert abs(ours - max(0.0, theirs)) <= EPS_ERROR, (history, ours, theirs)
