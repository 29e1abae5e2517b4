"""Where ``secagg simulate`` names the federation server's step (second review of
FedAdam in the simulator, 2026-12-07).

Why: report.md and an experiment's title name FedAdam, but the table a single run
prints on the terminal did not: a FedAdam run and its FedAvg control printed the same
title, "3 branches, 2 rounds, plain, no DP", the very confusion the
experiment's title was changed for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main

#: a small run without DP on the plain backend: seconds
SHORT = ["--branches", "3", "--rounds", "2", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]
SHORT += ["--mechanism", "off", "--backend", "plain", "--model", "logistic"]


def _printed(*args: str) -> str:
    """What the run printed, its whitespace (the table title's wrapping) collapsed."""
    result = CliRunner().invoke(main, ["simulate", *SHORT, *args])
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


@pytest.mark.parametrize("tau", ["0.01", "1"])
def test_a_single_runs_table_title_names_fedadam(tmp_path: Path, tau: str) -> None:
    printed = _printed(
        "--server-optimizer",
        "adam",
        "--server-learning-rate",
        "0.05",
        "--server-adam-tau",
        tau,
        "--out",
        str(tmp_path / "adam"),
    )
    title = "3 branches, 2 rounds, plain, no DP, server step FedAdam (server "
    assert title + f"learning rate 0.05, tau {tau}, betas 0.9 / 0.99)" in printed, printed


def test_a_fedavg_runs_title_is_as_before(tmp_path: Path) -> None:
    """FedAvg, the default, is named nowhere in the title, as before (and as an
    experiment's title): only FedAdam's runs changed."""
    printed = _printed("--out", str(tmp_path / "sgd"))
    assert "3 branches, 2 rounds, plain, no DP " in printed, printed
    assert "server step" not in printed
