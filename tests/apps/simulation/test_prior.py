"""The prior and its fine-tuning: deterministic per seed, head-only really is head-only,
an earlier run's released model is a prior, and a bad prior is refused or survived."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError

SMALL = SimulationConfig(
    branches=3,
    rounds=2,
    local_epochs=1,
    train_rows=3000,
    test_rows_per_branch=400,
    batch_size=64,
    dropout=0.0,
)


def _prior(config: SimulationConfig) -> np.ndarray:
    _, stats = runner.load_data(config)
    fitted = runner.prior_model(config, stats)
    assert isinstance(fitted, runner.TunedFit)
    return fitted.vector


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[runner.SimulationResult, Path]:
    """One run of SMALL and its folder, shared: the fine-tuning test compares a second
    run with it, and the prior-file test starts from its released model (each of them
    ran its own identical SMALL before, a third of the file's time)."""
    run_dir = tmp_path_factory.mktemp("small") / "run"
    return runner.run_simulation(SMALL, run_dir), run_dir


def test_the_public_prior_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    from secagg.apps.simulation.prior import forget_fitted_priors

    forget_fitted_priors()  # two fits, not one and its cached copy
    a = _prior(SMALL)
    forget_fitted_priors()
    b = _prior(SMALL)
    assert np.array_equal(a, b)
    assert np.all(np.isfinite(a))
    assert not np.array_equal(a, _prior(SMALL.with_changes(seed=1)))


def test_fine_tuning_the_head_is_deterministic_and_leaves_the_body_as_the_prior(
    tmp_path: Path, small_run: tuple[runner.SimulationResult, Path]
) -> None:
    first = small_run[0]
    again = runner.run_simulation(SMALL, tmp_path / "b")
    assert first.final_model is not None and again.final_model is not None
    assert np.array_equal(first.final_model, again.final_model)  # bit for bit per seed
    prior = _prior(SMALL)
    model = runner.starting_model(SMALL, 30, prior)
    from secagg.apps.models.nets import trainable_mask

    mask = trainable_mask(model).numpy()
    assert mask.sum() == 33  # the MLP's output layer: 32 weights and a bias
    # the body is the prior's, exactly; the head moved
    assert np.array_equal(first.final_model[~mask], prior[~mask])
    assert not np.array_equal(first.final_model[mask], prior[mask])
    # what the branches sent is the head alone: 33 values, not 2 081
    fed = next(v for k, v in first.settings.items() if k.startswith("federated"))
    assert fed["bytes_sent_per_branch_per_round"] < 2000
    # the local-only and federated settings started from the same prior
    assert "prior only" in first.settings


def test_an_earlier_runs_model_is_a_prior_and_a_bad_file_is_one_clear_error(
    tmp_path: Path, small_run: tuple[runner.SimulationResult, Path]
) -> None:
    earlier, earlier_dir = small_run
    from secagg.apps.simulation.report import write_run_folder

    write_run_folder(earlier, earlier_dir)
    path = earlier_dir / "model.npy"
    # seed 1 is another world: the prior saw none of its customers (prior_epsilon 0)
    config = SMALL.with_changes(prior_path=str(path), prior_epsilon=0.0, seed=1)
    assert config.prior_source == "file" and config.trains == "head"
    assert np.array_equal(runner.prior_model(config, None), earlier.final_model)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(ConfigurationError, match=r"is not a \.npy file"):
        runner.prior_model(SMALL.with_changes(prior_path=str(bad), prior_epsilon=0.0), None)
    with pytest.raises(ConfigurationError, match="no prior model at"):
        missing = str(tmp_path / "none.npy")
        runner.prior_model(SMALL.with_changes(prior_path=missing, prior_epsilon=0.0), None)
    # a pickled object array is refused, never unpickled
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigurationError, match=r"holds Python objects.*never unpickled"):
        pickled = str(tmp_path / "pickled.npy")
        runner.prior_model(SMALL.with_changes(prior_path=pickled, prior_epsilon=0.0), None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trainable": "head", "prior": "none"}, "the body would stay random"),
        ({"prior": "public", "source": "csv", "path": "x.csv", "label": "y"}, "public"),
        ({"prior": "sideways"}, "prior must be one of"),
        ({"world": "flat"}, "world must be one of"),
    ],
)
def test_prior_settings_that_cannot_work_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SimulationConfig(**changes)


def test_without_a_prior_everything_trains_from_the_seeded_start() -> None:
    config = SMALL.with_changes(prior="none")
    assert config.prior_source == "none" and config.trains == "all"
    assert runner.prior_model(config, None) is None
