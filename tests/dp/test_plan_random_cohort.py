"""A distributed plan's worst figure covers the cohorts a Poisson draw likely makes.

Each branch's discrete Gaussian share is sized for the expected cohort ``q N``, and a
round is charged at the honest shares it kept. With Poisson sampling the cohort is
Binomial(N, q): a round that draws fewer clients than expected keeps fewer shares,
whatever its dropouts. :meth:`~secagg.dp.config.DPConfig.planned_epsilon_with_dropouts`,
"the most a run within the tolerance is charged", counted the expected cohort only: 100
clients at q = 0.5 over 10 rounds (10 % dropouts tolerated, d = 1 000) planned "up to
22.7", while some round draws 45 clients or fewer with probability 0.87, and the
runtime's mechanism charges such a run (45 drawn, its 4 tolerated dropouts gone) 24.0.
The plan now bounds every cohort all rounds stay within with probability at least 95 %
(:func:`~secagg.dp.plan_figures.likely_cohort_range`) and says so.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from secagg.dp.config import DPConfig, DPSettings, PrivacyCostWarning
from secagg.dp.plan_figures import MOST_ROUNDS_TAIL, likely_cohort_range
from secagg.dp.release import DistributedRelease, mechanism_for
from secagg.protocol.graph_params import tolerated_dropouts

CLIENTS = 100
RATE = 0.5
ROUNDS = 10
DROPOUT = 0.1
CORRUPT = 0.05
DIMENSION = 1_000
DELTA = 1e-5


def _plan(**changes: object) -> tuple[DPConfig, list[str]]:
    fields: dict[str, object] = {
        "unit": "client",
        "mechanism": "distributed",
        "noise_multiplier": 1.0,
        "clip": 1.0,
        "delta": DELTA,
        "num_clients": CLIENTS,
        "sample_rate": RATE,
        "rounds": ROUNDS,
        "dimension": DIMENSION,
        "corrupt_fraction": CORRUPT,
        "dropout_fraction": DROPOUT,
    }
    fields.update(changes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = DPConfig(**fields)  # type: ignore[arg-type]
    texts = [str(w.message) for w in caught if issubclass(w.category, PrivacyCostWarning)]
    return config, texts


def _run_charge(cohorts: list[int]) -> float:
    """What the runtime's mechanism signs after rounds drawing ``cohorts``, each losing
    the dropouts the backend tolerates for it."""
    settings_ = DPSettings(unit="client", mechanism="distributed", clip=1.0, delta=DELTA)
    mechanism = mechanism_for(
        settings_,
        dimension=DIMENSION,
        bits=32,
        sample_rate=RATE,
        expected_clients=RATE * CLIENTS,
        corrupt_fraction=CORRUPT,
        seed=b"random-cohort-16",
        population=CLIENTS,
    )
    assert isinstance(mechanism, DistributedRelease)
    signed = 0.0
    for cohort in cohorts:
        kept = cohort - tolerated_dropouts(cohort, DROPOUT)
        signed = mechanism.release(
            np.zeros(DIMENSION), contributors=kept, participants=cohort, noise_added=0.0
        ).epsilon
    return signed


def test_a_likely_small_draw_is_within_the_plan() -> None:
    plan, _ = _plan()
    # some round of 10 draws 45 or fewer of 100 at q = 0.5: probability 0.87
    assert 1 - stats.binom.sf(45, CLIENTS, RATE) ** ROUNDS > 0.85
    charged = _run_charge([50] * (ROUNDS - 1) + [45])
    assert plan.planned_epsilon_with_dropouts() >= charged


def test_every_cohort_of_the_likely_range_is_within_the_plan() -> None:
    plan, _ = _plan()
    fewest, most = likely_cohort_range(CLIENTS, RATE, ROUNDS)
    assert fewest < 45 and most > 55
    worst = plan.planned_epsilon_with_dropouts()
    # the charge is each round's at the worst count the rounds had: the range's ends
    # and its middle stand for it (the bound is computed over every count between)
    for cohort in (fewest, (fewest + most) // 2, most):
        assert worst >= _run_charge([cohort] * ROUNDS), cohort


def test_the_warning_names_the_cohort_and_its_probability() -> None:
    # 50 expected clients and a noise-to-signal of 0.63 warn at a threshold below it
    plan, texts = _plan(warn_noise_to_signal=0.5)
    assert len(texts) == 1, texts
    fewest, _ = likely_cohort_range(CLIENTS, RATE, ROUNDS)
    assert f"cohort holds at least {fewest} clients" in texts[0], texts[0]
    assert f"{1 - MOST_ROUNDS_TAIL:.0%}" in texts[0]
    figures = [float(v) for v in re.findall(r"epsilon = ([0-9.e+-]+)", texts[0])]
    assert max(figures) >= plan.planned_epsilon_with_dropouts()


def test_a_fixed_cohort_plans_for_its_size_alone() -> None:
    poisson, _ = _plan()
    fixed, texts = _plan(sampling="fixed", warn_noise_to_signal=0.5)
    assert fixed.planned_epsilon_with_dropouts() < poisson.planned_epsilon_with_dropouts()
    assert fixed.planned_epsilon_with_dropouts() >= _run_charge([50] * ROUNDS)
    assert len(texts) == 1 and "randomly drawn" not in texts[0], texts


def test_the_sampling_kind_is_checked_by_name() -> None:
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="sampling must be one of poisson, fixed"):
        _plan(sampling="uniform")


@given(
    population=st.integers(min_value=1, max_value=5_000),
    rate=st.floats(min_value=1e-3, max_value=1.0),
    rounds=st.integers(min_value=1, max_value=10**6),
)
@settings(max_examples=40, deadline=None)
def test_the_range_holds_all_rounds_with_the_stated_probability(
    population: int, rate: float, rounds: int
) -> None:
    fewest, most = likely_cohort_range(population, rate, rounds)
    assert 1 <= fewest <= most <= population
    if rate >= 1.0:
        assert fewest == most == population
        return
    # P(one round outside [fewest, most]) from the Binomial, then over the rounds
    outside = stats.binom.cdf(fewest - 1, population, rate) + stats.binom.sf(most, population, rate)
    if fewest == 1:  # a draw of 0 is no round (it aborts): not counted against the range
        outside -= stats.binom.pmf(0, population, rate)
    assert rounds * max(0.0, outside) <= MOST_ROUNDS_TAIL * (1 + 1e-9)
    assert math.isfinite(fewest) and math.isfinite(most)
