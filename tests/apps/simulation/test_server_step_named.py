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


# --- FedAdam at FedAvg's default server learning rate -----------------------------------


@pytest.mark.usefixtures("nothing_runs")
def test_adam_at_fedavgs_default_rate_is_refused_naming_the_flag() -> None:
    """``--server-optimizer adam`` alone ran FedAdam at FedAvg's default rate, 2: every
    parameter moved by about 2 a round and the model was wrecked (pooled AUPRC 0.448
    for the prior, 0.004 federated after 5 rounds of the noise once), exit 0."""
    error = _refusal("--server-optimizer", "adam")
    assert error.startswith(
        "Error: --server-optimizer adam needs --server-learning-rate: FedAdam moves every "
        "parameter by about the server learning rate each round"
    ), error
    assert "the default, 2, is FedAvg's" in error


@pytest.mark.usefixtures("nothing_runs")
def test_adam_from_a_file_without_a_rate_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[training]\nserver_optimizer = "adam"\nserver_adam_tau = 0.01\n')
    error = _refusal("--config", str(path))
    assert error.startswith(
        f"Error: --config {path}: training.server_optimizer = 'adam' needs --server-learning-rate"
    ), error


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(min_value=1e-6, max_value=100.0),
    where=st.sampled_from(["flag", "file", "flag over file"]),
)
def test_adam_with_a_rate_given_anywhere_is_taken(rate: float, where: str) -> None:
    """A rate the user gave, typed or in the file (a run folder's config.toml always
    has one), is taken whatever it is, FedAvg's 2 included; so is a library caller's
    default."""
    import tempfile

    from secagg.apps.simulation.cli import build_config
    from secagg.apps.simulation.config import SimulationConfig

    flags: dict[str, object] = {"server_optimizer": "adam"}
    text = "[training]\n"
    if where != "file":
        flags["server_learning_rate"] = rate
    if where != "flag":
        text += f"server_learning_rate = {rate!r}\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_text(text + "local_epochs = 1\n")
        config = build_config(str(path), flags)
    assert config.server_optimizer == "adam" and config.server_learning_rate == rate
    library = SimulationConfig(server_optimizer="adam")
    assert library.server_learning_rate == SimulationConfig.server_learning_rate


def test_loading_a_file_with_adam_and_no_rate_is_refused_as_the_command_refuses(
    tmp_path: Path,
) -> None:
    """``SimulationConfig.load`` reads a file as ``secagg simulate --config`` does (its
    docstring; docs/scaling.md runs a file so): the command refused FedAdam at FedAvg's
    default rate and ``load`` ran it. Over a caller's ``base`` the rate is the caller's."""
    from secagg.apps.simulation.config import SimulationConfig
    from secagg.errors import ConfigurationError

    path = tmp_path / "c.toml"
    path.write_text('[training]\nserver_optimizer = "adam"\n')
    with pytest.raises(
        ConfigurationError,
        match=r"^training\.server_optimizer = 'adam' needs training\.server_learning_rate: ",
    ):
        SimulationConfig.load(path)
    base = SimulationConfig(server_learning_rate=0.05)
    assert SimulationConfig.load(path, base).server_learning_rate == 0.05
    path.write_text('[training]\nserver_optimizer = "adam"\nserver_learning_rate = 0.03\n')
    assert SimulationConfig.load(path).server_learning_rate == 0.03
