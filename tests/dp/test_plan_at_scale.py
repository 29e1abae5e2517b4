"""A distributed plan of hundreds of millions of clients takes a fraction of a second,
with the figures of the one-by-one sums it replaces.

Why: ``DPConfig.client_level_cost`` of 2 * 10^8 clients at q = 0.5 took 69 s (cProfile,
2026-12-06): 60 s in ``_ddg_tau``, a Python sum of one ``exp`` per honest share (1e8 of
them where the local std is about 1 integer unit, and none underflows), and 9 s in
``_honest_share_range``, one ``planned_honest_shares`` call per cohort of the Poisson
range (50 000 cohorts, twice). The tail of ``tau`` is now summed in closed form, rounded
up by a part in 10^14, and the cohorts are searched by bounds; the references below are
the sums as they were, and every figure shown must stay the same.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp import ddg_accounting, distributed
from secagg.dp.config import DPConfig
from secagg.dp.display import shown
from secagg.dp.distributed import honest_share_range, planned_honest_shares


def _tau_term_by_term(local_stddev: float, noise_contributors: int) -> float:
    """``tau`` as it was summed: every term in Python (the early exit changes no float)."""
    c = 2 * math.pi**2 * local_stddev**2
    end = noise_contributors
    if c > ddg_accounting._EXP_UNDERFLOWS:
        end = min(end, math.floor(ddg_accounting._EXP_UNDERFLOWS / (c - 746.0)) + 2)
    return 10 * math.fsum(math.exp(-c * k / (k + 1)) for k in range(1, end))


def _range_cohort_by_cohort(
    smallest: int, largest: int, corrupt: float, dropout: float, population: int | None
) -> tuple[int, int]:
    """The honest share range as it was counted: one call per cohort."""
    cohorts = range(smallest, largest + 1)
    fewest = min(planned_honest_shares(c, corrupt, dropout, population=population) for c in cohorts)
    most = max(planned_honest_shares(c, corrupt, population=population) for c in cohorts)
    return fewest, most


@settings(max_examples=30, deadline=None)
@given(
    local_stddev=st.floats(min_value=0.2, max_value=6.2),
    noise_contributors=st.integers(min_value=2_000, max_value=40_000),
)
def test_closed_form_tail_bounds_the_terms_from_above_by_a_part_in_ten_trillion(
    local_stddev: float, noise_contributors: int
) -> None:
    """With the closed form taking over from 1 000 terms (instead of 2^20), ``tau`` is
    never below the term-by-term sum and at most 10^-13 of it above."""
    reference = _tau_term_by_term(local_stddev, noise_contributors)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(ddg_accounting, "_TAU_TERMS_SUMMED", 1_000)
        patched.setattr(ddg_accounting, "_TAU_HEAD_TERMS", 100)
        got = ddg_accounting._ddg_tau(local_stddev, noise_contributors)
    assert reference <= got <= reference * (1 + 1e-13)


def test_a_million_terms_agree_with_the_sum_as_it_was() -> None:
    """At the real threshold, just past it (one sum of 2^20 terms, about 0.3 s)."""
    reference = _tau_term_by_term(0.5, 2**20 + 7)
    got = ddg_accounting._ddg_tau(0.5, 2**20 + 7)
    assert reference <= got <= reference * (1 + 1e-13)


def test_tau_of_two_hundred_million_shares_costs_no_exp_per_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sum took 60 s; now a few thousand ``exp`` calls, and the tail's leading term
    (about ``n exp(-c)``) is there."""
    calls = []
    real_exp = math.exp

    def counted_exp(x: float) -> float:
        calls.append(x)
        return real_exp(x)

    monkeypatch.setattr(math, "exp", counted_exp)
    tau = ddg_accounting._ddg_tau(1.0, 200_000_000)
    monkeypatch.undo()
    assert len(calls) <= 10_000
    c = 2 * math.pi**2
    assert 10 * 2e8 * math.exp(-c) < tau < 10 * 2e8 * math.exp(-c) * 1.001


@settings(max_examples=40, deadline=None)
@given(
    smallest=st.integers(min_value=1, max_value=5_000),
    width=st.integers(min_value=0, max_value=600),
    corrupt=st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.49, 0.9]),
    dropout=st.sampled_from([0.0, 0.1, 0.29, 0.5, 0.9]),
    population=st.sampled_from([None, 0, 10, 1000, 10**7]),
)
def test_the_range_is_the_cohort_by_cohort_count(
    smallest: int, width: int, corrupt: float, dropout: float, population: int | None
) -> None:
    """The bounds skip cohorts, never a count: the same fewest and most as one call per
    cohort (``population`` 0: the range's top, the cohort drawn from everyone; 10: a
    population the draw may exceed; else beyond it)."""
    largest = smallest + width
    pop = largest if population == 0 else population
    assert honest_share_range(
        smallest, largest, corrupt, dropout, population=pop
    ) == _range_cohort_by_cohort(smallest, largest, corrupt, dropout, pop)


def test_a_plan_of_two_hundred_million_clients_counts_few_cohorts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Poisson range at 2 * 10^8 clients and q = 0.5 holds 50 000 cohorts; they
    were 100 000 calls (9 s), now a few hundred, and the counts are those printed before
    (cohorts 99 975 387 to 100 024 613: fewest 79 977 849, most 90 024 613)."""
    calls = []
    counted = distributed.planned_honest_shares

    def counting(*args: object, **kwargs: object) -> int:
        calls.append(args)
        return counted(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(distributed, "planned_honest_shares", counting)
    plan = DPConfig(
        unit="client",
        noise_multiplier=1.0,
        clip=1.0,
        delta=1e-10,
        num_clients=200_000_000,
        sample_rate=0.5,
        rounds=100,
        mechanism="distributed",
        dimension=1000,
        corrupt_fraction=0.05,
        dropout_fraction=0.1,
    )
    assert plan._honest_share_range() == (79_977_849, 90_024_613)
    assert len(calls) <= 2_000


_GRID = [
    # (clients, sample rate, noise multiplier, corrupt, dropout, dimension, bits); the
    # 14-bit rings leave a local std of 1 integer unit, where tau's tail is summed in
    # closed form (the others: too few terms, or every term past the first underflows)
    (10, 1.0, 1.0, 0.05, 0.1, 1000, 32),
    (1_000, 0.1, 1.0, 0.05, 0.1, 1000, 32),
    (100_000, 1.0, 0.7, 0.05, 0.1, 2**14, 32),
    (2_000_000, 1.0, 1.0, 0.05, 0.1, 1000, 32),
    (100_000, 0.5, 1.0, 0.05, 0.1, 1000, 14),
    (50_000, 1.0, 0.7, 0.05, 0.1, 2**14, 14),
    (40_000, 0.8, 1.5, 0.1, 0.2, 1000, 14),
]


@pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")
@pytest.mark.parametrize(("clients", "rate", "z", "corrupt", "dropout", "dimension", "bits"), _GRID)
def test_plan_figures_as_before(
    clients: int,
    rate: float,
    z: float,
    corrupt: float,
    dropout: float,
    dimension: int,
    bits: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A grid of sizes: the plan's epsilons, as shown, are the one-by-one sums' figures,
    and never below them (the new floats are at most 10^-13 above). The closed form
    takes over from 5 000 terms here, not 2^20, so that the sums it replaces, which the
    reference computes, stay cheap: at 2^20 they are the same terms, more of them."""
    plan = DPConfig(
        unit="client",
        noise_multiplier=z,
        clip=1.0,
        delta=1e-10,
        num_clients=clients,
        sample_rate=rate,
        rounds=100,
        mechanism="distributed",
        dimension=dimension,
        bits=bits,
        corrupt_fraction=corrupt,
        dropout_fraction=dropout,
    )
    with monkeypatch.context() as patched:
        patched.setattr(ddg_accounting, "_TAU_TERMS_SUMMED", 5_000)
        ddg_accounting._ddg_round_rdp.cache_clear()
        now = plan.client_level_cost()
    with monkeypatch.context() as patched:
        patched.setattr(ddg_accounting, "_ddg_tau", _tau_term_by_term)
        patched.setattr(distributed, "honest_share_range", _cohort_by_cohort_by_name)
        ddg_accounting._ddg_round_rdp.cache_clear()
        before = plan.client_level_cost()
    ddg_accounting._ddg_round_rdp.cache_clear()
    for figure in ("epsilon", "epsilon_with_dropouts"):
        old, new = getattr(before, figure), getattr(now, figure)
        assert shown(new, 4, significant=True) == shown(old, 4, significant=True)
        assert old <= new <= old * (1 + 1e-13)
    assert now.fewest_cohort == before.fewest_cohort


def _cohort_by_cohort_by_name(
    smallest: int,
    largest: int,
    corrupt: float,
    dropout: float = 0.0,
    *,
    population: int | None = None,
) -> tuple[int, int]:
    """:func:`_range_cohort_by_cohort` with :func:`honest_share_range`'s signature."""
    return _range_cohort_by_cohort(smallest, largest, corrupt, dropout, population)
