"""Each tuned fit validates on what it is for (2026-12-07): the public prior on public
worlds held out of its fit (``prior_validation = "world"``: it is used on another
world), the centralized baseline on the latest fifth of its rows by time
(``centralized_validation = "time"``: it is scored on a later period; since the tuning
seeds' check the default is ``"customer"``, and "time" stays selectable). Data that cannot
give a validation falls back, and the fit says why; the prior's cache tells the
validations apart; a config.toml of before (one ``tuning_validation`` for both) still
replays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models import training
from secagg.apps.simulation import data, prior, tuning
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError

#: a small world (the rows are what is checked, not the fits)
TINY = SimulationConfig(
    branches=3,
    train_rows=3000,
    test_rows_per_branch=200,
    model="logistic",
    rounds=2,
    local_epochs=1,
    mechanism="off",
    batch_size=256,
)


def _row_bytes(branches: list[Any]) -> set[bytes]:
    return {row.tobytes() for b in branches for row in np.ascontiguousarray(b.x_train)}


def test_the_held_out_worlds_are_not_the_reference_and_replay_per_seed() -> None:
    reference = data._public_reference(TINY)
    held_out = data._public_validation_worlds(TINY)
    assert len(held_out) == data.PUBLIC_VALIDATION_WORLDS * TINY.branches
    # no row of the prior's fit is a row it is validated on
    assert not _row_bytes(reference) & _row_bytes(held_out)
    # the same seed draws the same worlds, another seed others
    data._public_worlds.cache_clear()
    again = data._public_validation_worlds(TINY)
    for a, b in zip(held_out, again, strict=True):
        assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    other = data._public_validation_worlds(TINY.with_changes(seed=1))
    assert not _row_bytes(other) & _row_bytes(held_out)


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.floats(0, 60, allow_nan=False), min_size=2, max_size=200),
    share=st.sampled_from([0.1, 0.2, 0.5]),
)
def test_the_time_split_holds_the_latest_rows(days: list[float], share: float) -> None:
    times = np.array(days)
    held = tuning.time_validation_split(times, share)
    assert held.any() and not held.all()
    assert int(held.sum()) == min(max(round(share * times.size), 1), times.size - 1)
    # every held-out row is at least as late as every row fitted on
    assert times[held].min() >= times[~held].max()


def _fit(validation: str, **kw: Any) -> tuning.TunedFit:
    """A tuned logistic fit of 400 random rows, a tenth of them fraud, late frauds."""
    draw = np.random.default_rng(3)
    x = draw.standard_normal((400, 4)).astype(np.float32)
    y = (np.arange(400) % 10 == 0).astype(np.float32)
    return tuning.fit_tuned(
        TINY.with_changes(batch_size=64),
        x,
        y,
        {"scratch": None},
        "centralized",
        validation=validation,
        **{"customers": np.arange(400) // 4, **kw},
    )


def test_the_time_validation_holds_out_the_latest_fifth(monkeypatch: pytest.MonkeyPatch) -> None:
    days = np.random.default_rng(9).uniform(0, 30, 400)
    validated: list[np.ndarray] = []
    original = training.scores

    def spy(model: Any, x: np.ndarray, *a: Any) -> np.ndarray:
        validated.append(x)
        return original(model, x, *a)

    monkeypatch.setattr(training, "scores", spy)
    fit = _fit("time", days=days)
    assert fit.scheme == "time"
    assert fit.validation.startswith("the latest 80 of 400 rows held out (from day ")
    assert {a.shape[0] for a in validated} == {80}


def test_each_fallback_is_said() -> None:
    # no row times (a loaded file): customers, then rows
    fit = _fit("time")
    assert (fit.scheme, fit.validation) == (
        "customer",
        "20 of 100 customers held out (80 rows) (fell back: time: no row times in this data)",
    )
    no_customers = _fit("time", customers=None)
    assert no_customers.scheme == "row"
    assert no_customers.validation.endswith(
        "(fell back: time: no row times in this data; customer: no customer ids in this data)"
    )
    # the latest fifth without a fraud: customers
    days = np.arange(400.0)
    y_late = _fit("time", days=days[::-1])  # the frauds (every tenth row) spread: kept
    assert y_late.scheme == "time"
    # no held-out world given (the prior is not public), or one without fraud
    assert _fit("world").validation.endswith(
        "(fell back: world: no held-out public world (the prior is not public))"
    )
    blank = (np.zeros((50, 4), dtype=np.float32), np.zeros(50, dtype=np.float32))
    fit = _fit("world", world=blank)
    assert fit.scheme == "customer"
    assert fit.validation.endswith("(fell back: world: the held-out public worlds hold no fraud)")


def test_a_late_fifth_without_fraud_falls_back_to_customers() -> None:
    days = np.arange(400.0)
    draw = np.random.default_rng(3)
    x = draw.standard_normal((400, 4)).astype(np.float32)
    y = np.zeros(400, dtype=np.float32)
    y[:300:10] = 1  # no fraud after row 300: the latest fifth holds none
    fit = tuning.fit_tuned(
        TINY.with_changes(batch_size=64),
        x,
        y,
        {"scratch": None},
        "centralized",
        customers=np.arange(400) // 4,
        validation="time",
        days=days,
    )
    assert fit.scheme == "customer"
    assert fit.validation.endswith("(fell back: time: no fraud on one side of the latest fifth)")


def test_the_world_validation_keeps_the_chosen_epochs_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Validated on rows it never trains on, every candidate trains on all rows, and the
    model shipped is the chosen candidate at its chosen epoch: no refit."""
    draw = np.random.default_rng(4)
    world = (
        draw.standard_normal((300, 4)).astype(np.float32),
        (np.arange(300) % 7 == 0).astype(np.float32),
    )
    trained: list[np.ndarray] = []
    original = training.train_plain

    def spy(model: Any, x: np.ndarray, y: np.ndarray, **kw: Any) -> Any:
        trained.append(x)
        return original(model, x, y, **kw)

    monkeypatch.setattr(training, "train_plain", spy)
    fit = _fit("world", world=world)
    assert fit.scheme == "world"
    assert fit.validation.startswith("a held-out public world: 300 rows, 43 fraud rows")
    assert len(trained) == len(tuning.TUNING_LEARNING_RATES)  # no refit
    assert all(x.shape[0] == 400 for x in trained)
    from secagg.apps.models.metrics import average_precision

    score = average_precision(world[1], training.scores(fit.model, world[0]))
    assert score == pytest.approx(fit.validation_auprc)
    again = _fit("world", world=world)
    assert np.array_equal(again.vector, fit.vector)


def test_unknown_validations_and_row_times_of_other_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="no validation 'latest'"):
        _fit("latest")
    with pytest.raises(ValueError, match="row times for"):
        _fit("time", days=np.arange(399.0))


def test_the_prior_cache_tells_the_validations_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    draw = np.random.default_rng(7)
    x = draw.standard_normal((200, 4)).astype(np.float32)
    y = (np.arange(200) % 10 == 0).astype(np.float32)
    world = (x[:50] + 1, y[:50])
    keys = {
        prior._fit_key(TINY.with_changes(prior_validation=v), x, y, None, w)
        for v, w in (("world", world), ("customer", None), ("row", None))
    }
    keys.add(prior._fit_key(TINY, x, y, None, (world[0] * 2, world[1])))
    assert len(keys) == 4
    # the centralized fit's validation is no setting of the prior's fit
    assert prior._fit_key(TINY, x, y, None, world) == prior._fit_key(
        TINY.with_changes(centralized_validation="row"), x, y, None, world
    )


def test_the_key_of_before_sets_both_fits_and_is_refused_beside_them() -> None:
    """A run folder's config.toml of 2026-12-07 says ``tuning_validation = "customer"``:
    it replays with both fits validated that way."""
    replay = SimulationConfig.from_dict({"training": {"tuning_validation": "row"}})
    assert (replay.prior_validation, replay.centralized_validation) == ("row", "row")
    with pytest.raises(ConfigurationError, match=r"^training\.tuning_validation .* beside"):
        SimulationConfig.from_dict(
            {"training": {"tuning_validation": "row", "prior_validation": "world"}}
        )
    with pytest.raises(ConfigurationError, match=r"must be one of \('row', 'customer'\)"):
        SimulationConfig.from_dict({"training": {"tuning_validation": "time"}})
    with pytest.raises(ConfigurationError, match="prior_validation must be one of"):
        SimulationConfig(prior_validation="time")
    with pytest.raises(ConfigurationError, match="centralized_validation must be one of"):
        SimulationConfig(centralized_validation="world")


def test_every_training_row_keeps_its_time_when_customers_are_capped() -> None:
    """The cap of rows per customer kept the row times whole (3 000 of 1 976 rows): the
    out-of-time validation read times of other rows."""
    branches, _ = data.load_data(TINY)
    assert sum(b.y_train.size for b in branches) < TINY.train_rows  # some were capped
    for branch in branches:
        assert branch.day_train is not None and branch.typology_train is not None
        assert branch.day_train.shape == branch.y_train.shape == branch.typology_train.shape


def test_a_run_records_what_each_fit_chose_and_on_what(tmp_path: Any) -> None:
    from secagg.apps.simulation import experiment, runner

    prior.forget_fitted_priors()
    run = runner.run_simulation(
        TINY.with_changes(dropout=0.0, centralized_validation="time"), tmp_path
    )
    chosen = run.settings["prior only"]["tuning"]
    assert chosen["validation_scheme"] == "world"
    assert chosen["validation"].startswith("a held-out public world: ")
    assert set(chosen) >= {"start", "learning_rate", "epochs", "validation_auprc"}
    central = run.settings["centralized (non-private)"]["tuning"]
    assert central["validation_scheme"] == "time"
    record = experiment.ExperimentResult(config=TINY, seeds=[TINY.seed])
    experiment._record_seed(record, TINY.seed, run)
    assert record.tunings[TINY.seed] == {
        "prior only": chosen,
        "centralized (non-private)": central,
    }
