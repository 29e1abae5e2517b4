"""docs/privacy.md's accounting-cost table is ``benchmarks/results/accounting.json``'s run,
in CPU seconds rounded up, and says the run's date.

Why: the table's "from scratch" column was from 2026-12-02, before ``reference_epsilon``
took a sampled round's PLD from the running accountants' cache (2026-12-06), and gave
wall seconds of a loaded machine (42 s, 1.3 s, 1.4 s); the prose beside it gave other
figures measured by hand. The page is read, not copied: an edit to either side fails here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _benchmarks import benchmark_script

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "privacy.md"
RESULTS = ROOT / "benchmarks" / "results" / "accounting.json"

#: a row of the table: q, round T, incremental (µs or ms), from scratch (s)
_ROW = re.compile(
    r"^\| (?P<q>[\d.]+) \| (?P<t>[\d ]+) \| (?P<inc>[\d.]+) (?P<unit>µs|ms) "
    r"\| (?P<scratch>[\d.]+) s \|$",
    re.M,
)
_UNITS = {"µs": 1e-6, "ms": 1e-3}


def _result() -> dict[str, Any]:
    return dict(json.loads(RESULTS.read_text(encoding="utf-8")))


def _cell(q: float, rounds: int) -> dict[str, Any]:
    (cell,) = [c for c in _result()["per_round"] if c["sample_rate"] == q and c["rounds"] == rounds]
    return dict(cell)


def _shown_rounded_up(shown: str, measured: float) -> None:
    """``shown`` is ``measured`` rounded up at the digits shown (the safe side for a cost)."""
    decimals = len(shown.partition(".")[2])
    step = 10.0**-decimals
    value = float(shown)
    assert measured <= value + 1e-12, f"{shown} understates {measured}"
    assert value - measured < step + 1e-12, f"{shown} is more than one step above {measured}"


def test_the_table_is_the_stored_runs_cpu_seconds_rounded_up() -> None:
    rows = list(_ROW.finditer(PAGE.read_text(encoding="utf-8")))
    assert len(rows) == 3, [r.group(0) for r in rows]
    for row in rows:
        cell = _cell(float(row["q"]), int(row["t"].replace(" ", "")))
        scale = _UNITS[row["unit"]]
        _shown_rounded_up(row["inc"], cell["incremental_cpu_seconds"] / scale)
        _shown_rounded_up(row["scratch"], cell["from_scratch_cpu_seconds"])
        assert math.isclose(cell["from_scratch_epsilon"], cell["epsilon"], rel_tol=1e-6)


@pytest.mark.parametrize(
    ("ledger", "said"),
    [
        ("central DP, q = 1", "(central, q = 1)"),
        ("central DP, q = 0.1", "(central, q = 0.1)"),
        ("distributed DP, q = 1", "(distributed)"),
    ],
)
def test_the_verify_figures_are_the_stored_runs(ledger: str, said: str) -> None:
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    (cell,) = [c for c in _result()["verify"] if c["ledger"] == ledger]
    assert cell["ok"] is True
    found = re.search(r"([\d.]+) s(?: of CPU)? " + re.escape(said), text)
    assert found is not None, said
    _shown_rounded_up(found.group(1), cell["verify_cpu_seconds"])


def test_the_page_says_the_runs_date() -> None:
    day = _result()["started_at"][:10]
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    assert f"Measured by `python benchmarks/bench_accounting.py` (z = 1.1, δ = 1e-5; {day}" in text


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with benchmark_script("bench_accounting") as module:
        yield module


@pytest.mark.parametrize("value", ["0", "-3", "1001", "two"])
def test_a_repetition_count_out_of_range_is_one_line_naming_the_flag(
    bench: ModuleType,
    value: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--repetitions 0`` ended in ``StatisticsError: no median for empty data`` after
    the setup; now argparse refuses it before any work (exit 2, the flag named)."""

    def no_run(**kwargs: Any) -> dict[str, Any]:
        raise AssertionError(f"ran with --repetitions {value}")

    monkeypatch.setattr(bench, "run_benchmark", no_run)
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--quick", "--repetitions", value])
    assert stopped.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert "--repetitions" in last, last


def test_a_repetition_count_in_range_is_taken(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(bench, "run_benchmark", lambda **kw: seen.append(kw["repetitions"]) or {})
    monkeypatch.setattr(bench, "emit", lambda result, out: None)
    for value in ("1", "1000"):
        bench.main(["--quick", "--repetitions", value, "--no-progress"])
    assert seen == [1, 1000]
