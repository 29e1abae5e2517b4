"""``secagg simulate --data csv --label COL`` with a file lacking COL: one line that
names the flag, with a bounded list of the columns (front-door review, 2026-12-05: the
line did not name ``--label``, and a 10,000-column file printed a 200 KB line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fraud_csv import write_creditcard_layout
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.models.tabular import MissingLabelColumn, load_labelled_csv


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", "--quiet", *args])


def _one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_label_column_names_the_flag_and_the_nearest_column(tmp_path: Path) -> None:
    data = write_creditcard_layout(tmp_path / "cards.csv", rows=50)
    out = str(tmp_path / "run")
    args = ("--data", "csv", "--path", str(data), "--out", out)
    line = _one_line(_simulate(*args, "--label", "class"))
    assert "--label class:" in line
    assert f"{data} has no column 'class'" in line
    assert "its 31 columns: 'Time', 'V1'" in line and "more" in line
    assert "the nearest is 'Class'" in line
    assert not (tmp_path / "run").exists()  # bad input leaves no folder behind


def test_a_file_of_ten_thousand_columns_gives_a_short_line(tmp_path: Path) -> None:
    data = tmp_path / "wide.csv"
    header = [f"feature_with_a_long_name_{i:05d}" for i in range(10_000)]
    data.write_text(",".join([*header, "label"]) + "\n" + ",".join(["0"] * 10_001) + "\n")
    line = _one_line(
        _simulate(
            "--data", "csv", "--path", str(data), "--label", "fraud",
            "--out", str(tmp_path / "run"),
        )
    )  # fmt: skip
    assert "--label fraud:" in line and "its 10001 columns:" in line
    assert "and 9989 more" in line
    assert len(line) < 1_000, len(line)  # about 340,000 characters before


def test_a_label_from_the_config_file_is_named_by_its_key(tmp_path: Path) -> None:
    data = write_creditcard_layout(tmp_path / "cards.csv", rows=50)
    config = tmp_path / "sim.toml"
    config.write_text(f'[data]\nsource = "csv"\npath = "{data}"\nlabel = "fraud"\n')
    line = _one_line(_simulate("--config", str(config), "--out", str(tmp_path / "run")))
    assert "data.label = 'fraud':" in line and "has no column 'fraud'" in line


def test_the_loaders_own_error_is_typed_bounded_and_keeps_every_column(tmp_path: Path) -> None:
    """A library caller gets :class:`MissingLabelColumn` (the CLI reads its columns, not
    its text), whose message names 12 columns however wide the file."""
    data = tmp_path / "wide.csv"
    header = [f"feature_{i}" for i in range(10_000)]
    data.write_text(",".join(header) + "\n" + ",".join("0" for _ in header) + "\n")
    with pytest.raises(MissingLabelColumn) as caught:
        load_labelled_csv(data, "fraud")
    assert caught.value.columns == tuple(header) and caught.value.label == "fraud"
    message = str(caught.value)
    assert len(message) < 500 + len(str(data)) and "(10000 in all)" in message
