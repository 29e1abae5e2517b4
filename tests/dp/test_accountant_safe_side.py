"""The running accountant's epsilon is never below the true epsilon of what ran.

The tests beside this one compare :class:`PrivacyAccountant` with dp_accounting's
*pessimistic* PLD, and allow it to sit a hair below (float rounding in other FFT
lengths; the exact closed form at ``q == 1``). That tolerance is two-sided, so it does
not by itself show the figure is on the safe side. This file does, one-sidedly:
dp_accounting's *optimistic* PLD (``pessimistic_estimate=False``) is a lower bound on
the true epsilon of the composition, so an accountant below it under-reports, by any
margin. Random restarts (another z or q mid-history, as a federation restarted under
another config) are included, and every run must also stay within one discretisation
step per run of the pessimistic figure (safe, but not needlessly loose).
"""

from __future__ import annotations

import functools

import pytest
from dp_accounting.pld import privacy_loss_distribution
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accounting import PLD_VALUE_DISCRETIZATION, PrivacyAccountant

#: run of identical rounds: (noise multiplier, sample rate, rounds)
Run = tuple[float, float, int]


@functools.lru_cache(maxsize=8)
def _composed(
    runs: tuple[Run, ...], *, pessimistic: bool
) -> privacy_loss_distribution.PrivacyLossDistribution:
    """The runs' PLD from dp_accounting alone (pessimistic: an upper bound on the loss;
    optimistic: a lower bound).

    Composed in the runs' order, each run onto the PLD of the runs before it, which is
    cached: the test asks for every prefix of a history, and composing each prefix from
    scratch again was most of this file's time (the same compositions in the same order,
    so the same PLD)."""
    z, q, count = runs[-1]
    one = privacy_loss_distribution.from_gaussian_mechanism(
        z,
        sampling_prob=q,
        pessimistic_estimate=pessimistic,
        value_discretization_interval=PLD_VALUE_DISCRETIZATION,
        use_connect_dots=pessimistic,  # connect-the-dots is pessimistic only
    ).self_compose(count)
    if len(runs) == 1:
        return one
    return _composed(runs[:-1], pessimistic=pessimistic).compose(one)


@functools.lru_cache(maxsize=64)
def _bounds(runs: tuple[Run, ...], delta: float) -> tuple[float, float]:
    """(lower bound, upper bound) of the true epsilon of ``runs`` at ``delta``."""
    low = _composed(runs, pessimistic=False).get_epsilon_for_delta(delta)
    high = _composed(runs, pessimistic=True).get_epsilon_for_delta(delta)
    return low, high


@settings(max_examples=10, deadline=None)
@given(
    accountant=st.sampled_from(["pld", "rdp"]),
    runs=st.lists(
        st.tuples(
            st.floats(0.7, 4.0),
            st.one_of(st.just(1.0), st.floats(0.005, 0.7)),
            st.integers(1, 25),
        ),
        min_size=1,
        max_size=3,
    ),
    delta=st.sampled_from([1e-8, 1e-6, 1e-5, 1e-3]),
)
def test_the_running_epsilon_is_never_below_the_true_one(
    accountant: str, runs: list[Run], delta: float
) -> None:
    acc = PrivacyAccountant(delta, accountant)
    done: list[Run] = []
    for z, q, count in runs:
        for _ in range(count):
            acc.step(z, q)
        done.append((z, q, count))
        ours = acc.epsilon()  # after every run, as the server asks after every round
        low, high = _bounds(tuple(done), delta)
        assert ours >= low, (ours, low, done)  # never below the truth's lower bound
        if accountant == "pld":  # and no looser than dp_accounting's own upper bound
            slack = len(done) * PLD_VALUE_DISCRETIZATION
            assert ours <= high + slack, (ours, high, done)


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_a_restart_from_the_ledger_keeps_the_figure_on_the_safe_side(accountant: str) -> None:
    """The accountant an auditor rebuilds from the ledger's history (a restart) gives
    the same safe figure as the one that ran."""
    runs: list[Run] = [(1.1, 0.2, 7), (2.5, 1.0, 5)]
    running = PrivacyAccountant(1e-5, accountant)
    for z, q, count in runs:
        for _ in range(count):
            running.step(z, q)
    rebuilt = PrivacyAccountant.from_history(running.history, 1e-5)
    low, _ = _bounds(tuple(runs), 1e-5)
    assert rebuilt.epsilon() == pytest.approx(running.epsilon(), rel=1e-8)
    assert min(rebuilt.epsilon(), running.epsilon()) >= low
