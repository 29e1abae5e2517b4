"""The record-rounds probe: its rule picks what it says, its command line refuses the
reported seeds, and its quick run reports every variant against the real baselines."""

from __future__ import annotations

import json

import pytest
from _benchmarks import benchmark_script


@pytest.fixture(scope="module")
def probe():
    with benchmark_script("bench_record_rounds") as module:
        yield module


def _summary(mean: float, worst: float, branches: int, noised: bool = True) -> dict:
    return {
        "mean_ratio": mean,
        "worst_seed_ratio": worst,
        "branches_at_least_local": branches,
        "branches_judged": 80,
        "noised": noised,
    }


def test_the_rule_keeps_the_shipped_variant_unless_a_qualified_one_gains_enough(probe):
    shipped = _summary(0.92, 0.64, 78)
    assert probe.choose({"10:2": shipped}) == "10:2"
    # the tuning seeds' figures of 2026-12-07: 30 rounds qualifies and gains most
    measured = {
        "10:2": shipped,
        "20:2": _summary(0.934, 0.672, 80),
        "30:2": _summary(0.946, 0.717, 79),
        "40:2": _summary(0.927, 0.716, 78),
        "10:4": _summary(0.937, 0.683, 78),
        "20:4": _summary(0.929, 0.731, 80),
    }
    assert probe.choose(measured) == "30:2"
    # a gain below MIN_GAIN keeps the shipped variant
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.925, 0.7, 80)}) == "10:2"
    # a worse worst seed disqualifies, however high the mean
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.99, 0.6, 80)}) == "10:2"
    # two branches fewer at least local disqualifies; one fewer does not
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.99, 0.7, 76)}) == "10:2"
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.99, 0.7, 77)}) == "30:2"
    # a run without noise is a diagnostic: never chosen
    assert probe.choose({"10:2": shipped, "30:2:0": _summary(0.99, 0.9, 80, False)}) == "10:2"


def test_the_command_refuses_the_reported_seeds_and_malformed_variants(probe):
    for argv in (
        ["--seeds", "1000,3"],
        ["--seeds", "ten"],
        ["--seeds", "1000", "--variants", "30"],
        ["--seeds", "1000", "--variants", "0:2"],
        ["--seeds", "1000", "--variants", "30:-1"],
        ["--seeds", "1000", "--variants", "30:2:5"],
    ):
        with pytest.raises(SystemExit) as raised:
            probe.main(argv)
        assert str(raised.value).startswith("error: --")


def test_quick_run_reports_each_variant_against_the_real_baselines(probe, tmp_path, capsys):
    out = tmp_path / "rounds.json"
    probe.main(["--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["benchmark"] == "record_rounds"
    assert [r["variant"] for r in result["rows"]] == ["1:2", "2:2"]
    central = {r["centralized_auprc"] for r in result["rows"]}
    assert len(central) == 1  # one seed's baseline, computed once
    for row in result["rows"]:
        assert row["noise_multiplier"] > 0
        assert 0 <= row["federated_auprc"] <= 1
        assert row["federated_vs_centralized"] == pytest.approx(
            row["federated_auprc"] / row["centralized_auprc"]
        )
        assert 0 <= row["branches_at_least_local"] <= row["branches_judged"] <= 8
    # two rounds are re-sized to more noise than one: the calibration saw the rounds
    one, two = result["rows"]
    assert two["noise_multiplier"] > one["noise_multiplier"]
    assert result["chosen"] in ("1:2", "2:2")
