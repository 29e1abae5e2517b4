"""Under client-level DP the local-only row's ε reads "-" and nothing said why (report
review, 2026-12-05): a sentence beside the table, on the console and in report.md, says
that a local-only model is never released and so carries no client-level ε."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main

SHORT = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]

SAID = (
    "local-only: no ε (-): client-level DP protects a branch's whole contribution to a "
    "release; a local-only model is never released (each branch keeps its own, trained "
    "without noise), so it carries no client-level ε"
)


def _run(tmp_path: Path, *extra: str) -> tuple[str, str, dict]:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["simulate", *SHORT, *extra, "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    return " ".join(result.stdout.split()), (out / "report.md").read_text(), summary


def test_client_level_says_why_local_only_has_no_epsilon(tmp_path: Path) -> None:
    console, report, summary = _run(tmp_path, "--unit", "client")
    row = next(r for r in summary["table"] if r["setting"] == "local-only")
    assert row["epsilon"] is None  # the "-" the sentence explains
    assert SAID in console
    assert SAID in report
    # beside the table, before the privacy lines
    assert report.index("| local-only |") < report.index(SAID) < report.index("privacy: ")


@pytest.mark.parametrize("extra", [["--unit", "record"], ["--mechanism", "off"]])
def test_no_such_sentence_where_local_only_has_its_figure_or_none_is_claimed(
    tmp_path: Path, extra: list[str]
) -> None:
    console, report, _ = _run(tmp_path, *extra)
    assert "local-only: no ε" not in console and "local-only: no ε" not in report
