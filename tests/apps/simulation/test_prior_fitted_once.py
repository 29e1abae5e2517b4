"""The public prior is fitted once per process for the same inputs: it is a
deterministic function of its rows and settings, and a process that runs several
simulations of one world (an experiment's settings, a test module) refitted it every
time, the costliest step before the baselines (review, 2026-12-06)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from secagg.apps.simulation import prior, runner, tuning
from secagg.apps.simulation.config import SimulationConfig

#: one epoch of a logistic model: the fit's cost is not what is checked
SMALL = SimulationConfig(branches=3, rounds=1, local_epochs=1, model="logistic", batch_size=64)


def _rows(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """400 standardised rows of 30 features, a tenth of them fraud (test data only)."""
    draw = np.random.default_rng(seed)
    x = draw.standard_normal((400, 30)).astype(np.float32)
    y = (np.arange(400) % 10 == 0).astype(np.float32)
    return x, y


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The labels of the tuned fits that really ran, from an empty cache."""
    ran: list[str] = []
    original = tuning.fit_tuned

    def counting(
        config: SimulationConfig, x: Any, y: Any, starts: Any, label: str, **kw: Any
    ) -> Any:
        ran.append(label)
        return original(config, x, y, starts, label, **kw)

    monkeypatch.setattr(tuning, "fit_tuned", counting)
    prior.forget_fitted_priors()
    yield ran
    prior.forget_fitted_priors()


def _public_prior(
    config: SimulationConfig, seed: int = 7, customers: np.ndarray | None = None
) -> runner.TunedFit:
    """The public prior of these rows, as :func:`~prior.prior_model` fits it."""
    return prior._fitted_once(config, *_rows(seed), customers)


def test_the_same_inputs_are_fitted_once_and_give_the_fresh_fits_model(fits: list[str]) -> None:
    first = _public_prior(SMALL)
    # other federation settings, the same rows: the fit reads neither
    again = _public_prior(SMALL.with_changes(dropout=0.0, learning_rate=0.5))
    assert fits == ["public-prior"]  # before: fitted twice
    assert np.array_equal(first.vector, again.vector)
    prior.forget_fitted_priors()
    fresh = _public_prior(SMALL)
    assert fits == ["public-prior"] * 2
    assert np.array_equal(fresh.vector, first.vector)  # what the cache gave is the fit's
    assert (fresh.start, fresh.learning_rate, fresh.epochs) == (
        first.start,
        first.learning_rate,
        first.epochs,
    )


def test_a_setting_the_fit_reads_fits_again(fits: list[str]) -> None:
    _public_prior(SMALL)
    _public_prior(SMALL.with_changes(batch_size=128))  # the same rows, another batch size
    _public_prior(SMALL, seed=8)  # other rows
    assert fits == ["public-prior"] * 3
    # the same rows of other customers: another held-out share, another fit
    _public_prior(SMALL, customers=np.arange(400) // 4)
    _public_prior(SMALL, customers=np.arange(400) // 5)
    _public_prior(SMALL, customers=np.arange(400) // 5)
    assert fits == ["public-prior"] * 5


def test_a_caller_changing_its_prior_does_not_change_the_next_callers(fits: list[str]) -> None:
    first = _public_prior(SMALL)
    kept = first.vector.copy()
    first.vector[:] = 0.0
    for parameter in first.model.parameters():
        parameter.data.zero_()
    again = _public_prior(SMALL)
    assert fits == ["public-prior"]
    assert np.array_equal(again.vector, kept)
    from secagg.dp.parameter_vector import flat_parameters

    assert np.array_equal(flat_parameters(again.model), kept)
