"""report.md's rounds table headed its ε column with a bare "ε": no unit, no δ, and not
whose (record level: the largest of the branches'), where the results table says
"(customer)" and the privacy line its δ (report review, 2026-12-05)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.report import rounds_epsilon_header


@pytest.mark.parametrize(
    ("changes", "header"),
    [
        ({}, "ε (customer-level, the largest branch's, δ = 1e-05)"),
        ({"unit": "client", "mechanism": "central"}, "ε (client-level, δ = 1e-05)"),
        ({"unit": "record", "mechanism": "distributed"}, "ε (customer-level, δ = 1e-05)"),
        ({"mechanism": "off", "epsilon": None}, "ε"),
    ],
)
def test_the_rounds_epsilon_column_names_its_unit_and_delta(
    changes: dict[str, object], header: str
) -> None:
    assert rounds_epsilon_header(SimulationConfig(**changes)) == header


def test_with_a_prior_the_column_says_it_holds_the_priors_and_the_composed_delta() -> None:
    config = SimulationConfig(prior_path="model.npy", prior_epsilon=1.25, prior_delta=2e-6)
    assert rounds_epsilon_header(config) == (
        "ε (customer-level, the largest branch's, with the prior's, δ = 1.2e-05)"
    )


def test_report_md_heads_its_rounds_table_with_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
    args += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]
    result = CliRunner().invoke(main, ["simulate", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rounds = (out / "report.md").read_text().split("## Rounds")[1]
    assert (
        "| round | status | dropped | AUPRC (pooled) | ε (customer-level, the largest "
        "branch's, δ = 1e-05) | s |" in rounds
    )
