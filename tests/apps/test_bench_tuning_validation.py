"""The tuning-validation check: its quick run reports every fit under every validation
with a regret against the best candidate, and its command line refuses the reported
seeds and unbounded seed lists."""

from __future__ import annotations

import json
import math

import pytest
from _benchmarks import benchmark_script


def test_the_quick_run_reports_every_validation_with_its_regret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with benchmark_script("bench_tuning_validation") as probe:
        assert probe.main(["--quick"]) == 0
        schemes = probe.SCHEMES
    row, summary = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert row["seed"] == 1000
    for fit, names in schemes.items():
        assert list(row[fit]) == list(names)
        for name, result in row[fit].items():
            # the chosen model is one of the candidates, trained alike: never above the
            # best of them, and its regret is the difference
            assert result["in_table"] is True
            assert result["test_auprc"] <= result["best_test_auprc"]
            assert math.isclose(result["regret"], result["best_test_auprc"] - result["test_auprc"])
            assert result["regret"] >= 0
            assert result["validation_scheme"] in (name, "customer", "row", "none")
        assert set(summary["summary"][fit]) == set(names)
    assert " customers held out " in row["prior"]["customer"]["validation"]
    assert row["prior"]["world"]["validation"].startswith("a held-out public world")
    assert " rows held out " in row["centralized"]["row"]["validation"]


@pytest.mark.parametrize(
    "seeds", [["0"], ["1000", "9"], ["999"]], ids=["reported", "one-reported", "below"]
)
def test_the_reported_seeds_are_refused(
    seeds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with benchmark_script("bench_tuning_validation") as probe, pytest.raises(SystemExit) as exit:
        probe.main(["--seeds", *seeds])
    assert exit.value.code == 2
    assert "reported seeds" in capsys.readouterr().err


@pytest.mark.parametrize(
    "seeds", [["-1"], ["2147483648"], ["x"], [str(s) for s in range(1000, 1051)]]
)
def test_a_seed_list_out_of_bounds_is_refused(
    seeds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with benchmark_script("bench_tuning_validation") as probe, pytest.raises(SystemExit) as exit:
        probe.main(["--seeds", *seeds])
    assert exit.value.code == 2
    assert "--seeds" in capsys.readouterr().err


def test_clearly_worse_is_a_paired_difference_beyond_its_standard_error() -> None:
    """The rule fixed before the check ran: a validation is clearly worse than
    "customer" when its seeds' mean paired regret difference exceeds its standard
    error."""

    def seed(seed: int, regrets: dict[str, dict[str, float]]) -> dict[str, object]:
        return {
            "seed": seed,
            **{
                fit: {s: {"regret": r, "test_auprc": 0.5} for s, r in by_scheme.items()}
                for fit, by_scheme in regrets.items()
            },
        }

    even = {"world": 0.0, "customer": 0.0, "row": 0.0}
    rows = [
        seed(1000, {"prior": {**even, "world": 0.10}, "centralized": {**even, "time": 0.00}}),
        seed(1001, {"prior": {**even, "world": 0.12}, "centralized": {**even, "time": 0.05}}),
        seed(1002, {"prior": {**even, "world": 0.08}, "centralized": {**even, "time": -0.05}}),
    ]
    for row in rows:  # the centralized fit's schemes
        row["centralized"] = {
            "time": row["centralized"].pop("time"),
            "customer": row["centralized"]["customer"],
            "row": row["centralized"]["row"],
        }
    with benchmark_script("bench_tuning_validation") as probe:
        summary = probe.summarise(rows)
    world = summary["prior"]["world"]["minus_customer"]
    assert math.isclose(world["mean"], 0.10) and world["clearly_worse"] is True
    time = summary["centralized"]["time"]["minus_customer"]
    assert math.isclose(time["mean"], 0.0, abs_tol=1e-12) and time["clearly_worse"] is False
    assert math.isclose(summary["prior"]["world"]["se"], 0.02 / math.sqrt(3))
