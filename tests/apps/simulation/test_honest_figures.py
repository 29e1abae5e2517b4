"""``secagg simulate``'s figures, read by a sceptical auditor: every ε shown is at least
the ε its run folder records (rounded up), every noise figure at most the noise added
(rounded down), and every sentence about the run says what happened (hostile review of
the report, 2026-12-05)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation.config import SimulationConfig

#: two branches, a few hundred rows: the smallest federation simulate accepts
TINY = ["--branches", "2", "--rounds", "1", "--local-epochs", "1", "--batch-size", "64"]
TINY += ["--train-rows", "300", "--test-rows", "100", "--dropout", "0", "--quiet"]


def _table_epsilons(output: str) -> dict[str, str]:
    """setting -> the ε cell of the console table (its first line: the unit wraps)."""
    cells = {}
    for line in output.splitlines():
        parts = [part.strip() for part in line.split("│")]
        if len(parts) > 8 and parts[1] and not parts[1].startswith("setting"):
            cells[parts[1]] = parts[7]
    return cells


def test_the_console_table_never_shows_an_epsilon_below_the_one_spent(tmp_path: Path) -> None:
    """The console table rounded ε to the nearest: the default run printed "2.99" for
    the 2.9947 its report.md shows as 3.00, and "0.62" for the feature statistics'
    0.6200045 (report.md: 0.621), below what was spent."""
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["simulate", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "summary.json").read_text())["table"]
    cells = _table_epsilons(result.output)
    assert set(cells) == {row["setting"] for row in table}, cells
    for row in table:
        cell = cells[row["setting"]]
        if row["epsilon"] == "inf":
            assert cell == "∞"
            continue
        assert float(cell) >= row["epsilon"], (row["setting"], cell, row["epsilon"])
        assert float(cell) - row["epsilon"] < 0.01


def _client_level_report(tmp_path: Path, server: dict[str, Any], **changes: Any) -> str:
    """report.md of a client-level run whose server recorded ``server``."""
    from secagg.apps.simulation.report import write_run_folder
    from secagg.apps.simulation.runner import SimulationResult

    names = ("branch-01", "branch-02", "branch-03")
    metrics = {"auprc": 0.5, "roc_auc": 0.9}
    config = SimulationConfig(
        branches=3, rounds=1, train_rows=600, unit="client", mechanism="central", **changes
    )

    def setting(epsilon: float | None) -> dict[str, Any]:
        return {
            "pooled": metrics,
            "branches": dict.fromkeys(names, metrics),
            "mean_branch_auprc": 0.5,
            "epsilon": epsilon,
            "epsilon_unit": "branch" if epsilon is not None else None,
            "bytes_sent_per_branch_per_round": 0,
            "seconds_per_round": None,
        }

    fed = setting(2.9999)
    fed.update(rounds_completed=1, rounds_aborted=0, rounds_released=[1])
    result = SimulationResult(
        config=config,
        branches=[
            {"name": n, "train_rows": 200, "train_frauds": 4, "test_rows": 100, "test_frauds": 2}
            for n in names
        ],
        rounds=[
            {
                "round": 1,
                "status": "complete",
                "reason": None,
                "contributed": list(names),
                "dropped": [],
                "seconds": 1.0,
                "pooled": metrics,
                "mean_branch_auprc": 0.5,
                "branch_auprc": dict.fromkeys(names, 0.5),
                "branches": dict.fromkeys(names, metrics),
                "epsilon_client_level": 2.9999,
                "epsilon_record_level": {},
                "epsilon": 2.9999,
                "epsilon_this_run": 2.9999,
                "bytes_sent": dict.fromkeys(names, 100),
                "bytes_received": dict.fromkeys(names, 100),
            }
        ],
        settings={
            "local-only": setting(None),
            "federated (secagg+)": fed,
            "centralized (non-private)": setting(float("inf")),
        },
        feature_statistics={"source": "public", "origin": "reference sample"},
        privacy={"mechanism": server["mechanism"], "server": server},
    )
    write_run_folder(result, tmp_path / "run")
    return (tmp_path / "run" / "report.md").read_text()


def test_the_client_level_table_rounds_noise_down_and_costs_up(tmp_path: Path) -> None:
    """The client-level table printed z to the nearest ("1.967" for the 1.9666 that
    ``--unit client --branches 4 --rounds 2`` ran: more noise than was added) and the
    clip, δ and budget in ``g`` style (a clip of 1.0000011 read "1", below it), where the
    record-level tables round each toward the safe side."""
    server = {
        "mechanism": "central",
        "noise_multiplier": 1.966612413102887,
        "clip": 1.0000011,
        "delta": 1.0000001e-5,
        "accountant": "pld",
        "sample_rate": 1.0,
        "expected_clients": 3.0,
        "epsilon_budget": 3.0000004,
    }
    report = _client_level_report(tmp_path, server)
    row = next(line for line in report.splitlines() if line.startswith("| central |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "1.966"  # z, down
    assert cells[2] == "1.00001"  # clip C, up
    assert cells[4] == "1.00001e-05"  # δ, up
    assert cells[-1] == "ε ≤ 3.00001"  # the budget, up


def test_a_run_without_a_target_states_its_noise_multiplier_rounded_down(
    tmp_path: Path,
) -> None:
    """``--noise-multiplier 1.2345678`` was said "z = 1.23457" in report.md's first line
    and "noise multiplier 1.23457, no target" on the privacy line: more than ran."""
    noise = 1.2345678
    server = {
        "mechanism": "central",
        "noise_multiplier": noise,
        "clip": 1.0,
        "delta": 1e-5,
        "accountant": "pld",
        "sample_rate": 1.0,
        "expected_clients": 3.0,
        "epsilon_budget": None,
    }
    report = _client_level_report(tmp_path, server, epsilon=None, noise_multiplier=noise)
    assert "z = 1.23456," in report.splitlines()[2]
    assert "1.23457" not in report
    assert "noise multiplier 1.23456, no target" in report


def _seed_settings(*, local_diverged: bool = False) -> dict[str, dict[str, Any]]:
    """One seed's settings as a run holds them: a table without fraud amounts (NaN),
    the federation's last rounds and a baseline without rounds."""
    nan = float("nan")

    def setting(auprc: float, **extra: Any) -> dict[str, Any]:
        pooled = {"auprc": auprc, "roc_auc": 0.9, "fraud_amount_caught_at_top_05pct": nan}
        return {"pooled": pooled, "mean_branch_auprc": auprc, **extra}

    return {
        "local-only": setting(nan if local_diverged else 0.4, diverged=local_diverged),
        "federated (secagg+)": setting(
            0.5, last_rounds={"rounds": [1], "auprc": 0.5, "mean_branch_auprc": 0.5}
        ),
        "centralized (non-private)": setting(0.6),
    }


def test_an_experiment_counts_as_diverged_only_the_models_that_diverged() -> None:
    """experiment.json said every seed of local-only, centralized and prior only had
    diverged in the "AUPRC, last rounds" column (a baseline has no rounds), and every
    seed of every setting in the fraud-amount column of a table without amounts: each
    figure a setting does not have was counted as a diverged model."""
    from types import SimpleNamespace

    from secagg.apps.simulation.experiment import ExperimentResult, headline_values

    experiment = ExperimentResult(config=SimulationConfig(), seeds=[0, 1, 2])
    for seed in experiment.seeds:
        run = SimpleNamespace(settings=_seed_settings(local_diverged=seed == 2))
        experiment.per_seed[seed] = headline_values(run)  # type: ignore[arg-type]
    summary = experiment.summary()
    for setting in ("local-only", "centralized (non-private)"):
        assert "last_rounds_auprc" not in summary[setting]
    assert summary["federated (secagg+)"]["last_rounds_auprc"].n == 3
    for setting in ("federated (secagg+)", "centralized (non-private)"):
        assert "fraud_amount_caught_at_top_05pct" not in summary[setting], setting
    # the diverged local-only model has no figure in any column: that seed alone counts
    amount = summary["local-only"]["fraud_amount_caught_at_top_05pct"]
    assert (amount.n, amount.diverged) == (0, 1)
    # a model that did diverge is still counted, never averaged away
    local = summary["local-only"]["auprc"]
    assert (local.n, local.diverged, local.mean) == (2, 1, pytest.approx(0.4))
    assert summary["centralized (non-private)"]["auprc"].diverged == 0


def test_a_branch_mean_with_a_diverged_branch_model_reads_diverged() -> None:
    """``--mechanism off --learning-rate 100 --server-learning-rate 100 --prior none``:
    branch-01's local-only model diverged, and the local-only row read "diverged" in
    every pooled column but 0.006 under "mean of branch AUPRCs": the mean of the other
    two branches, as if it were all three's."""
    from types import SimpleNamespace

    import numpy as np

    from secagg.apps.simulation.report import metric_cell
    from secagg.apps.simulation.runner import scored

    labels = np.array([0, 0, 1, 0, 1, 0, 0, 1], dtype=np.float32)
    branches = [
        SimpleNamespace(name=name, y_test=labels, amount_test=None)
        for name in ("branch-01", "branch-02", "branch-03")
    ]
    finite = np.linspace(0.1, 0.9, labels.size)
    local = scored(
        {
            "branch-01": np.full(labels.size, np.nan),
            "branch-02": finite,
            "branch-03": finite[::-1].copy(),
        },
        branches,  # type: ignore[arg-type]
    )
    assert local["diverged"]
    row = {"mean_branch_auprc": local["mean_branch_auprc"], "diverged": local["diverged"]}
    assert metric_cell(row, "mean_branch_auprc") == "diverged"
    # without a diverged model the mean is the plain mean of the branches' own AUPRCs
    healthy = scored({"branch-01": finite, "branch-02": finite, "branch-03": finite}, branches)  # type: ignore[arg-type]
    assert healthy["mean_branch_auprc"] == pytest.approx(healthy["branches"]["branch-01"]["auprc"])


@pytest.mark.parametrize(("branches", "dropout"), [(3, 0.05), (2, 0.05), (3, 0.3), (2, 0.001)])
def test_the_whole_cohort_note_s_up_to_is_not_below_the_chance(
    branches: int, dropout: float
) -> None:
    """ "up to 14 % of rounds abort" for 3 branches at --dropout 0.05, whose chance is
    1 - 0.95 ** 3 = 14.26 %: an upper bound shown below the figure it bounds."""
    import re

    from secagg.apps.simulation.runner import whole_cohort_notes

    config = SimulationConfig(branches=branches, dropout=dropout)
    (note,) = whole_cohort_notes(config, [{"status": "complete"}])
    shown = float(re.search(r"up to ([0-9.]+) % of rounds abort", note).group(1))  # type: ignore[union-attr]
    chance = 100 * (1 - (1 - dropout) ** branches)
    assert chance <= shown < chance + 0.1


def test_the_ratio_of_means_names_the_seeds_it_is_over() -> None:
    """With seed 1's federation diverged, "Federated / centralized AUPRC (means): 0.710"
    was the ratio over seeds 0 and 2, while the table above it gives centralized's mean
    over all three (0.550 / 0.750 = 0.733): a reader dividing the table's means could
    not find the headline's figure."""
    import math

    from secagg.apps.simulation.experiment import ExperimentResult, experiment_lines

    result = ExperimentResult(config=SimulationConfig(seeds=3), seeds=[0, 1, 2])
    fed, central = "federated (secagg+)", "centralized (non-private)"
    for seed, (f, c) in {0: (0.5, 0.8), 1: (math.nan, 0.7), 2: (0.6, 0.75)}.items():
        result.per_seed[seed] = {fed: {"auprc": f}, central: {"auprc": c}}
        result.ratios[seed] = f / c
        result.verdicts[seed] = {}
        result.seconds[seed] = 1.0
    line = next(x for x in experiment_lines(result) if "(means)" in x)
    assert "**0.710**" in line
    assert "over seeds 0, 2, the seeds where both have a figure" in line
    # every seed with both figures: nothing to add
    result.per_seed[1][fed]["auprc"] = 0.55
    result.ratios[1] = 0.55 / 0.7
    line = next(x for x in experiment_lines(result) if "(means)" in x)
    assert "the seeds where both" not in line
