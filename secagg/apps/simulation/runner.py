"""``secagg simulate``: a bank-branch federation, its baselines, and the run folder.

Theory of operation
-------------------
1. **Data**: per-branch training and test sets, synthetic (seeded: cards with
   histories, an out-of-time test period) or a CSV partitioned into branches (every
   branch with a minimum of rows and of training and test frauds, or a refusal).
2. **Prior**: the model training starts from: fitted without DP on the generator's
   public reference worlds (other seeds), which costs no branch's privacy beyond the
   feature statistics it is standardised with, or an earlier run's released
   ``model.npy``, which costs what its own training spent on these protected units
   (``prior_epsilon``, ``prior_delta``): every epsilon of a setting that starts from it
   (prior only, local-only, federated) is that cost and this run's composed (basic
   composition, :func:`~secagg.apps.simulation.privacy.with_prior_cost`). With a prior
   the branches train only its output layer (33 parameters of the synthetic world's
   2 081): DP noise grows with the trained dimension. Record-level DP with the noise
   added once trains them all.
3. **Baselines**: *prior only* (what the federation adds is measured against it),
   *local-only* (each branch trains alone from the same prior, for as many epochs and
   under the same privacy mechanism as in the federation) and *centralized
   non-private* (all training rows pooled, the upper bound no bank may build), which is
   tuned on its own: start, learning rate and epochs chosen on whole customers held
   out of its rows (``centralized_validation = "customer"``, the default: chosen by
   the check on the tuning seeds), on the latest fifth of its training rows by time
   (``"time"``) or on single rows (``"row"``). The public prior chooses on public
   worlds held out of its fit (``prior_validation = "world"``), or on customers or
   rows of its own worlds.
4. **Federation**: the real runtime, not a shortcut. A
   :class:`~secagg.runtime.server.FederationServer` and one
   :class:`~secagg.runtime.client.FederationClient` thread per branch talk over
   the in-process transport; each round the branches train on their own rows
   (DP-SGD for record-level DP), and their updates meet only in the chosen
   aggregation backend (masking, CKKS or the plain baseline). Scheduled
   dropouts make branches vanish mid-protocol. The server keeps its SQLite
   database in the run folder.
5. **Evaluation** after every round, on every branch's held-out test set (the
   simulator's privilege: a real server has no test data): AUPRC and the fraud team's
   operating points (recall at 0.1 % FPR, precision and fraud amount caught in the top
   0.5 % of alerts), the mean of the last rounds beside the final one, and per branch a
   paired bootstrap interval of federated against local-only. Then a run folder with
   metrics, plots, the released model and a markdown report.

Determinism: data, model initialisation, the DP-SGD samplers and noise, the
fixed-point rounding and the dropout schedule all derive from the seed, and
torch runs one thread per operation, so the same seed gives the same metrics.
(Masks and keys are still fresh randomness: they cancel exactly.) Noise derived
from a known seed protects nothing: a simulation measures utility, it is not a
private release.

Where each part lives
---------------------
This module drives the run (:func:`run_simulation`), makes the refusals due before
training (:func:`check_seed_before_training`) and holds what a run returns
(:class:`SimulationResult`). The steps are modules of this package, so that each can
be read, tested and reused (the audit, the benchmarks, a Ray client host) alone:
``data`` (1), ``prior`` and ``tuning`` (2), ``baselines`` (3), ``branch_training``,
``federation_plan`` and ``federation`` (4), ``evaluation`` (5); beside them
``early_checks`` and ``ray_address`` (refusals before training), ``notes`` (what the
reader must be told), ``privacy`` (what the figures claim), ``seeding`` and
``progress``. Every name this module held before that split is still importable from
it. A test that replaces a name for the run (``monkeypatch.setattr(runner, ...)``)
reaches what :func:`run_simulation` itself calls (``_load_data``, ``prior_model``,
``_run_baselines``, ``run_federation``, ...); a name a step calls inside its own
module is replaced in that module.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.baselines import _run_baselines
from secagg.apps.simulation.branch_training import (
    BranchTrainer,
    _calibration_refused,
    _dpsgd_data,
    _record_distributed_units,
    _runs_dpsgd,
    customer_dataset,
    load_trainable,
    log,
    protected_units,
    starting_model,
    trainable_vector,
)
from secagg.apps.simulation.config import SimulationConfig, check_branch_data
from secagg.apps.simulation.data import (
    PUBLIC_WORLDS,
    SIMULATION_PEAK,
    _beyond_the_bound,
    _branch_counts,
    _capped,
    _check_fraud_share,
    _feature_statistics,
    _load_data,
    _public_reference,
    _raw_branches,
    _require_file,
    _world,
    load_branches,
    load_data,
    partition_column_index,
)
from secagg.apps.simulation.early_checks import (
    _check_federation_plan,
    _check_noise_accountable,
    check_composed_delta,
    check_dpsgd_calibration,
    check_record_distributed_delta,
)
from secagg.apps.simulation.evaluation import (
    ENOUGH_TEST_FRAUDS,
    LAST_ROUNDS,
    _scores,
    branch_verdicts,
    evaluate,
    last_rounds,
    scored,
)
from secagg.apps.simulation.federation import (
    COARSE_SWITCH_SECONDS,
    MANY_THREADS,
    FederationRun,
    _coarse_thread_switching,
    _federate,
    _name_aborted_rounds_dropouts,
    bytes_per_branch_taking_part,
    run_federation,
)
from secagg.apps.simulation.federation_plan import (
    KEY_HOLDER,
    _client_level_noise,
    _distributed_noise,
    expected_cohort,
    federation_config,
    honest_shares,
)
from secagg.apps.simulation.notes import (
    UNSCALED_MAGNITUDE,
    customer_column_notes,
    partition_notes,
    statistics_notes,
    unscaled_notes,
    whole_cohort_notes,
)
from secagg.apps.simulation.prior import prior_model, read_prior_file
from secagg.apps.simulation.privacy import (
    _STARTING_COST_KEYS,
    PRIOR_COMPOSITION,
    _above_target,
    _charged_shares,
    _runs,
    _statistics_summary,
    composed_epsilon,
    privacy_parameters,
    untrained_cost,
    with_prior_cost,
)
from secagg.apps.simulation.progress import Progress, _quiet
from secagg.apps.simulation.ray_address import (
    _GCS_PROBE_METHOD,
    _check_ray_address,
    _not_a_ray_gcs,
    _refuse_ray_address,
    ray_address_source,
)
from secagg.apps.simulation.seeding import _derived_seed, _replay_bytes
from secagg.apps.simulation.tuning import (
    TUNING_LEARNING_RATES,
    TUNING_MAX_EPOCHS,
    TUNING_VALIDATION_SHARE,
    TunedFit,
    fit_tuned,
)
from secagg.errors import ConfigurationError

#: every name this module defined before its steps moved to the package's modules
#: (2026-12-06): still importable from here by callers, benchmarks and tests
__all__ = [
    "COARSE_SWITCH_SECONDS",
    "ENOUGH_TEST_FRAUDS",
    "KEY_HOLDER",
    "LAST_ROUNDS",
    "MANY_THREADS",
    "PRIOR_COMPOSITION",
    "PUBLIC_WORLDS",
    "SIMULATION_PEAK",
    "TUNING_LEARNING_RATES",
    "TUNING_MAX_EPOCHS",
    "TUNING_VALIDATION_SHARE",
    "UNSCALED_MAGNITUDE",
    "_GCS_PROBE_METHOD",
    "_STARTING_COST_KEYS",
    "BranchTrainer",
    "FederationRun",
    "Progress",
    "SimulationResult",
    "TunedFit",
    "_above_target",
    "_beyond_the_bound",
    "_branch_counts",
    "_calibration_refused",
    "_capped",
    "_charged_shares",
    "_check_before_training",
    "_check_federation_plan",
    "_check_fraud_share",
    "_check_noise_accountable",
    "_check_ray_address",
    "_client_level_noise",
    "_coarse_thread_switching",
    "_derived_seed",
    "_distributed_noise",
    "_dpsgd_data",
    "_feature_statistics",
    "_federate",
    "_load_data",
    "_name_aborted_rounds_dropouts",
    "_not_a_ray_gcs",
    "_public_reference",
    "_quiet",
    "_raw_branches",
    "_record_distributed_units",
    "_refuse_ray_address",
    "_replay_bytes",
    "_require_file",
    "_run_baselines",
    "_runs",
    "_runs_dpsgd",
    "_scores",
    "_statistics_summary",
    "_world",
    "branch_verdicts",
    "bytes_per_branch_taking_part",
    "check_composed_delta",
    "check_dpsgd_calibration",
    "check_record_distributed_delta",
    "check_seed_before_training",
    "composed_epsilon",
    "customer_column_notes",
    "customer_dataset",
    "evaluate",
    "expected_cohort",
    "federation_config",
    "fit_tuned",
    "honest_shares",
    "last_rounds",
    "load_branches",
    "load_data",
    "load_trainable",
    "log",
    "partition_column_index",
    "partition_notes",
    "prior_model",
    "privacy_parameters",
    "protected_units",
    "ray_address_source",
    "read_prior_file",
    "run_federation",
    "run_simulation",
    "scored",
    "starting_model",
    "statistics_notes",
    "trainable_vector",
    "unscaled_notes",
    "untrained_cost",
    "whole_cohort_notes",
    "with_prior_cost",
]


@dataclass
class SimulationResult:
    """Everything the run folder holds, in memory."""

    config: SimulationConfig
    branches: list[dict[str, Any]]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    final_model: np.ndarray | None = None
    dropouts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: why the server stopped before the planned rounds (the epsilon budget, too many
    #: attempts or aborts, no quorum), if it did
    stopped: str | None = None
    #: where the feature standardisation came from and what it cost (None: not standardised)
    feature_statistics: dict[str, Any] | None = None
    #: every privacy parameter of the federated run
    #: (see :func:`~secagg.apps.simulation.privacy.privacy_parameters`)
    privacy: dict[str, Any] = field(default_factory=dict)
    #: what the reader should know about the data (a branch without fraud in its test set)
    notes: list[str] = field(default_factory=list)
    #: branch -> federated against local-only
    #: (see :func:`~secagg.apps.simulation.evaluation.branch_verdicts`)
    branch_verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)


def _check_before_training(
    config: SimulationConfig, branches: list[BranchData], state: Path
) -> None:
    """Every refusal of ``config`` its data allows before the prior's fit and any
    baseline (each one line naming the flag or key)."""
    if config.prior_source == "file":  # the model's size, once it is known
        read_prior_file(config, branches[0].x_train.shape[1])
    check_dpsgd_calibration(config, branches)
    check_record_distributed_delta(config, branches)
    check_composed_delta(config, branches)
    _check_federation_plan(config, branches, state)  # ... and so is the round's plan


def check_seed_before_training(config: SimulationConfig) -> None:
    """The refusals :func:`run_simulation` makes before it trains, for ``config``'s seed,
    with no run folder: its data (generated or split), checked (every branch's minimum
    rows, a fraud to learn from), and the checks on it (DP-SGD calibration, delta, the
    round's plan); the data is then let go.

    Why: ``--seeds N`` refused a seed whose data no federation can run on only when that
    seed's turn came, after the seeds before it had trained (minutes each). This costs
    what a run spends before its prior (0.6-1.7 s a seed at the defaults: the data
    1.7 s, the calibration 0.9 s once imported); the calibration is memoised, so the
    seed's run later calibrates to the same noise without a second search."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="secagg-check-") as scratch:
        branches, _, _ = _load_data(config)
        _check_before_training(config, branches, Path(scratch) / "server.sqlite")


def _one_torch_thread() -> int:
    """Import torch and run it on one thread (determinism: a sum over more threads
    rounds otherwise; and no oversubscription of the cores); returns the count it had,
    for :func:`_restore_torch_threads`.

    Why not at the top of :func:`run_simulation`, where it was: importing torch costs
    2-3 s of CPU a process, and a run refused before its checks build the starting
    model (its folder holds a run, its data is refused, its prior file is) needs no
    torch at all. Nothing before that point computes with torch, so every tensor the
    run keeps is still computed on one thread."""
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    return threads_before


def _restore_torch_threads(threads: int) -> None:
    """Give torch back the thread count :func:`_one_torch_thread` found."""
    import torch

    torch.set_num_threads(threads)


def run_simulation(
    config: SimulationConfig, run_dir: Path, progress: Progress = _quiet
) -> SimulationResult:
    """Baselines, federation and final evaluation; ``run_dir`` must be new or empty."""
    if config.engine == "ray":  # a missing extra is said now, not after the baselines
        from secagg.runtime.ray_engine import require_ray

        require_ray()
        _check_ray_address(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = run_dir / "server.sqlite"
    if state.exists():
        raise ConfigurationError(f"{run_dir} already holds a run: choose a new folder")
    threads_before: int | None = None
    started = time.perf_counter()
    if config.prior_source == "file":  # refused before the data is generated
        read_prior_file(config)
    try:
        branches, stats, feature_names = _load_data(config)
        unscaled = unscaled_notes(config, branches, feature_names)
        data_notes = customer_column_notes(config, branches)
        data_notes += partition_notes(config, feature_names)
        # the checks build the starting model: the first step that needs torch
        threads_before = _one_torch_thread()
        _check_before_training(config, branches, state)
        progress("prior", 0, 1, "")
        start = time.perf_counter()
        fitted = prior_model(config, stats)
        prior = fitted.vector if isinstance(fitted, TunedFit) else fitted
        progress("prior", 1, 1, f"{config.prior_source} {time.perf_counter() - start:.1f}s")
        if prior is not None and not np.all(np.isfinite(prior)):
            # a prior whose fit blew up is no place to start: train everything from the
            # seeded initialisation instead, and say so with the results
            prior_note = (
                f"the {config.prior_source} prior diverged (its parameters are not finite): "
                "every setting trained all parameters from scratch instead"
            )
            config = dataclasses.replace(
                config,
                prior="none",
                prior_path=None,
                prior_epsilon=None,  # nothing starts from it: its cost is in no model
                prior_delta=None,
                trainable="all",
            )
            prior = None
            # every parameter now trains: a larger round than the one checked above
            _check_federation_plan(config, branches, state)
        else:
            prior_note = None
        settings = _run_baselines(config, branches, progress, prior)
        with _coarse_thread_switching(config):
            run = run_federation(
                config,
                branches,
                state,
                progress,
                ledger_path=run_dir / "ledger.sqlite",
                prior=prior,
            )
        rounds, model, dropouts = run.rounds, run.model, run.dropouts
        privacy = privacy_parameters(config, run, branches)
    finally:
        if threads_before is not None:
            _restore_torch_threads(threads_before)
    evaluator = starting_model(config, branches[0].x_train.shape[1], prior)
    load_trainable(evaluator, model)
    federated = evaluate(evaluator, branches)
    from secagg.dp.parameter_vector import flat_parameters

    released = flat_parameters(evaluator)  # every parameter: a prior for a later federation
    completed = [r for r in rounds if r["status"] == "complete"]
    last_eps = rounds[-1]["epsilon"] if rounds else None
    sent = bytes_per_branch_taking_part(rounds)
    federated.update(
        epsilon=last_eps,
        epsilon_unit=config.protected if config.private else None,
        bytes_sent_per_branch_per_round=float(np.mean(sent)) if sent else 0.0,
        seconds_per_round=float(np.mean([r["seconds"] for r in rounds])) if rounds else None,
        rounds_completed=len(completed),
        rounds_aborted=len(rounds) - len(completed),
        rounds_released=[r["round"] for r in completed],
        epsilon_target=config.epsilon if config.private else None,
        stopped=run.stopped,
        last_rounds=last_rounds(rounds),
        # no round completed: the model is where training started (the prior, or the
        # seeded initialisation), which the table must not present as a federated result
        untrained=not completed,
    )
    # last_eps is composed already (see the rounds): this run's alone is the last round's
    with_prior_cost(config, federated, this_run=rounds[-1]["epsilon_this_run"] if rounds else None)
    federated["above_target"] = _above_target(federated["epsilon"], config)
    verdicts = branch_verdicts(config, branches, federated, settings["local-only"])
    if not completed:  # an untrained model is compared with nothing
        verdicts = {name: {**v, "judged": False, "untrained": True} for name, v in verdicts.items()}
    statistics = _statistics_summary(config, stats)
    if prior is not None:
        # what the prior scores before any branch trains: what the federation adds is
        # the difference (a prior that does all the work would be seen here)
        settings["prior only"] = evaluate(
            starting_model(config, branches[0].x_train.shape[1], prior), branches
        )
        # the prior is fitted on public rows standardised with the run's statistics: a
        # post-processing of their release, so it costs what that release cost (0 when
        # the statistics are public)
        settings["prior only"].update(
            epsilon=((statistics or {}).get("epsilon_alone") or 0.0) if config.private else None,
            epsilon_unit=config.protected if config.private else None,
            bytes_sent_per_branch_per_round=0,
            seconds_per_round=None,
            source=config.prior_source,
            # what the public prior's tuning chose, and on what (summary.json)
            **({"tuning": fitted.choice()} if isinstance(fitted, TunedFit) else {}),
        )
        # a prior from a file costs what its own training spent, on top of the statistics
        with_prior_cost(config, settings["prior only"])
    if not completed:
        untrained_cost(config, federated, settings.get("prior only"))
    settings = {
        **({"prior only": settings["prior only"]} if prior is not None else {}),
        "local-only": settings["local-only"],
        f"federated ({config.backend})": federated,
        "centralized (non-private)": settings["centralized (non-private)"],
    }
    return SimulationResult(
        config=config,
        branches=[b.summary() for b in branches],
        rounds=rounds,
        settings=settings,
        final_model=released,
        dropouts=dropouts,
        seconds=time.perf_counter() - started,
        stopped=run.stopped,
        feature_statistics=statistics,
        privacy=privacy,
        notes=check_branch_data(config, _branch_counts(branches))
        + data_notes
        + statistics_notes(config, statistics)
        + unscaled
        + whole_cohort_notes(config, rounds)
        + ([prior_note] if prior_note else []),
        branch_verdicts=verdicts,
    )
