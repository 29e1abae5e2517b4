"""An auditor re-checks the local-only row's ε from the parameters the run folder keeps.

The table, report.md and summary.json print a local-only ε (each branch training
alone), but no parameter it follows from was kept anywhere: ``privacy_parameters``
held the federation's alone. Under record-level distributed DP the local-only models
are another mechanism altogether (each branch adds the whole Gaussian noise to its own
full-batch gradient descent, calibrated by another accountant: ε 3.000 beside the
federation's 2.980), so nothing in the folder let that figure be recomputed (hostile
review of the simulator's numbers, 2026-12-06). Each branch's local-only parameters now
sit in the local-only setting (summary.json) and in report.md's privacy section, and the
ε recomputed from them is the one printed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import BranchTrainer
from secagg.apps.simulation.config import SimulationConfig

BASE = {"branches": 2, "rounds": 3, "local_epochs": 1, "model": "logistic", "batch_size": 16}


def _branch(name: str = "branch-01", rows: int = 60) -> BranchData:
    """``rows`` rows of 20 cards (3 rows each), a fifth of them fraud."""
    grid = np.linspace(-1.0, 1.0, rows * 4, dtype=np.float32).reshape(rows, 4)
    labels = (np.arange(rows) % 5 == 0).astype(np.float32)
    cards = np.arange(rows) // 3
    return BranchData(name, grid, labels, grid, labels, 0.2, customers_train=cards)


def _trained(config: SimulationConfig, branch: BranchData) -> BranchTrainer:
    trainer = BranchTrainer(config, branch, "local")
    trainer.train(config.epochs)
    return trainer


@pytest.mark.parametrize("target", [{"epsilon": 3.0}, {"noise_multiplier": 1.7, "epsilon": None}])
def test_record_distributed_local_only_epsilon_recomputes_from_its_parameters(
    target: dict,
) -> None:
    from secagg.apps.simulation.privacy import local_only_parameters
    from secagg.dp.accounting import epsilon

    config = SimulationConfig(**BASE, unit="record", mechanism="distributed", **target)
    branch = _branch()
    trainer = _trained(config, branch)
    params = local_only_parameters(config, trainer, branch)
    assert params["mechanism"] == "gaussian"
    assert params["units"] == 20  # the branch's cards: its own denominator
    assert params["sensitivity"] == pytest.approx(config.dp_clip / 20)
    assert params["sample_rate"] == 1.0
    assert params["steps"] == config.rounds
    assert params["delta"] == config.delta
    if config.noise_multiplier is not None:
        assert params["noise_multiplier"] == config.noise_multiplier
    recomputed = epsilon(params["noise_multiplier"], 1.0, params["steps"], params["delta"])
    assert recomputed == params["epsilon"] == trainer.epsilon()


def test_dpsgd_local_only_epsilon_recomputes_from_its_history() -> None:
    from secagg.apps.simulation.privacy import local_only_parameters
    from secagg.dp.accountants import opacus_epsilon

    config = SimulationConfig(**BASE, unit="record", mechanism="dpsgd", epsilon=3.0)
    branch = _branch()
    trainer = _trained(config, branch)
    params = local_only_parameters(config, trainer, branch)
    assert params["mechanism"] == "dpsgd"
    runs = [tuple(run) for run in params["prior_releases"] + params["dpsgd"]]
    assert trainer.dpsgd is not None
    # every step the local-only fit took: its epochs of int(1 / q) Poisson batches each
    assert sum(int(steps) for _, _, steps in params["dpsgd"]) == (
        config.epochs * trainer.dpsgd.steps_per_epoch
    )
    recomputed = opacus_epsilon(params["accountant"], runs, params["delta"])
    assert math.isclose(recomputed, params["epsilon"], rel_tol=1e-9)
    assert params["epsilon"] == trainer.epsilon()


def test_no_local_only_parameters_where_local_only_claims_no_epsilon() -> None:
    from secagg.apps.simulation.privacy import local_only_parameters

    branch = _branch()
    for changes in ({"unit": "client", "mechanism": "central"}, {"mechanism": "off"}):
        config = SimulationConfig(**{**BASE, **changes})
        assert local_only_parameters(config, _trained(config, branch), branch) is None


def test_the_baselines_keep_them_and_the_report_prints_them() -> None:
    from secagg.apps.simulation.baselines import _run_baselines
    from secagg.apps.simulation.progress import _quiet
    from secagg.apps.simulation.report import _privacy_section, fmt_epsilon
    from secagg.apps.simulation.runner import SimulationResult

    config = SimulationConfig(
        **BASE, unit="record", mechanism="distributed", epsilon=3.0, standardize="none"
    )
    branches = [_branch("branch-01"), _branch("branch-02", rows=90)]
    settings = _run_baselines(config, branches, _quiet)
    local = settings["local-only"]
    kept = local["privacy_parameters"]
    assert sorted(kept) == ["branch-01", "branch-02"]
    assert [kept[b]["units"] for b in sorted(kept)] == [20, 30]
    assert local["epsilon"] == max(p["epsilon"] for p in kept.values())
    result = SimulationResult(config=config, branches=[], settings=settings, privacy={})
    text = "\n".join(_privacy_section(result))
    assert "Local-only" in text
    for name, p in kept.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} | gaussian"))
        assert f"| {fmt_epsilon(p['epsilon'], 3)} |" in row
        assert f"| {p['units']} |" in row


def test_many_branches_list_the_first_and_point_to_summary_json() -> None:
    from secagg.apps.simulation.report import MANY_BRANCHES, _local_only_rows
    from secagg.apps.simulation.runner import SimulationResult

    config = SimulationConfig(**BASE, unit="record", mechanism="distributed", epsilon=3.0)
    entry = {
        "mechanism": "gaussian",
        "unit": "customer",
        "units": 40,
        "max_rows": 8,
        "clip": 10.0,
        "sensitivity": 0.25,
        "noise_multiplier": 1.9666,
        "sample_rate": 1.0,
        "steps": 3,
        "delta": 1e-5,
        "accountant": "pld",
        "epsilon": 2.99997,
    }
    names = [f"branch-{b:02d}" for b in range(1, MANY_BRANCHES + 6)]
    local = {"privacy_parameters": {name: dict(entry) for name in names}}
    result = SimulationResult(config=config, branches=[], settings={"local-only": local})
    lines = _local_only_rows(result)
    rows = [line for line in lines if line.startswith("| branch-")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {n}" for n in names[:MANY_BRANCHES]]
    # z rounded down, ε and the sensitivity up: never shown on the flattering side
    assert "| 1.966 |" in rows[0] and "| 0.25 |" in rows[0] and "| 3.000 |" in rows[0]
    assert f"The first {MANY_BRANCHES} of {len(names)} branches" in lines[-1]
