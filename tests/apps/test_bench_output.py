"""``secagg bench ... --out FILE``: the JSON goes to FILE, one line on stdout says where.

Review (2026-12-05): with ``--out`` the commands printed the whole JSON (hundreds of
lines for a grid) on the terminal as well as writing it to the file. Without
``--out`` the JSON is still stdout's (pipelines read it there), and the scripts
(``python -m secagg.apps.bench.masking``, ``benchmarks/*.py``) still print it with
``--out`` too (tests/apps/test_bench_masking.py, tests/integration/test_bench_grpc.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.bench import emit, headline
from secagg.apps.cli import main

DP = ["bench", "dp", "--d", "2048", "--runs", "1"]
MASKING = ["bench", "masking", "--n", "5", "--d", "500", "--dropout", "0", "--graph", "harary"]


@pytest.mark.parametrize("args", [DP, MASKING], ids=["dp", "masking"])
def test_with_out_the_json_is_in_the_file_and_stdout_says_where(
    args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    name = report["benchmark"]
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \({name}: 1 cell in \d+\.\d s.*\)", lines[0])


def test_without_out_stdout_is_the_json() -> None:
    result = CliRunner().invoke(main, DP)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["benchmark"] == "dp"


def test_the_scripts_keep_the_json_on_stdout_with_out(tmp_path: Path) -> None:
    out, said = tmp_path / "r.json", []
    emit({"benchmark": "x", "cells": []}, str(out), said.append)
    assert [json.loads(said[0])] == [json.loads(out.read_text(encoding="utf-8"))]


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            {"benchmark": "masking", "seconds": 12.34, "cells": [{}, {}], "targets": []},
            "masking: 2 cells in 12.3 s",
        ),
        (
            {
                "benchmark": "backends",
                "seconds": 3.0,
                "cells": [{}],
                "targets": [{"pass": True}, {"pass": False}, {"pass": None}],
            },
            "backends: 1 cell in 3.0 s; targets met: 1 of 3",
        ),
        ({"benchmark": "grpc", "seconds": 9.96, "rounds": [{}] * 3}, "grpc: 3 rounds in 10.0 s"),
        ({"benchmark": "scale", "cells": [{}] * 4}, "scale: 4 cells"),
        ({"benchmark": "dp"}, "dp"),
    ],
)
def test_the_headline_counts_what_the_file_holds(result: dict[str, object], line: str) -> None:
    assert headline(result) == line
