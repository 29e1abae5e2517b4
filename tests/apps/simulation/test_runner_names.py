"""runner.py's names after its split into the package's modules (2026-12-06).

``secagg.apps.simulation.runner`` held the whole run in 2 497 lines; its steps now live in
modules of their own (data, prior, baselines, federation, ...). Callers, benchmarks
(``benchmarks/bench_branch_gap.py`` reads a dozen private names) and tests import from
runner, and patch names on it: every name it defined stays there, as the very object its
new home holds (a copy would take a patch the code never reads).
"""

from __future__ import annotations

import importlib

from secagg.apps.simulation import runner

#: every name runner.py defined before the split (functions, classes, constants)
RUNNER_NAMES = (
    "_above_target",
    "_beyond_the_bound",
    "_branch_counts",
    "branch_verdicts",
    "BranchTrainer",
    "bytes_per_branch_taking_part",
    "_calibration_refused",
    "_capped",
    "_charged_shares",
    "_check_before_training",
    "check_composed_delta",
    "check_dpsgd_calibration",
    "_check_federation_plan",
    "_check_fraud_share",
    "_check_noise_accountable",
    "_check_ray_address",
    "check_record_distributed_delta",
    "check_seed_before_training",
    "_client_level_noise",
    "COARSE_SWITCH_SECONDS",
    "_coarse_thread_switching",
    "composed_epsilon",
    "customer_column_notes",
    "customer_dataset",
    "_derived_seed",
    "_distributed_noise",
    "_dpsgd_data",
    "ENOUGH_TEST_FRAUDS",
    "evaluate",
    "expected_cohort",
    "_feature_statistics",
    "_federate",
    "federation_config",
    "FederationRun",
    "fit_tuned",
    "_GCS_PROBE_METHOD",
    "honest_shares",
    "KEY_HOLDER",
    "LAST_ROUNDS",
    "last_rounds",
    "load_branches",
    "load_data",
    "_load_data",
    "load_trainable",
    "log",
    "MANY_THREADS",
    "_name_aborted_rounds_dropouts",
    "_not_a_ray_gcs",
    "partition_column_index",
    "partition_notes",
    "PRIOR_COMPOSITION",
    "prior_model",
    "privacy_parameters",
    "Progress",
    "protected_units",
    "_public_reference",
    "PUBLIC_WORLDS",
    "_quiet",
    "_raw_branches",
    "ray_address_source",
    "read_prior_file",
    "_record_distributed_units",
    "_refuse_ray_address",
    "_replay_bytes",
    "_require_file",
    "_run_baselines",
    "run_federation",
    "run_simulation",
    "_runs",
    "_runs_dpsgd",
    "scored",
    "_scores",
    "SIMULATION_PEAK",
    "SimulationResult",
    "_STARTING_COST_KEYS",
    "starting_model",
    "statistics_notes",
    "_statistics_summary",
    "trainable_vector",
    "TunedFit",
    "TUNING_LEARNING_RATES",
    "TUNING_MAX_EPOCHS",
    "TUNING_VALIDATION_SHARE",
    "UNSCALED_MAGNITUDE",
    "unscaled_notes",
    "untrained_cost",
    "whole_cohort_notes",
    "with_prior_cost",
    "_world",
)


def test_every_name_runner_defined_is_still_importable_from_it() -> None:
    assert [name for name in RUNNER_NAMES if not hasattr(runner, name)] == []
    assert set(RUNNER_NAMES) <= set(runner.__all__)


def test_each_moved_function_and_class_is_its_homes_own_object() -> None:
    """``runner.X is home.X``: one object, so a patch on the home reaches runner's
    callers that read it through runner, and the other way round."""
    for name in RUNNER_NAMES:
        value = getattr(runner, name)
        home = getattr(value, "__module__", None)
        if not (callable(value) and home and home.startswith("secagg.apps.simulation.")):
            continue  # a constant or an alias of another package's type (Progress)
        assert getattr(importlib.import_module(home), name) is value, (name, home)
