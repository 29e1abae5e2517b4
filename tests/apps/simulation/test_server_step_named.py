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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.runtime.config import MIN_SERVER_ADAM_TAU

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


def _refusal(*args: str) -> str:
    """The one line ``secagg simulate`` refused ``args`` with (exit 2)."""
    result = CliRunner().invoke(main, ["simulate", *args, "--quiet"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.usefixtures("nothing_runs")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tau=st.floats(min_value=0.0, max_value=MIN_SERVER_ADAM_TAU, exclude_min=True, exclude_max=True)
)
def test_a_tau_below_the_floor_names_only_what_the_user_set(tau: float) -> None:
    """The floor's refusal named the runtime's ``federation.server_adam_tau`` after the
    flag typed: a key of a file ``secagg simulate`` does not read, which the user cannot
    set here (the simulator names what the user can fix; the runtime's own message
    names its key)."""
    error = _refusal("--server-optimizer", "adam", "--server-adam-tau", repr(tau))
    assert error.startswith(f"Error: --server-adam-tau must be at least {MIN_SERVER_ADAM_TAU:g}")
    assert "federation." not in error, error
