"""A client-level federation that released no round wrote its starting model as
model.npy and printed "ε = 0" for it, even when that model was a prior whose own
training had spent ε = 1.25 (report review, 2026-12-05). The figure is now the starting
model's cost (the prior's, composed), or, without a prior, "no ε" and why. And the
per-branch tables of report.md no longer print the starting model's scores as the
federation's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig

#: every round aborts: a branch in two drops out, and the threshold tolerates none
ABORTING = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
ABORTING += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0.49", "--seed", "0"]
ABORTING += ["--unit", "client", "--quiet"]

FEDERATED = "federated (secagg+)"


@pytest.fixture(scope="module")
def prior_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model vector of the right shape, as an earlier run's model.npy would be."""
    from secagg.dp.dpsgd import flat_parameters

    small = SimulationConfig(branches=3, train_rows=3000, test_rows_per_branch=400)
    branches, _ = runner.load_data(small)
    model = runner.starting_model(small, branches[0].x_train.shape[1], None)
    path = tmp_path_factory.mktemp("prior") / "model.npy"
    np.save(path, np.asarray(flat_parameters(model), dtype=np.float32), allow_pickle=False)
    return path


def _simulate(tmp_path: Path, *extra: str) -> tuple[Result, Path]:
    config = tmp_path / "c.toml"
    config.write_text("[simulation]\ntolerated_dropout = 0.0\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["simulate", "--config", str(config), *ABORTING, *extra, "--out", str(out)]
    )
    assert result.exit_code == 1, result.output  # no round completed
    assert "no federated round completed" in result.output
    return result, out


def _privacy_line(text: str) -> str:
    """The privacy line, whole (the console wraps it)."""
    flat = " ".join(text.split())
    start = flat.index("privacy: ")
    return flat[start : flat.index(" planned", start)]


@pytest.fixture(scope="module")
def from_prior(tmp_path_factory: pytest.TempPathFactory, prior_file: Path) -> tuple[Result, Path]:
    """A client-level run from a prior file (prior_epsilon 1.25) whose every round aborted."""
    tmp_path = tmp_path_factory.mktemp("from-prior")
    return _simulate(tmp_path, "--prior-path", str(prior_file), "--prior-epsilon", "1.25")


def test_a_prior_from_a_file_is_what_the_untrained_federations_model_costs(
    from_prior: tuple[Result, Path],
) -> None:
    result, out = from_prior
    summary = json.loads((out / "summary.json").read_text())
    fed = summary["settings"][FEDERATED]
    assert fed["untrained"] is True and fed["rounds_released"] == []
    # model.npy is the prior: its cost is the prior-only setting's, composed
    prior_only = summary["settings"]["prior only"]
    assert fed["epsilon"] == prior_only["epsilon"] == 1.25
    assert fed["delta"] == prior_only["delta"] and fed["prior_epsilon"] == 1.25
    row = next(r for r in summary["table"] if r["setting"] == FEDERATED)
    assert row["epsilon"] == 1.25
    report = (out / "report.md").read_text()
    for text in (result.stdout, report):
        line = _privacy_line(text)
        assert line.startswith("privacy: ε = 1.250 (client-level, δ = 2e-05 with the prior's")
        assert "no round released: the model is the prior, and this its cost" in line
        assert "ε = 0 " not in line
    assert "| federated (secagg+) | UNTRAINED |" in report
    assert "| 1.25 (client) |" in report.split("| federated (secagg+) |")[1].split("\n")[0]


def test_without_a_prior_the_untrained_federation_claims_no_epsilon_and_says_why(
    tmp_path: Path,
) -> None:
    result, out = _simulate(tmp_path, "--prior", "none")
    fed = json.loads((out / "summary.json").read_text())["settings"][FEDERATED]
    assert fed["epsilon"] is None  # the seeded initialisation saw no data
    for text in (result.stdout, (out / "report.md").read_text()):
        line = _privacy_line(text)
        assert line.startswith(
            "privacy: no ε (no round released: the model is the seeded initialisation, "
            "which saw no data)"
        )
        assert "ε = 0" not in line


def test_the_per_branch_tables_show_no_untrained_figure(from_prior: tuple[Result, Path]) -> None:
    _, out = from_prior
    report = (out / "report.md").read_text()
    per_branch = report.split("## Per branch")[1].split("\n\n")[1].splitlines()
    header, rows = per_branch[0].split(" | "), per_branch[2:]
    column = header.index(FEDERATED)
    assert rows and all(row.split(" | ")[column] == "UNTRAINED" for row in rows)
    # the verdicts: no "federated - local-only" difference of the starting model either
    verdicts = report.split("### Federated against local-only")[1].split("\n\n")[2]
    for row in verdicts.splitlines()[2:]:
        cells = row.split(" | ")
        assert cells[2:4] == ["-", "-"], row
        assert "not judged (the federated model is UNTRAINED)" in cells[4]
    summary = json.loads((out / "summary.json").read_text())
    assert all(b[f"auprc {FEDERATED}"] is None for b in summary["branches"])
    assert all(b["auprc prior only"] is not None for b in summary["branches"])


def test_an_aborted_rounds_row_shows_no_auprc_of_its_own(from_prior: tuple[Result, Path]) -> None:
    """The rounds table printed the AUPRC measured after an aborted round, the starting
    model's here, in the round's row as if the round had produced it."""
    _, out = from_prior
    rounds = (out / "report.md").read_text().split("## Rounds")[1]
    (row,) = [line for line in rounds.splitlines() if line.startswith("| 1 | aborted |")]
    assert row.split(" | ")[3] == "- (model unchanged)"
