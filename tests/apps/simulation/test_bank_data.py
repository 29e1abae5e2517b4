"""``secagg simulate`` on the data a bank feeds in: a label column that is inverted, a
file too large for memory, and the notes of a run reaching the multi-seed report too
(simulate data audit, 2026-12-04)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError, SecAggError

#: a small CSV federation: 3 branches, one round of one epoch
SMALL = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--batch-size", "64"]
SMALL += ["--dropout", "0", "--quiet"]


def _csv(path: Path, rows: int = 3000, fraud_rate: float = 0.05, seed: int = 1) -> Path:
    """``rows`` rows of four numeric features and a 0/1 ``fraud`` column at ``fraud_rate``
    (seeded: the file is test data, not a secret)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < fraud_rate).astype(int)
    x = rng.normal(size=(rows, 4)) + y[:, None]
    with open(path, "w") as fh:
        fh.write("a,b,c,d,fraud\n")
        for features, label in zip(x, y, strict=True):
            fh.write(",".join(f"{v:.4f}" for v in features) + f",{label}\n")
    return path


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _one_line_error(result: Result, status: int = 2) -> str:
    """The error a command printed, checked to be one line with no traceback."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal of the data comes before any baseline trains."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("training started: the refusal came too late")

    monkeypatch.setattr(runner, "_run_baselines", refuse)


# --- an inverted label column ---------------------------------------------------------


@pytest.mark.usefixtures("no_training")
def test_an_inverted_label_column_is_refused_naming_the_column_and_share(
    tmp_path: Path,
) -> None:
    """Before: a file whose ``fraud`` column was 1 for the legitimate rows (95 % of them)
    trained and printed AUPRC 0.98 / 0.89 / 0.99, the base rate of the majority class,
    as a fraud model's result."""
    path = _csv(tmp_path / "inverted.csv", fraud_rate=0.95)
    out = tmp_path / "run"
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", *SMALL, "--out", str(out)]
    error = _one_line_error(_simulate(*args))
    assert (
        "'fraud'" in error
        and "2844 of 3000 rows (94.8 %)" in error
        and "--max-fraud-share" in error
    )
    assert "inverted" in error
    assert not out.exists()  # no run folder is left for a refused file


@pytest.mark.usefixtures("no_training")
def test_the_refusal_names_the_key_of_a_config_file(tmp_path: Path) -> None:
    path = _csv(tmp_path / "common.csv", fraud_rate=0.45)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[data]\nsource = "csv"\npath = "{path}"\nlabel = "fraud"\nmax_fraud_share = 0.4\n'
    )
    error = _one_line_error(
        _simulate("--config", str(config), *SMALL, "--out", str(tmp_path / "r"))
    )
    assert "above data.max_fraud_share = 0.4" in error, error


def test_a_majority_fraud_file_runs_when_the_user_raises_the_share(tmp_path: Path) -> None:
    """An undersampled file (fraud really is 60 % of its rows) is legitimate: the flag
    lets it through, and the limit in force is what the run records."""
    path = _csv(tmp_path / "balanced.csv", rows=1200, fraud_rate=0.6)
    config = SimulationConfig(
        source="csv", path=str(path), label="fraud", branches=3, max_fraud_share=0.7
    )
    branches = runner.load_branches(config)
    rate = sum(int(b.y_train.sum()) + int(b.y_test.sum()) for b in branches) / 1200
    assert 0.55 < rate < 0.65
    with pytest.raises(ConfigurationError, match=r"above data.max_fraud_share = 0.5"):
        runner.load_branches(SimulationConfig(source="csv", path=str(path), label="fraud"))


def test_the_share_refused_is_the_rows_share_at_the_boundary(tmp_path: Path) -> None:
    """Exactly at the limit is accepted; one fraud row above it is refused, with the
    counts (a share rounded to the limit would read as no reason)."""
    path = tmp_path / "half.csv"
    rows = ["a,fraud"] + [f"{i % 7},{i % 2}" for i in range(400)]
    path.write_text("\n".join(rows) + "\n")
    config = SimulationConfig(source="csv", path=str(path), label="fraud", branches=2)
    assert len(runner.load_branches(config)) == 2  # 200 of 400: 50 %, not above
    path.write_text("\n".join([*rows, "3,1"]) + "\n")
    with pytest.raises(ConfigurationError, match=r"201 of 401 rows \(50\.1 %\)"):
        runner.load_branches(config)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0", r"--max-fraud-share must lie in \(0, 1\]"),
        ("1.5", r"--max-fraud-share must lie in \(0, 1\]"),
        ("nan", r"--max-fraud-share"),
    ],
)
def test_a_max_fraud_share_out_of_range_is_one_line(value: str, match: str) -> None:
    args = ["--data", "csv", "--path", "x.csv", "--label", "y", "--max-fraud-share", value]
    import re

    assert re.search(match, _one_line_error(_simulate(*args)))


def test_a_max_fraud_share_with_synthetic_data_is_refused() -> None:
    """Synthetic data brings its own labels: the key would do nothing, and be recorded."""
    error = _one_line_error(_simulate("--max-fraud-share", "0.9"))
    assert "--max-fraud-share" in error and "CSV" in error
