"""``secagg simulate`` with odd but valid inputs (two branches, few rows, the hard
world, two seeds): each runs to its table and says what it found in plain lines, never
in Python's own forms (simulate audit, 2026-12-05)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

#: two branches, a few hundred rows: the smallest federation simulate accepts
TINY = ["--branches", "2", "--rounds", "1", "--local-epochs", "1", "--batch-size", "64"]
TINY += ["--train-rows", "300", "--test-rows", "100", "--dropout", "0", "--quiet"]


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in its own process: Python's warning filters and ``showwarning`` as
    a user's shell has them (pytest records warnings in-process instead)."""
    return subprocess.run(
        [sys.executable, "-m", "secagg.apps.cli", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_privacy_cost_warning_is_one_line_not_pythons_form(tmp_path: Path) -> None:
    """``--branches 2 --unit client`` warned in Python's form: the path of
    secagg/dp/config.py with its line number, and under it the line of code that
    warned (``  return DPConfig(``), which reads as a traceback above the table."""
    out = tmp_path / "run"
    # no public prior to fit, no hidden layer: the warning is the client-level DP
    # configuration's, of 2 branches, whatever model trains (the fit was most of the run)
    small = [*TINY, "--prior", "none", "--model", "logistic"]
    done = _simulate(*small, "--unit", "client", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "warning: PrivacyCostWarning: client-level DP with 2 expected clients per round: "
    ), lines
    assert ".py:" not in done.stderr and "return DPConfig(" not in done.stderr, lines
    assert "2 branches, 1 round" in done.stdout and (out / "report.md").is_file()


def test_the_largest_seed_with_several_seeds_is_said_as_a_number(tmp_path: Path) -> None:
    """``--seeds 2 --seed 4294967295`` said "--seed must be at most 4294967295 -
    (--seeds - 1)", leaving the subtraction to the reader; the bound is the number."""
    from click.testing import CliRunner

    from secagg.apps.cli import main

    out = str(tmp_path / "run")
    result = CliRunner().invoke(
        main, ["simulate", "--seed", "4294967295", "--seeds", "2", "--out", out]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.strip() == (
        "Error: --seed must be at most 4294967294 with --seeds 2 (its last seed, --seed + "
        "--seeds - 1, at most 4294967295: the largest seed the data, training and noise "
        "generators take)"
    )
    one = CliRunner().invoke(main, ["simulate", "--seed", "4294967296", "--out", out])
    assert one.stderr.strip() == (
        "Error: --seed must be at most 4294967295 (the largest seed the data, training and "
        "noise generators take)"
    )
