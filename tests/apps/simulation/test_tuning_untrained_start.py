"""The tuned fits' epoch-0 candidate: a given start (the prior) competes untrained.

Why: the centralized baseline, the denominator of every claim in docs/results.md,
shipped models scoring below the prior it may start from (seed 2: 0.529 against the
prior's 0.624 on the test set), for want of a candidate that is the start itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _tuning_worlds import CONFIG, DIVERGING, LARGE
from _tuning_worlds import start_vector as _start
from _tuning_worlds import world as _world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.simulation import prior, tuning
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError


def _fit(world: dict[str, np.ndarray], starts: dict[str, Any], validation: str) -> Any:
    return tuning.fit_tuned(
        CONFIG,
        world["x"],
        world["y"],
        starts,
        "centralized",
        customers=world["customers"] if validation == "customer" else None,
        validation=validation,
        world=(world["x_world"], world["y_world"]) if validation == "world" else None,
    )


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**16), validation=st.sampled_from(["row", "customer", "world"]))
def test_a_start_no_training_improves_ships_untrained(
    monkeypatch: pytest.MonkeyPatch, seed: int, validation: str
) -> None:
    """Every trained epoch diverges: before the epoch-0 candidate, the fit shipped a
    diverged scratch model (scored -1 on validation) over a prior that ranks the rows."""
    monkeypatch.setattr(tuning, "TUNING_LEARNING_RATES", DIVERGING)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(seed, scale=LARGE)
    start = _start(world["direction"], 3.0)
    fit = _fit(world, {"scratch": None, "prior": start}, validation)
    assert (fit.start, fit.epochs, fit.learning_rate) == ("prior", 0, None)
    assert fit.scheme == validation
    assert np.array_equal(fit.vector, start)  # the start's parameters, exactly
    assert all(p.requires_grad for p in fit.model.parameters())  # every one trainable
    assert 0 < fit.validation_auprc <= 1
    assert fit.chosen() == "the prior, untrained"
    choice = fit.choice()
    assert (choice["chosen"], choice["learning_rate"], choice["epochs"]) == (
        "the prior, untrained",
        None,
        0,
    )


@pytest.mark.parametrize("validation", ["row", "world"])
def test_a_start_training_improves_is_trained_as_before(
    monkeypatch: pytest.MonkeyPatch, validation: str
) -> None:
    """A start ranking the rows backwards validates worse than its trained epochs."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 3)
    world = _world(7)
    start = _start(world["direction"], -3.0)
    fit = _fit(world, {"prior": start}, validation)
    assert fit.start == "prior" and 1 <= fit.epochs <= 3
    assert fit.learning_rate in tuning.TUNING_LEARNING_RATES
    assert fit.chosen() == (
        f"prior, learning rate {fit.learning_rate:g} x {fit.epochs} "
        f"epoch{'s' if fit.epochs != 1 else ''}"
    )
    assert not np.array_equal(fit.vector, start)
    again = _fit(world, {"prior": start}, validation)  # the same seed: the same fit
    assert np.array_equal(fit.vector, again.vector)
    assert (fit.learning_rate, fit.epochs) == (again.learning_rate, again.epochs)


def test_the_untrained_fit_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "TUNING_LEARNING_RATES", DIVERGING)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(3, scale=LARGE)
    start = _start(world["direction"], 3.0)
    a, b = (_fit(world, {"scratch": None, "prior": start}, "row") for _ in range(2))
    assert a.choice() == b.choice()
    assert np.array_equal(a.vector, b.vector)


def test_scratch_never_competes_untrained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the trained epochs of scratch are scored, one per epoch and learning rate,
    and scratch never ships untrained even when every trained epoch diverges."""
    from secagg.apps.models import training

    monkeypatch.setattr(tuning, "TUNING_LEARNING_RATES", DIVERGING)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    scored: list[int] = []
    original = training.scores

    def spy(model: Any, x: np.ndarray, *a: Any) -> np.ndarray:
        scored.append(len(x))
        return original(model, x, *a)

    monkeypatch.setattr(training, "scores", spy)
    world = _world(5, scale=LARGE)
    fit = _fit(world, {"scratch": None}, "row")
    assert fit.start == "scratch" and fit.epochs >= 1
    assert len(scored) == 2  # one learning rate x two epochs, no epoch 0
    scored.clear()
    _fit(world, {"scratch": None, "prior": _start(world["direction"], 3.0)}, "row")
    assert len(scored) == 2 + 1 + 2  # the prior's epoch 0 is the one more


def test_a_start_whose_scores_overflow_is_never_chosen_and_never_crashes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start of finite parameters whose scores overflow (a prior that blew up short
    of infinity) is no candidate untrained; the scratch fit is shipped."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(11)
    start = _start(world["direction"], 3.0)
    start[0] = 1e38
    start[1] = -1e38
    fit = _fit(world, {"scratch": None, "prior": start}, "row")
    assert fit.start == "scratch" and fit.epochs >= 1
    assert np.isfinite(fit.vector).all()


@pytest.mark.parametrize("validation", ["row", "world", "customer"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_start_not_all_finite_is_refused_before_any_training(
    monkeypatch: pytest.MonkeyPatch, bad: float, validation: str
) -> None:
    """A start with a NaN or an infinity is a typed error naming it, before any
    candidate trains. Why: d0512d81 skipped it without a word, so the fit shipped
    scratch while its choice and the run's summary said nothing of the prior dropped
    (the ConfigurationError of before came only after scratch's every candidate had
    trained); run_simulation replaces a diverged prior first, and says so."""
    from secagg.apps.models import training

    trained: list[int] = []
    original = training.train_plain

    def spy(*a: Any, **kw: Any) -> Any:
        trained.append(1)
        return original(*a, **kw)

    monkeypatch.setattr(training, "train_plain", spy)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(11)
    start = _start(world["direction"], 3.0)
    start[2] = bad
    with pytest.raises(ConfigurationError, match=r"the prior start holds 1 NaN or infinite"):
        _fit(world, {"scratch": None, "prior": start}, validation)
    assert trained == []


def test_the_public_prior_starts_from_scratch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public prior's own fit has no start to compete untrained: it is unchanged."""
    seen: list[dict[str, Any]] = []
    original = tuning.fit_tuned

    def spy(
        config: SimulationConfig, x: np.ndarray, y: np.ndarray, starts: Any, *a: Any, **kw: Any
    ) -> Any:
        seen.append(dict(starts))
        return original(config, x, y, starts, *a, **kw)

    monkeypatch.setattr(tuning, "fit_tuned", spy)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 1)
    prior.forget_fitted_priors()
    world = _world(13)
    fit = prior._fitted_once(CONFIG, world["x"], world["y"], None)
    prior.forget_fitted_priors()
    assert seen == [{"scratch": None}]
    assert fit.start == "scratch" and fit.epochs == 1


def test_world_an_untrained_win_after_a_kept_epoch_ships_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "world" keeps the chosen epoch's parameters: scratch's trained epochs (tried
    first, all finite) are kept, then the prior untrained beats them, and what ships
    is the prior as it is, not the scratch epoch kept before it (world 3, the prior
    ranking by the rule: found by trying worlds 1-3)."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 4)
    world = _world(3)
    start = _start(world["direction"], 3.0)
    validated: list[bool] = []
    original = tuning._untrained_score

    def spy(*a: Any) -> Any:
        validated.append(True)
        return original(*a)

    monkeypatch.setattr(tuning, "_untrained_score", spy)
    fit = _fit(world, {"scratch": None, "prior": start}, "world")
    assert validated == [True, True]  # scratch (None), then the prior
    assert (fit.start, fit.learning_rate, fit.epochs) == ("prior", None, 0)
    assert np.array_equal(fit.vector, start)
    alone = _fit(world, {"scratch": None}, "world")  # scratch had a finite, kept epoch
    assert alone.epochs >= 1 and 0 < alone.validation_auprc < fit.validation_auprc


@pytest.mark.parametrize("validation", ["row", "customer", "world"])
@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # scratch first (run_baselines' order): its first trained epoch ties with the
        # prior untrained, and is earlier: scratch, first learning rate, epoch 1
        (("scratch", "prior"), ("scratch", tuning.TUNING_LEARNING_RATES[0], 1)),
        # the prior first: untrained, it comes before every trained epoch
        (("prior", "scratch"), ("prior", None, 0)),
        # alone: a tie with its own epoch 1 keeps it untrained
        (("prior",), ("prior", None, 0)),
    ],
)
def test_ties_go_to_the_earlier_candidate_in_starts_order(
    monkeypatch: pytest.MonkeyPatch,
    validation: str,
    order: tuple[str, ...],
    expected: tuple[Any, ...],
) -> None:
    """The documented tie rule (strictly greater wins), with every candidate scoring
    the same: the untrained start wins ties with its own trained epochs, not with an
    earlier start's."""
    from secagg.apps.models import metrics

    monkeypatch.setattr(metrics, "average_precision", lambda y, s: 0.5)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(5)
    start = _start(world["direction"], 3.0)
    fit = _fit(world, {name: start if name == "prior" else None for name in order}, validation)
    assert (fit.start, fit.learning_rate, fit.epochs) == expected
    assert fit.validation_auprc == 0.5


def test_with_nothing_held_out_the_start_is_no_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    """One fraud row: no split has a fraud on each side ("none"), nothing is scored,
    and the fit is scratch untuned, prior or not (docs/results.md says so)."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    world = _world(5)
    world["y"] = np.zeros_like(world["y"])
    world["y"][7] = 1.0
    fit = _fit(world, {"scratch": None, "prior": _start(world["direction"], 3.0)}, "row")
    assert fit.scheme == "none" and fit.validation_auprc == -np.inf
    assert (fit.start, fit.learning_rate, fit.epochs) == (
        "scratch",
        tuning.TUNING_LEARNING_RATES[0],
        2,
    )


@pytest.mark.parametrize("size", [0, 4, 6])
def test_a_start_of_another_size_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """A start that is not this model's parameters (another model's file) is refused
    with the load's ConfigurationError, never scored or shipped."""
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 1)
    world = _world(5)
    start = np.zeros(size, dtype=np.float32)
    with pytest.raises(ConfigurationError, match=r"expected a flat vector of 5 parameters"):
        _fit(world, {"scratch": None, "prior": start}, "row")
