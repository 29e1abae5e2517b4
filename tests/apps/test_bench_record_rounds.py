"""The record-rounds probe: its rule picks what it says, its command line refuses the
reported seeds, and its quick run reports every variant against the real baselines."""

from __future__ import annotations

import json

import pytest
from _benchmarks import benchmark_script


@pytest.fixture(scope="module")
def probe():
    """The probe's module, its public prior fitted on 12 public worlds: these tests check
    its mechanics on a shrunk world (10 000 training rows), which the reference's size
    does not change, and at the simulator's 48 the prior's fit made this file take
    minutes of CI (the shipped count is the simulator's own tests' business)."""
    from secagg.apps.simulation import data

    with pytest.MonkeyPatch.context() as patch, benchmark_script("bench_record_rounds") as module:
        patch.setattr(data, "PUBLIC_WORLDS", 12)
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
    assert probe.choose({"10:2": shipped}, "10:2") == "10:2"
    # the tuning seeds' figures of 2026-12-07 (10:2 shipped then): 30 rounds qualifies
    measured = {
        "10:2": shipped,
        "20:2": _summary(0.934, 0.672, 80),
        "30:2": _summary(0.946, 0.717, 79),
        "40:2": _summary(0.927, 0.716, 78),
        "10:4": _summary(0.937, 0.683, 78),
        "20:4": _summary(0.929, 0.731, 80),
    }
    assert probe.choose(measured, "10:2") == "30:2"
    # a gain below MIN_GAIN keeps the shipped variant
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.925, 0.7, 80)}, "10:2") == "10:2"
    # a worse worst seed disqualifies, however high the mean
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.99, 0.6, 80)}, "10:2") == "10:2"
    # two branches fewer at least local disqualifies; one fewer does not
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.99, 0.7, 76)}, "10:2") == "10:2"
    assert probe.choose({"10:2": shipped, "30:2": _summary(0.99, 0.7, 77)}, "10:2") == "30:2"
    # a run without noise is a diagnostic: never chosen
    assert (
        probe.choose({"10:2": shipped, "30:2:0": _summary(0.99, 0.9, 80, False)}, "10:2") == "10:2"
    )


def test_the_command_refuses_the_reported_seeds_and_malformed_variants(probe, monkeypatch):
    """Each refusal comes before any seed runs: a malformed ``--shipped`` was refused
    only after the whole probe had run (half an hour a core; 132 s of this test in CI
    run 115)."""

    def ran(*_: object) -> None:
        raise AssertionError("a seed ran before the command line was refused")

    monkeypatch.setattr(probe, "probe_seed", ran)
    for argv in (
        ["--seeds", "1000,3"],
        ["--seeds", "ten"],
        ["--seeds", "1000", "--variants", "30"],
        ["--seeds", "1000", "--variants", "0:2"],
        ["--seeds", "1000", "--variants", "30:-1"],
        ["--seeds", "1000", "--variants", "30:2:5"],
        ["--seeds", "1000", "--variants", "30:2:1:1"],
        ["--seeds", "1000", "--variants", "30:2:1:-0.1"],
        ["--seeds", "1000", "--variants", "30:2:1:fast"],
        ["--seeds", "1000", "--variants", "30:2:1:0.5:0"],
        ["--seeds", "1000", "--variants", "30:2:1:0:-5"],
        ["--seeds", "1000", "--variants", "30:2:1:0:inf"],
        ["--seeds", "1000", "--variants", "30:2:1:0:5:1"],
        ["--seeds", "1000", "--variants", "30:2", "--shipped", "30"],
        ["--seeds", "1000", "--variants", "adam:30"],
        ["--seeds", "1000", "--variants", "adam:30:0"],
        ["--seeds", "1000", "--variants", "adam:30:0.03:-1"],
        ["--seeds", "1000", "--variants", "adam:30:0.03:1e-3:9"],
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


def test_a_variant_names_its_momentum_and_defaults_to_none(probe):
    assert probe.parse_variant("30:2").momentum == 0.0
    assert probe.parse_variant("30:2:0").momentum == 0.0
    heavy = probe.parse_variant("30:0.5:1:0.8")
    assert (heavy.rounds, heavy.learning_rate, heavy.noised, heavy.momentum) == (30, 0.5, True, 0.8)
    assert probe.parse_variant("30:0.5:0:0.8").noised is False


def test_momentum_steps_as_the_server_does(probe):
    """FedAvgM: the first step is the plain one (the velocity starts at zero), later
    steps carry the earlier ones. Without noise, so only the stepping differs."""
    base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}

    def federated(name: str) -> float:
        row = probe.probe_seed(1000, probe.parse_variant(name), base)
        assert row["server_momentum"] == probe.parse_variant(name).momentum
        return row["federated_auprc"]

    assert federated("1:2:0:0.9") == federated("1:2:0")
    assert federated("3:2:0:0.9") != federated("3:2:0")


def test_the_shipped_variant_is_thirty_rounds_at_the_defaults_learning_rate(probe):
    """Since 2026-12-07 the noise once runs RECORD_DISTRIBUTED_ROUNDS at the server's
    default learning rate: a probe's rule compares with that, not with the old 10:2."""
    from secagg.apps.simulation.config import RECORD_DISTRIBUTED_ROUNDS, SimulationConfig

    shipped = probe.parse_variant(probe.SHIPPED)
    assert shipped.rounds == RECORD_DISTRIBUTED_ROUNDS
    assert shipped.learning_rate == SimulationConfig().server_learning_rate
    assert shipped.clip is None and shipped.momentum == 0.0
    better = {probe.SHIPPED: _summary(0.94, 0.70, 79), "30:4": _summary(0.96, 0.72, 79)}
    assert probe.choose(better) == "30:4"
    assert probe.choose(better, "30:4") == "30:4"


def test_a_variant_names_its_clip_and_defaults_to_the_configs(probe):
    assert probe.parse_variant("30:2:1:0").clip is None
    tight = probe.parse_variant("30:4:1:0:5")
    assert (tight.rounds, tight.learning_rate, tight.momentum, tight.clip) == (30, 4.0, 0.0, 5.0)


def test_the_clip_sizes_the_gradient_sums_and_the_noise(probe):
    """A variant's clip is the federation's: without noise a tiny clip moves the model
    less than the defaults' (every customer's gradient is cut), and with noise the
    multiplier is the same (it is relative to the clip) while the row names the clip."""
    base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}
    default = probe.probe_seed(1000, probe.parse_variant("2:2:0"), base)
    tiny = probe.probe_seed(1000, probe.parse_variant("2:2:0:0:0.001"), base)
    assert tiny["clip"] == 0.001 and default["clip"] == 10.0
    assert tiny["federated_auprc"] != default["federated_auprc"]
    noised = probe.probe_seed(1000, probe.parse_variant("2:2:1:0:5"), base)
    shipped_noise = probe.probe_seed(1000, probe.parse_variant("2:2"), base)
    assert noised["clip"] == 5.0
    assert noised["noise_multiplier"] == pytest.approx(shipped_noise["noise_multiplier"], rel=0.1)


def test_an_adam_variant_names_the_servers_fedadam_step(probe):
    adam = probe.parse_variant("adam:30:0.03")
    assert (adam.optimizer, adam.rounds, adam.learning_rate, adam.adam_tau) == (
        "adam",
        30,
        0.03,
        1e-3,
    )
    assert adam.noised and adam.momentum == 0.0 and adam.clip is None
    assert probe.parse_variant("adam:10:0.01:1e-4").adam_tau == 1e-4
    assert probe.parse_variant("30:2").optimizer == "sgd"


def test_fedadam_steps_each_coordinate_by_the_ratio_of_its_moments(probe):
    """FedAdam's first step moves every coordinate by about the learning rate in its
    mean's direction (m_hat / sqrt(v_hat) is the sign), whatever the mean's size, where
    FedAvg steps by the mean itself; later steps follow Adam's recurrences."""
    import numpy as np

    mean = np.array([1e-4, -3.0, 50.0, 0.0])
    zeros = np.zeros(4)
    model, first, second = probe.fedadam_step(zeros, mean, zeros, zeros, 1, 0.1, 1e-12)
    assert model == pytest.approx([0.1, -0.1, 0.1, 0.0], rel=1e-6)
    # by hand: the second step, a new mean, the moments' recurrences and corrections
    again = np.array([2e-4, 1.0, 50.0, 1.0])
    m = 0.9 * first + 0.1 * again
    v = 0.99 * second + 0.01 * again**2
    expected = model + 0.1 * (m / (1 - 0.81)) / (np.sqrt(v / (1 - 0.99**2)) + 1e-3)
    stepped, m2, v2 = probe.fedadam_step(model, again, first, second, 2, 0.1, 1e-3)
    assert stepped == pytest.approx(expected, rel=1e-12)
    assert m2 == pytest.approx(m) and v2 == pytest.approx(v)


def test_an_adam_row_names_its_optimizer(probe):
    base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}
    row = probe.probe_seed(1000, probe.parse_variant("adam:1:0.05"), base)
    assert row["optimizer"] == "adam" and row["noise_multiplier"] > 0
    assert probe.probe_seed(1000, probe.parse_variant("1:2:0"), base)["optimizer"] == "sgd"


def test_a_preconditioned_variant_names_where_its_scale_applies(probe):
    pre = probe.parse_variant("pre:30:2:0.5")
    assert (pre.precondition, pre.rounds, pre.learning_rate) == ("pre", 30, 2.0)
    assert (pre.precondition_power, pre.precondition_cap, pre.noised) == (0.5, 10.0, True)
    assert probe.parse_variant("post:10:1:1:100").precondition_cap == 100.0
    assert probe.parse_variant("30:2").precondition is None
    for bad in ("pre:30:2", "post:30:2:3", "pre:30:2:1:0.5", "pre:0:2:1", "mid:30:2:1"):
        with pytest.raises(SystemExit, match="--variants"):
            probe.parse_variant(bad)


def test_the_public_preconditioner_is_held_between_its_bounds(probe):
    """Measured on the public reference alone; (median / rms) ** power, capped."""
    import numpy as np

    base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}
    row = probe.probe_seed(1000, probe.parse_variant("pre:1:2:1:4"), base)
    assert row["precondition"] == "pre" and row["noise_multiplier"] > 0
    scale = probe._PRECONDITIONERS[(probe._setting_key(1000, base), 1.0, 4.0)]
    assert np.all(scale >= 0.25) and np.all(scale <= 4.0)
    assert np.median(scale) == pytest.approx(1.0)
    assert scale.min() < 1 < scale.max()  # it does reshape the step
    # power 0: the identity
    probe.probe_seed(1000, probe.parse_variant("post:1:2:0"), base)
    assert np.all(probe._PRECONDITIONERS[(probe._setting_key(1000, base), 0.0, 10.0)] == 1.0)


def test_a_row_traces_what_the_server_sees_each_round(probe):
    """One trace entry a round: the noised step's norm, the noise's own norm (public:
    z * clip / N * sqrt(d)) and the cosine with the previous step (0 on the first). On
    one of these seeds the noised step's norm is about the noise's: the trace is how
    the adaptive-rate idea was ruled out, so it must say what the server would see."""
    base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}
    noised = probe.probe_seed(1000, probe.parse_variant("3:2"), base)
    assert len(noised["trace"]) == 3
    assert noised["trace"][0]["cosine_previous"] == 0.0
    for entry in noised["trace"]:
        assert -1.0 <= entry["cosine_previous"] <= 1.0
        assert entry["noise_norm"] > 0
        assert entry["step_norm"] > 0
    quiet = probe.probe_seed(1000, probe.parse_variant("3:2:0"), base)
    assert [e["noise_norm"] for e in quiet["trace"]] == [0.0, 0.0, 0.0]
    # without noise, successive full-batch gradients from nearby models point alike
    assert all(e["cosine_previous"] > 0.5 for e in quiet["trace"][1:])


def test_a_row_scores_the_prior_it_started_from(probe):
    """``prior_auprc`` is the starting model's pooled AUPRC: the same for every
    variant of a seed, and a step with (almost) no rate leaves the federation there."""
    base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}
    still = probe.probe_seed(1000, probe.parse_variant("1:1e-12:0"), base)
    moved = probe.probe_seed(1000, probe.parse_variant("2:2"), base)
    assert still["prior_auprc"] == moved["prior_auprc"]
    assert still["federated_auprc"] == pytest.approx(still["prior_auprc"], abs=1e-9)
    assert moved["public_worlds"] == still["public_worlds"]


def test_the_public_worlds_flag_sets_the_reference_size_and_refuses_nonsense(
    probe, monkeypatch, capsys
):
    from secagg.apps.simulation import data

    shipped = data.PUBLIC_WORLDS
    monkeypatch.setattr(data, "PUBLIC_WORLDS", shipped)  # restored after
    with pytest.raises(SystemExit):
        probe.main(["--public-worlds", "0", "--seeds", "1000"])
    assert "--public-worlds must be at least 1" in capsys.readouterr().err
    assert data.PUBLIC_WORLDS == shipped  # a refused count changes nothing
    monkeypatch.setattr(probe, "probe_seed", lambda seed, variant, base: _row(seed, variant))
    probe.main(["--public-worlds", "3", "--seeds", "1000", "--variants", "30:2"])
    assert data.PUBLIC_WORLDS == 3
    assert probe._public_worlds() == 3


def _row(seed: int, variant) -> dict:
    return {
        "seed": seed,
        "variant": variant.name,
        "federated_vs_centralized": 0.9,
        "branches_at_least_local": 8,
        "branches_judged": 8,
        "noise_multiplier": 1.0,
    }
