"""The baselines the federation is measured against: step 3 of ``secagg simulate``.

*Local-only*: each branch trains alone from the same prior, for as many epochs and
under the same privacy mechanism as in the federation (record-level DP with the noise
added once: the federation's rounds as full-batch steps, at most
:data:`~secagg.apps.simulation.branch_training.LOCAL_ONLY_MAX_STEPS`, the noise all its
own), two branches at a time, every trainer built (and its DP-SGD noise calibrated)
before any trains. *Centralized
(non-private)*: all training rows pooled, the upper bound no bank may build, with its
own tuning (:mod:`secagg.apps.simulation.tuning`). The *prior only* setting is scored by
the run itself, from the prior it already holds.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import BranchTrainer
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.evaluation import _scores, evaluate, scored
from secagg.apps.simulation.privacy import local_only_parameters, with_prior_cost
from secagg.apps.simulation.progress import Progress
from secagg.apps.simulation.tuning import fit_tuned, pooled_customers


def _run_baselines(
    config: SimulationConfig,
    branches: list[BranchData],
    progress: Progress,
    prior: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = {}
    # local-only: each branch alone, same epochs and privacy as in the federation (the
    # noise once: at most LOCAL_ONLY_MAX_STEPS of its rounds, see local_only_steps)
    total = len(branches)
    done = 0
    lock = threading.Lock()
    local_models: dict[str, Any] = {}
    local_eps: dict[str, float | None] = {}
    #: what each branch's local-only epsilon follows from (an auditor recomputes it)
    local_parameters: dict[str, dict[str, Any]] = {}

    # every branch's trainer first (DP-SGD calibrates its noise here): a target that
    # cannot be calibrated is refused before any branch trains, and the other branch's
    # calibration ends before the command's quiet context does (its numpy overflow
    # warnings were printed after the error). Each task runs in a copy of this
    # thread's context: its messages name the flags as the user typed them.
    def make(branch: BranchData) -> BranchTrainer:
        return BranchTrainer(config, branch, "local", prior)

    progress("local-only", 0, total, "")
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [pool.submit(contextvars.copy_context().run, make, b) for b in branches]
        trainers: dict[str, BranchTrainer] = {}
        for branch, future in zip(branches, futures, strict=True):
            try:
                trainers[branch.name] = future.result()
            except Exception:
                for other in futures:  # calibrations: seconds, not trainings
                    other.cancel()
                wait(futures)
                raise
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise

    def one(branch: BranchData) -> None:
        nonlocal done
        start = time.perf_counter()
        with lock:  # let go of it once trained: only its model is kept
            trainer = trainers.pop(branch.name)
        trainer.train(config.epochs)
        parameters = local_only_parameters(config, trainer, branch)
        with lock:
            local_models[branch.name] = trainer.model
            local_eps[branch.name] = trainer.epsilon()
            if parameters is not None:
                local_parameters[branch.name] = parameters
            done += 1
            progress("local-only", done, total, f"{branch.name} {time.perf_counter() - start:.1f}s")

    try:
        for future in [pool.submit(contextvars.copy_context().run, one, b) for b in branches]:
            future.result()
    except BaseException:
        # SIGTERM or Ctrl-C (or a branch's error): not ``with``, whose exit waits for the
        # trainings under way, two whole local fits, before the stop is handled (a
        # service manager's SIGKILL came first and no ABORTED marker was written)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    local = scored({b.name: _scores(local_models[b.name], b.x_test) for b in branches}, branches)
    eps = [e for e in local_eps.values() if e is not None]
    # every test set pooled, each row scored by its own branch's model: the same measure
    # as the federated and centralized rows' (a per-branch mean was compared with pooled
    # figures before); one diverged branch model leaves the pooled ranking undefined
    settings["local-only"] = {
        **local,
        "epsilon": max(eps) if eps else None,
        "epsilon_unit": config.protected if eps else None,
        "bytes_sent_per_branch_per_round": 0,
        "seconds_per_round": None,
    }
    if local_parameters:  # in the branches' order, as every other per-branch figure
        settings["local-only"]["privacy_parameters"] = {
            b.name: local_parameters[b.name] for b in branches if b.name in local_parameters
        }
    with_prior_cost(config, settings["local-only"])  # each branch starts from the prior
    # centralized, non-private: the upper bound, with its own tuning (start, learning
    # rate, epochs chosen on the latest fifth of its rows by time, as its test is out
    # of time, or on held-out customers or rows: centralized_validation)
    progress("centralized", 0, 1, "")
    start = time.perf_counter()
    x = np.concatenate([b.x_train for b in branches])
    y = np.concatenate([b.y_train for b in branches])
    starts: dict[str, np.ndarray | None] = {"scratch": None}
    if prior is not None:
        starts["prior"] = prior
    customers = pooled_customers([b.customers_train for b in branches])
    days = [b.day_train for b in branches]
    fit = fit_tuned(
        config,
        x,
        y,
        starts,
        "centralized",
        customers=customers,
        validation=config.centralized_validation,
        days=None if any(d is None for d in days) else np.concatenate(days),
    )
    model = fit.model
    central = evaluate(model, branches)
    central.update(
        tuning=fit.choice(),
        epsilon=math.inf,
        epsilon_unit=None,
        bytes_sent_per_branch_per_round=None,
        seconds_per_round=None,
    )
    settings["centralized (non-private)"] = central
    progress("centralized", 1, 1, f"{time.perf_counter() - start:.1f}s")
    return settings
