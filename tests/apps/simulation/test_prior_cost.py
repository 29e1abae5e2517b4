"""A prior from a file costs what its own training spent (DP honesty audit): with DP it
must be declared (``prior_epsilon``), and every epsilon of a setting that starts from it
(prior only, local-only, federated) is the prior's and this run's composed (basic
composition: epsilons add, deltas add); ``prior_epsilon = 0`` leaves today's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.report import write_run_folder

#: the smallest federation that still has fraud in every branch (the generator's floor)
SMALL = SimulationConfig(
    branches=3,
    rounds=2,
    local_epochs=1,
    train_rows=3000,
    test_rows_per_branch=400,
    batch_size=64,
    dropout=0.0,
)
SHORT = ["--branches", "3", "--rounds", "2", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]

#: the settings that start from the prior (the centralized baseline does not claim one)
FROM_PRIOR = ("prior only", "local-only", "federated (secagg+)")


@pytest.fixture(scope="module")
def prior_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model vector of the right shape, as an earlier run's model.npy would be (the
    seeded initialisation: what it scores does not matter here, what it cost does)."""
    from secagg.dp.dpsgd import flat_parameters

    branches, _ = runner.load_data(SMALL)
    model = runner.starting_model(SMALL, branches[0].x_train.shape[1], None)
    path = tmp_path_factory.mktemp("prior") / "model.npy"
    np.save(path, np.asarray(flat_parameters(model), dtype=np.float32), allow_pickle=False)
    return path


def _error_line(output: str) -> str:
    """The one line of a usage error (click prints usage, a hint, then ``Error: ...``)."""
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize("via", ["flag", "file"])
def test_a_private_run_from_a_prior_file_must_say_what_the_prior_spent(
    tmp_path: Path, prior_file: Path, via: str
) -> None:
    out = tmp_path / "run"
    if via == "flag":
        args = [*SHORT, "--prior-path", str(prior_file)]
        named = "--prior-path"
    else:
        config = tmp_path / "run.toml"
        config.write_text(f'[training]\nprior_path = "{prior_file}"\n')
        args = [*SHORT, "--config", str(config)]
        named = "training.prior_path"
    result = CliRunner().invoke(main, ["simulate", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = _error_line(result.output)
    assert named in line and "--prior-epsilon" in line
    assert "0 if it saw none of their data" in line
    assert not out.exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # a run without DP claims no epsilon: a prior's would be silently ignored
        (
            ["--mechanism", "off", "--prior-path", "PRIOR", "--prior-epsilon", "1"],
            "read only with a DP mechanism",
        ),
        # the public prior costs nothing but the statistics' release, accounted already
        (["--prior", "public", "--prior-epsilon", "1"], "costs no privacy"),
    ],
)
def test_a_prior_epsilon_with_nothing_to_charge_it_to_is_refused(
    tmp_path: Path, prior_file: Path, args: list[str], said: str
) -> None:
    args = [str(prior_file) if a == "PRIOR" else a for a in args]
    result = CliRunner().invoke(main, ["simulate", *SHORT, *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    line = _error_line(result.output)
    assert "--prior-epsilon" in line and said in line


def test_every_epsilon_from_the_prior_composes_its_cost_with_this_runs(
    tmp_path: Path, prior_file: Path
) -> None:
    out = tmp_path / "run"
    args = [*SHORT, "--prior-path", str(prior_file), "--prior-epsilon", "1.25"]
    result = CliRunner().invoke(
        main, ["simulate", *args, "--prior-delta", "2e-6", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    settings = summary["settings"]
    for name in FROM_PRIOR:
        s = settings[name]
        assert s["epsilon_this_run"] is not None
        assert s["epsilon"] == s["epsilon_this_run"] + 1.25  # basic composition, exactly
        assert s["delta"] == 1e-5 + 2e-6 and s["delta_this_run"] == 1e-5
        assert (s["prior_epsilon"], s["prior_delta"]) == (1.25, 2e-6)
    # this run's own epsilon is what its accountants (and its ledger) hold
    rounds = json.loads((out / "rounds.json").read_text())
    fed = settings["federated (secagg+)"]
    assert fed["epsilon_this_run"] == max(rounds[-1]["epsilon_record_level"].values())
    stats_alone = summary["feature_statistics"]["epsilon_alone"]
    assert stats_alone > 0 and settings["prior only"]["epsilon_this_run"] == stats_alone
    for r in rounds:
        assert r["epsilon"] == r["epsilon_this_run"] + 1.25
    table = {row["setting"]: row for row in summary["table"]}
    for name in FROM_PRIOR:
        assert table[name]["epsilon"] == settings[name]["epsilon"]
    assert "epsilon_this_run" not in settings["centralized (non-private)"]
    # the target is held to the composed epsilon: this run alone spent about 3 of it
    assert fed["epsilon_this_run"] <= 3.0 < fed["epsilon"]
    assert fed["above_target"] is True
    composed = f"ε = {fed['epsilon']:.3f}"
    report = (out / "report.md").read_text()
    for text in (result.output, report, " ".join(summary["privacy"])):
        assert composed in text and "ABOVE THE TARGET" in text
        assert "basic composition" in text
        assert "outside this run's ledger" in " ".join(text.split())  # the console wraps
    assert f"this run alone: ε = {fed['epsilon_this_run']:.3f}" in report
    # the replayable config keeps the prior's cost
    assert "prior_epsilon = 1.25" in (out / "config.toml").read_text()


def test_a_prior_that_saw_none_of_these_customers_keeps_todays_figures(
    tmp_path: Path, prior_file: Path
) -> None:
    config = SMALL.with_changes(prior_path=str(prior_file), prior_epsilon=0.0)
    assert config.prior_cost == (0.0, 0.0)  # no data seen: no delta either
    result = runner.run_simulation(config, tmp_path / "run")
    write_run_folder(result, tmp_path / "run")
    settings = result.settings
    fed = settings["federated (secagg+)"]
    # the figures of the run without a prior cost: this run's accountants' alone
    assert fed["epsilon"] == max(result.rounds[-1]["epsilon_record_level"].values())
    assert fed["epsilon"] == fed["epsilon_this_run"] <= 3.0
    assert not fed["above_target"]
    assert settings["prior only"]["epsilon"] == result.feature_statistics["epsilon_alone"]
    for name in FROM_PRIOR:
        assert settings[name]["epsilon"] == settings[name]["epsilon_this_run"]
        assert settings[name]["delta"] == config.delta
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"ε = {fed['epsilon']:.3f} (customer-level, δ = 1e-05" in report
    assert "within the target ε = 3" in report
