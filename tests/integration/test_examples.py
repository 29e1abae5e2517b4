"""The examples in examples/ run and say what they promise."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_drive_a_round_example_sums_exactly(capsys):
    runpy.run_path(str(EXAMPLES / "drive_a_round.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "waiting for [5]" in out
    assert "exact: True" in out
