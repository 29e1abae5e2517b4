"""experiment.md's "ε per run" line is the federation's ε; local-only's models may have
spent another (record-level distributed DP: each branch adds all the noise alone,
calibrated by another accountant). Where they differ, each setting's own is printed
(hostile review of the simulator's numbers, 2026-12-06)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from secagg.apps.simulation import report
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.experiment import (
    ExperimentResult,
    _record_seed,
    experiment_lines,
    write_experiment,
)


def _setting(epsilon: float | None) -> dict[str, Any]:
    return {"pooled": {"auprc": 0.5}, "diverged": False, "epsilon": epsilon}


def _experiment(
    monkeypatch: pytest.MonkeyPatch, local: dict[int, float | None], federated: float
) -> ExperimentResult:
    """Seeds whose local-only ε is ``local[seed]`` and federated ε ``federated``, as
    the seeds' runs record them (``run.settings``)."""
    monkeypatch.setattr(report, "divergence_lines", lambda run: [])
    monkeypatch.setattr(report, "privacy_lines", lambda run: [""])
    config = SimulationConfig(seeds=len(local), unit="record", mechanism="distributed")
    result = ExperimentResult(config=config, seeds=sorted(local))
    for seed, local_epsilon in local.items():
        settings = {
            "prior only": _setting(0.0),
            "local-only": _setting(local_epsilon),
            "federated (secagg+)": _setting(federated),
            "centralized (non-private)": _setting(math.inf),
        }
        run = SimpleNamespace(settings=settings, branch_verdicts={}, seconds=1.0, notes=[])
        _record_seed(result, seed, run)  # type: ignore[arg-type]
    return result


def test_local_only_epsilon_that_differs_is_printed_beside_the_federations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the figures of `secagg simulate --unit record --mechanism distributed --seeds 2`
    # (4 branches, 2 rounds): federated 2.97977, local-only 2.99997 in every seed
    result = _experiment(monkeypatch, {0: 2.9999718, 1: 2.9999718}, federated=2.9797748)
    lines = experiment_lines(result)
    assert "- ε per run: at most 2.980 (δ = 1e-05, customer-level); within the target ε = 3" in (
        lines
    )
    assert (
        "- ε per setting (each setting's own models, the most over seeds): prior only 0.000, "
        "local-only 3.000, federated (secagg+) 2.980; local-only's differs from the "
        "federation's above"
    ) in lines
    write_experiment(result, tmp_path)
    payload = json.loads((tmp_path / "experiment.json").read_text())
    assert payload["setting_epsilons"]["0"]["local-only"] == pytest.approx(2.9999718)
    assert "centralized (non-private)" not in payload["setting_epsilons"]["0"]


def test_the_most_over_seeds_is_each_settings_own_rounded_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _experiment(monkeypatch, {0: 1.2341, 1: 2.5001}, federated=2.0)
    line = next(x for x in experiment_lines(result) if x.startswith("- ε per setting"))
    assert "local-only 2.501, federated (secagg+) 2.000" in line


@pytest.mark.parametrize("local", [2.9965185, None])
def test_no_such_line_when_local_only_agrees_or_claims_none(
    monkeypatch: pytest.MonkeyPatch, local: float | None
) -> None:
    # DP-SGD with a target: both settings calibrate the same steps (2.997 each); client
    # level: local-only claims no ε
    result = _experiment(monkeypatch, {0: local, 1: local}, federated=2.9965185)
    assert not any(x.startswith("- ε per setting") for x in experiment_lines(result))
