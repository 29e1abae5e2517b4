"""The plan's epsilon covers the rounds the federation tolerates, dropouts included.

At client-level distributed DP the noise is the clients' shares, and a dropout takes
its share with it: each round is charged at the honest shares it kept. The plan's
:class:`~secagg.dp.config.PrivacyCostWarning` counted the expected cohort less the
assumed colluders only, while the federation tolerates ``dropout_fraction`` of the
cohort dropping (SecAgg+'s threshold is sized for it, and the simulator sizes the
noise for it): ``secagg simulate --unit client --mechanism distributed --branches 4
--rounds 2`` warned "plan spends epsilon = 2.03" and the run signed 2.980 (review,
2026-12-06). The plan now states both figures, the second the worst a run within the
tolerance can be charged.
"""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.config import ClientLevelCost, DPConfig, PrivacyCostWarning
from secagg.dp.distributed import DistributedDiscreteGaussian, planned_honest_shares

DIMENSION = 1_000
ROUNDS = 2
DELTA = 1e-5
CORRUPT = 0.05


def _figures(text: str) -> list[float]:
    return [float(value) for value in re.findall(r"epsilon = ([0-9.e+-]+)", text)]


def _plan(
    clients: int, dropout: float, mechanism: str = "distributed", delta: float = DELTA
) -> tuple[DPConfig, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = DPConfig(
            unit="client",
            mechanism=mechanism,
            noise_multiplier=1.0,
            clip=1.0,
            delta=delta,
            num_clients=clients,
            rounds=ROUNDS,
            dimension=DIMENSION,
            corrupt_fraction=CORRUPT,
            dropout_fraction=dropout,
        )
    texts = [str(w.message) for w in caught if issubclass(w.category, PrivacyCostWarning)]
    assert len(texts) == 1, texts
    return config, texts[0]


def _charged(clients: int, honest: int) -> float:
    """What the DDG accountant charges ROUNDS rounds of ``honest`` shares each."""
    mechanism = DistributedDiscreteGaussian(
        dimension=DIMENSION, clip=1.0, noise_multiplier=1.0, expected_clients=clients, bits=32
    )
    return mechanism.epsilon(noise_contributors=honest, sample_rate=1.0, rounds=ROUNDS, delta=DELTA)


@pytest.mark.parametrize(("clients", "dropout"), [(4, 0.25), (20, 0.10), (40, 0.25)])
def test_the_warning_covers_a_run_that_loses_the_tolerated_dropouts(
    clients: int, dropout: float
) -> None:
    config, text = _plan(clients, dropout)
    fewest = planned_honest_shares(clients, CORRUPT, dropout, population=clients)
    all_present = planned_honest_shares(clients, CORRUPT, population=clients)
    assert fewest < all_present  # the case the review found: the tolerance removes shares
    charged = _charged(clients, fewest)
    assert charged > _charged(clients, all_present)
    figures = _figures(text)
    # the figure with every share present, and the worst within the tolerance, rounded up
    assert min(figures) >= config.planned_epsilon()
    assert max(figures) >= charged, text
    assert config.planned_epsilon_with_dropouts() >= charged
    assert f"{int(dropout * clients)} of {clients}" in text, text


def test_no_clause_when_the_tolerance_removes_no_share() -> None:
    """10 % of 4 clients is no whole client: the one figure is also the worst."""
    config, text = _plan(4, 0.10)
    assert config.planned_epsilon_with_dropouts() == config.planned_epsilon()
    assert len(_figures(text)) == 1
    assert "drop" not in text


def test_the_central_mechanism_is_not_charged_more_for_dropouts() -> None:
    """The server adds the whole noise: a dropout removes a signal, not noise."""
    with_dropouts, text = _plan(20, 0.25, mechanism="central")
    without, _ = _plan(20, 0.0, mechanism="central")
    assert with_dropouts.planned_epsilon_with_dropouts() == without.planned_epsilon()
    assert len(_figures(text)) == 1


def test_the_dropout_fraction_is_checked_by_name() -> None:
    from secagg.errors import ConfigurationError

    for bad in (-0.1, 1.0, float("nan"), True, "0.1"):
        with pytest.raises(ConfigurationError, match="dropout_fraction"):
            DPConfig(
                unit="client",
                mechanism="distributed",
                noise_multiplier=1.0,
                clip=1.0,
                delta=DELTA,
                num_clients=100,
                dimension=DIMENSION,
                dropout_fraction=bad,  # type: ignore[arg-type]
            )


def test_the_worse_figure_is_rounded_up() -> None:
    cost = ClientLevelCost(
        expected_clients=4.0,
        noise_multiplier=1.0,
        epsilon=2.0301,
        delta=DELTA,
        rounds=ROUNDS,
        relative_noise_on_mean=0.25,
        noise_to_signal=None,
        epsilon_with_dropouts=2.97101,
        tolerated_dropouts=1,
    )
    text = cost.describe()
    assert "epsilon = 2.04" in text and "epsilon = 2.98" in text, text


@settings(max_examples=40, deadline=None)
@given(
    fewest=st.integers(1, 30),
    extra=st.integers(0, 30),
    # small local stds make tau (which grows with the count) matter: the bound is
    # then not the fewest count's, and the envelope must still cover every count
    local_stddev=st.floats(0.2, 3.0),
    l2=st.floats(1.0, 50.0),  # integer domain: L1 >= L2 needs L2 >= 1
    dimension=st.integers(1, 4096),
    rounds=st.integers(1, 20),
)
def test_the_envelope_covers_every_count_in_the_range(
    fewest: int, extra: int, local_stddev: float, l2: float, dimension: int, rounds: int
) -> None:
    from secagg.dp.ddg_accounting import ddg_epsilon, ddg_epsilon_within

    common = {
        "l2_sensitivity": l2,
        "l1_sensitivity": None,
        "local_stddev": local_stddev,
        "dimension": dimension,
        "sample_rate": 1.0,
        "rounds": rounds,
        "delta": DELTA,
    }
    most = fewest + extra
    every = ddg_epsilon(noise_contributors=range(fewest, most + 1), **common)
    bound = ddg_epsilon_within(fewest=fewest, most=most, **common)
    assert bound >= every
    if extra == 0:
        assert bound == ddg_epsilon(noise_contributors=fewest, **common)


def test_the_plan_of_a_large_federation_stays_cheap() -> None:
    """10 % of 100 000 clients: every count's own tau was 10^9 terms at a server's start."""
    import time

    config = DPConfig(
        unit="client",
        mechanism="distributed",
        noise_multiplier=1.0,
        clip=1.0,
        delta=1e-7,
        num_clients=100_000,
        rounds=ROUNDS,
        dimension=DIMENSION,
        corrupt_fraction=CORRUPT,
        dropout_fraction=0.10,
    )
    started = time.monotonic()
    worst = config.planned_epsilon_with_dropouts()
    assert time.monotonic() - started < 60  # generous: two counts' tau, not 10 000
    assert worst >= config.planned_epsilon()
