"""A Poisson-sampled federation whose draws are often too small to plan is told so at load.

Before (review, 2026-12-07): the load planned only the expected draw ``ceil(rate *
clients)``; 100 clients with ``corrupt_fraction = 0.05`` (5 colluders, so no round below
7 plans) and ``rate = 0.07`` loaded silently, and about 44 % of its rounds drew fewer
than 7 and aborted at planning. Now the load finds the smallest plannable draw and the
exact Binomial(clients, rate) share below it: above 1 % a :class:`SmallDrawWarning`
(one line naming ``[sampling] rate`` and the share, logged by ``secagg server`` at
start), above 50 % a :class:`ConfigurationError`.
"""

from __future__ import annotations

import logging
import math
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.commands.parties import _warning_as_log_line
from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    BackendConfig,
    FederationConfig,
    SamplingConfig,
    SmallDrawWarning,
    binomial_below,
)


def _federation(
    clients: int, rate: float, corrupt_fraction: float = 0.05, kind: str = "poisson"
) -> FederationConfig:
    sampling = (
        SamplingConfig(kind="fixed", count=round(rate * clients))
        if kind == "fixed"
        else SamplingConfig(rate=rate)
    )
    return FederationConfig(
        name="draws",
        clients=tuple(f"b{i}" for i in range(clients)),
        dimension=8,
        rounds=1,
        sampling=sampling,
        backend=BackendConfig(corrupt_fraction=corrupt_fraction),
    )


def _brute_force_below(clients: int, rate: float, size: int) -> float:
    """P(X < size) summed exactly in rationals: the definition the tail is held to."""
    q = Fraction(rate)
    exact = sum(
        Fraction(math.comb(clients, k)) * q**k * (1 - q) ** (clients - k)
        for k in range(min(size, clients + 1))
    )
    return float(exact)


@settings(max_examples=40, deadline=None)
@given(
    clients=st.integers(min_value=1, max_value=60),
    rate=st.floats(min_value=1e-3, max_value=1.0),
    data=st.data(),
)
def test_the_tail_is_the_exact_binomial_sum(clients: int, rate: float, data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=0, max_value=clients + 1))
    exact = _brute_force_below(clients, rate, size)
    assert binomial_below(clients, rate, size) == pytest.approx(exact, rel=1e-10, abs=1e-300)


def test_the_tail_of_a_large_population_is_cheap_and_right() -> None:
    # far in the lower tail of 10^6 draws: the sum stops with the tail, not the population
    clients, rate = 10**6, 0.3
    assert binomial_below(clients, rate, 299_000) == pytest.approx(0.0146, abs=0.001)
    assert binomial_below(clients, rate, 290_000) < 1e-100


def test_a_federation_that_aborts_44_percent_of_its_rounds_is_warned() -> None:
    # 5 colluders: no round below 7 plans; Binomial(100, 0.07) is below 7 in 44.43 %
    expected_share = _brute_force_below(100, 0.07, 7)
    assert expected_share == pytest.approx(0.4443, abs=1e-4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _federation(100, 0.07)
    [warning] = [w for w in caught if issubclass(w.category, SmallDrawWarning)]
    text = str(warning.message)
    assert "\n" not in text
    assert text.startswith("[sampling] rate = 0.07 over 100 clients")
    assert "no round smaller than 7 can run" in text
    assert "5 colluders" in text  # the backend's own reason
    assert "44.5 % of the draws are smaller" in text  # 44.43 %, rounded up
    assert "below 2: 0.7 %" in text


def test_the_server_start_log_says_it_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """``secagg server`` sets this showwarning before it loads the config."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _warning_as_log_line
        with caplog.at_level(logging.WARNING, logger="secagg.warnings"):
            _federation(100, 0.07)
    [line] = [r.getMessage() for r in caplog.records if "SmallDrawWarning" in r.getMessage()]
    assert line.startswith("SmallDrawWarning: [sampling] rate = 0.07")
    assert "44.5 %" in line


@pytest.mark.parametrize(("clients", "rate"), [(100, 0.3), (100, 1.0), (1000, 0.2)])
def test_draws_that_are_always_large_enough_are_silent(clients: int, rate: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallDrawWarning)
        _federation(clients, rate)


def test_a_rate_whose_draws_are_mostly_too_small_is_refused_naming_the_key() -> None:
    # 6.01 expected, the expected draw (7) plans, but 60 % of the draws are below 7
    share = _brute_force_below(100, 0.0601, 7)
    assert share > 0.5
    with pytest.raises(ConfigurationError) as refused:
        _federation(100, 0.0601)
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith("[sampling] rate = 0.0601 over 100 clients")
    assert "no round smaller than 7 can run" in text
    assert f"{math.ceil(share * 1000) / 10:.1f} % of the draws are smaller" in text
    assert "raise [sampling] rate" in text


def test_draws_below_two_count_as_aborted() -> None:
    # 3 clients at 1e-9: every draw is empty, whatever the backend could plan
    with pytest.raises(ConfigurationError, match=r"below 2: 100\.0 %"):
        _federation(3, 1e-9, corrupt_fraction=0.0)


def test_exactly_half_is_warned_not_refused() -> None:
    # 3 clients at 0.5 draw fewer than 2 in exactly half the rounds (docs/deployment.md)
    with pytest.warns(SmallDrawWarning, match=r"50\.0 % of the draws"):
        _federation(3, 0.5, corrupt_fraction=0.0)


def test_a_fixed_count_below_the_smallest_plannable_round_is_still_refused() -> None:
    with pytest.raises(ConfigurationError, match="no round of 6 clients drawn from the 100"):
        _federation(100, 0.06, kind="fixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallDrawWarning)
        _federation(100, 0.07, kind="fixed")  # a fixed 7 never draws smaller


def test_the_bisected_smallest_round_is_the_one_a_downward_scan_finds() -> None:
    # 1000 clients, 50 colluders, 60 expected: the scan plans each size down from 60
    with pytest.warns(SmallDrawWarning) as caught:
        config = _federation(1000, 0.06)
    backend, mechanism = config.aggregation_backend(), config.mechanism()
    size = 60
    while size > 2:
        try:
            backend.plan(size - 1, config.dimension, **mechanism.round_options(size - 1))
        except ConfigurationError:
            break
        size -= 1
    text = str(caught[0].message)
    assert f"no round smaller than {size} can run" in text
    share = binomial_below(1000, 0.06, size)  # held to the brute-force sum above
    assert f"{math.ceil(share * 1000) / 10:.1f} % of the draws are smaller" in text


def test_an_auditor_loading_the_config_is_not_warned(tmp_path: Path) -> None:
    names = ", ".join(f'"b{i}"' for i in range(100))
    path = tmp_path / "federation.toml"
    path.write_text(
        f'[federation]\nname = "draws"\nclients = [{names}]\ndimension = 8\nrounds = 1\n'
        "[sampling]\nrate = 0.07\n[backend]\ncorrupt_fraction = 0.05\n"
    )
    with pytest.warns(SmallDrawWarning):
        FederationConfig.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallDrawWarning)
        config, seeded = FederationConfig.load_for_audit(path)
    assert config.sampling.rate == 0.07 and not seeded
