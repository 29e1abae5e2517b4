"""The tuning-validation probe: its quick run reports both splits' choices, the customer
split holding out whole customers, and its command line refuses the reported seeds."""

from __future__ import annotations

import json

import pytest
from _benchmarks import benchmark_script


def test_the_quick_run_reports_both_splits(capsys: pytest.CaptureFixture[str]) -> None:
    with benchmark_script("bench_tuning_validation") as probe:
        assert probe.main(["--quick"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["seed"], r["split"]) for r in rows] == [(1000, "row"), (1000, "customer")]
    by_split = {r["split"]: r for r in rows}
    for fit in ("prior", "centralized"):
        assert by_split["row"][fit]["validation"].endswith(" rows)")
        assert " rows held out " in by_split["row"][fit]["validation"]
        assert " customers held out " in by_split["customer"][fit]["validation"]
        assert 1 <= by_split["customer"][fit]["epochs"] <= 2
    assert 0 <= by_split["customer"]["centralized_test_auprc"] <= 1


@pytest.mark.parametrize("seeds", [["0"], ["1000", "9"]])
def test_the_reported_seeds_are_refused(
    seeds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with benchmark_script("bench_tuning_validation") as probe, pytest.raises(SystemExit) as exit:
        probe.main(["--seeds", *seeds])
    assert exit.value.code == 2
    assert "reported seeds" in capsys.readouterr().err


def test_each_line_is_strict_json_whatever_a_figure_is(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A figure with no value (an AUPRC over a split without frauds: NaN) goes out as
    ``null``, never json.dumps's bare ``NaN`` that strict readers refuse."""
    import math

    from secagg.apps.json_output import loads

    row = {"seed": 1000, "split": "row", "centralized_test_auprc": math.nan, "x": math.inf}
    with benchmark_script("bench_tuning_validation") as probe:
        monkeypatch.setattr(probe, "probe_seed", lambda seed, base: [row])
        assert probe.main(["--quick"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert loads(line) == {**row, "centralized_test_auprc": None, "x": "inf"}
