"""``audit verify`` replays each branch report of every record-level row through Opacus;
Opacus's RDP curve of one ``(q, sigma)`` is computed once per process, not once per
report (a 2 000-row, 8-branch RDP ledger took 98 s, nearly all of it there), and every
epsilon is the float it was without the cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from _ledgers import branch_report, record_dpsgd_row, verify_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp

from secagg.dp.accountants import opacus_epsilon

DELTA = 1e-5
BRANCH_RATES = (0.01, 0.02, 0.05)
PRIOR = (1.1 / math.sqrt(3), 1.0, 1)  # simulate's charged feature statistics


def _history(rate: float, number: int) -> list[tuple[float, float, int]]:
    return [PRIOR, (1.1, rate, number * int(1 / rate))]


def test_the_replay_computes_each_runs_rdp_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 rows of 3 branches: Opacus's per-order RDP is computed for each distinct (q,
    sigma) and order at most once (4 pairs here: the prior and a rate per branch), not
    for every run of every report (30 x 3 x 2 times)."""
    rows = []
    for number in range(1, 31):
        reports = {}
        for index, rate in enumerate(BRANCH_RATES):
            history = _history(rate, number)
            epsilon = opacus_epsilon("rdp", history, DELTA)
            reports[f"h-{index}"] = branch_report(history, epsilon, delta=DELTA)
        rows.append(record_dpsgd_row(number, list(reports), reports, delta=DELTA, population=3))
    computed: list[tuple[float, float, float]] = []
    original = rdp._compute_rdp

    def counted(q: float, sigma: float, alpha: float) -> float:
        computed.append((q, sigma, alpha))
        return original(q, sigma, alpha)

    monkeypatch.setattr(rdp, "_compute_rdp", counted)
    result = verify_rows(tmp_path / "rows.sqlite", rows)
    assert result.ok, result.first_failure
    orders = len(RDPAccountant.DEFAULT_ALPHAS)
    assert len(computed) == len(set(computed)) <= (1 + len(BRANCH_RATES)) * orders


@settings(max_examples=6, deadline=None)
@given(
    accountant=st.sampled_from(["rdp", "prv"]),
    runs=st.lists(
        st.tuples(
            st.sampled_from([0.8, 1.0, 1.3, 4.0]),
            st.sampled_from([1e-3, 0.01, 0.05, 1.0]),
            st.integers(1, 60),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_the_cached_rdp_gives_every_epsilon_bit_for_bit(
    accountant: str, runs: list[tuple[float, float, int]]
) -> None:
    from secagg.ledger.verify import memoise_opacus_rdp

    cache = memoise_opacus_rdp()
    memoised = rdp.compute_rdp
    cached = opacus_epsilon(accountant, runs, DELTA)
    assert opacus_epsilon(accountant, runs, DELTA) == cached  # now from the cache
    assert cache.cache_info().hits > 0
    try:
        rdp.compute_rdp = memoised.__wrapped__  # Opacus's own, uncached
        plain = opacus_epsilon(accountant, runs, DELTA)
    finally:
        rdp.compute_rdp = memoised
    assert cached == plain


def test_arguments_without_a_hash_reach_opacus_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    from secagg.ledger.verify import memoise_opacus_rdp

    assert memoise_opacus_rdp() is memoise_opacus_rdp()  # installed once
    # Opacus's own per-order function (secagg.dp.dpsgd caches it, without arrays)
    original = getattr(rdp._compute_rdp, "__wrapped__", rdp._compute_rdp)
    monkeypatch.setattr(rdp, "_compute_rdp", original)
    sigma = np.array(1.0)  # unhashable: a 0-d array
    figures = {"q": 0.01, "steps": 3, "orders": [2.0, 8, 32.5]}
    got = rdp.compute_rdp(noise_multiplier=sigma, **figures)
    assert np.array_equal(got, rdp.compute_rdp.__wrapped__(noise_multiplier=sigma, **figures))
    plain = rdp.compute_rdp.__wrapped__(noise_multiplier=1.0, **figures)
    assert np.array_equal(rdp.compute_rdp(noise_multiplier=1.0, **figures), plain)
    assert rdp.compute_rdp(q=0.01, noise_multiplier=1.0, steps=3, orders=8.0) == plain[1]
