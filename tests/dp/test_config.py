"""The privacy unit, the DP config's warnings with numbers, the CLI and the DP benchmark."""

from __future__ import annotations

import json
import math
import sys
import warnings

import pytest
from click.testing import CliRunner

import secagg.dp as dp
from secagg.apps.bench import dp as bench_dp
from secagg.apps.cli import main
from secagg.dp.display import shown
from secagg.errors import ConfigurationError


def test_client_level_dp_with_few_branches_warns_with_numbers() -> None:
    with pytest.warns(dp.PrivacyCostWarning) as caught:
        config = dp.DPConfig(
            unit="client",
            noise_multiplier=1.0,
            clip=1.0,
            delta=1e-3,
            num_clients=8,
            rounds=100,
            dimension=10_000,
        )
    message = str(caught[0].message)
    assert config.unit is dp.PrivacyUnit.CLIENT
    assert "8 expected clients" in message
    assert "12.5 x the norm" in message  # z * sqrt(d) / m = 100 / 8
    assert f"epsilon = {config.planned_epsilon():.3g}" in message
    cost = config.client_level_cost()
    assert cost.relative_noise_on_mean == pytest.approx(1 / 8)
    assert cost.epsilon == pytest.approx(dp.epsilon(1.0, 1.0, 100, 1e-3))


def test_a_large_cohort_with_enough_noise_budget_is_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = dp.DPConfig(
            unit="client",
            noise_multiplier=1.0,
            clip=1.0,
            delta=1e-6,
            num_clients=100_000,
            sample_rate=0.01,
            rounds=100,
            dimension=10_000,
        )
    assert config.expected_clients == pytest.approx(1000)


def test_distributed_plans_quote_the_distributed_bound() -> None:
    args: dict[str, object] = dict(
        unit="client",
        noise_multiplier=1.0,
        clip=1.0,
        delta=1e-5,
        num_clients=10_000,
        sample_rate=0.01,
        rounds=1000,
        dimension=1 << 16,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.PrivacyCostWarning)
        central = dp.DPConfig(**args)  # type: ignore[arg-type]
        distributed = dp.DPConfig(**args, mechanism="distributed", bits=16)  # type: ignore[arg-type]
    # the central plan is the federation's claim: the most sampled of 10 000 clients is
    # likely in 27 of the 1 000 rounds, unamplified (1.8282 if the sampling were secret)
    assert dp.epsilon(1.0, 0.01, 1000, 1e-5) == pytest.approx(1.8282, abs=1e-3)
    assert central.planned_epsilon() == pytest.approx(dp.epsilon(1.0, 1.0, 27, 1e-5))
    from secagg.dp.distributed import DistributedDiscreteGaussian

    ddg = DistributedDiscreteGaussian(
        dimension=1 << 16, clip=1.0, noise_multiplier=1.0, expected_clients=100, bits=16
    )
    # the note's 16-bit example with beta = exp(-1/2) gives 2.4514 with amplification by
    # sampling; we round each client's integer sigma up (784.5 -> 785), a little more
    # noise, so a little less
    amplified = ddg.epsilon(noise_contributors=100, sample_rate=0.01, rounds=1000, delta=1e-5)
    assert 2.44 < amplified <= 2.4514
    # but the (untrusted) server draws the cohort, so the plan claims no amplification
    from secagg.dp.distributed import assumed_colluders

    honest = 100 - assumed_colluders(100, 0.0)  # the protocol tolerates at least 2 colluders
    unamplified = ddg.epsilon(noise_contributors=honest, sample_rate=1.0, rounds=1000, delta=1e-5)
    assert distributed.planned_epsilon() == pytest.approx(unamplified)
    assert distributed.planned_epsilon() > 100 * amplified
    assert distributed.client_level_cost().epsilon == distributed.planned_epsilon()
    with pytest.raises(ConfigurationError, match="dimension"):
        dp.DPConfig(**(args | {"dimension": None, "mechanism": "distributed"}))  # type: ignore[arg-type]


def test_distributed_plan_discounts_the_colluders_the_rounds_discount() -> None:
    """The plan's warning printed epsilon = 2 where the rounds, which discount the
    colluders' noise shares, spend 3: the plan now counts shares the same way."""
    from secagg.dp.distributed import DistributedDiscreteGaussian, assumed_colluders

    args = dict(
        unit="client",
        noise_multiplier=1.0,
        clip=1.0,
        delta=1e-3,
        num_clients=12,
        rounds=5,
        dimension=1000,
        mechanism="distributed",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.PrivacyCostWarning)
        trusting = dp.DPConfig(**args)  # type: ignore[arg-type]
        planned = dp.DPConfig(**args, corrupt_fraction=0.25)  # type: ignore[arg-type]
    ddg = DistributedDiscreteGaussian(
        dimension=1000, clip=1.0, noise_multiplier=1.0, expected_clients=12, bits=32
    )
    honest = 12 - assumed_colluders(12, 0.25)
    assert honest == 9
    expected = ddg.epsilon(noise_contributors=honest, sample_rate=1.0, rounds=5, delta=1e-3)
    assert planned.planned_epsilon() == pytest.approx(expected)
    assert planned.planned_epsilon() > trusting.planned_epsilon()


def test_record_level_config_needs_no_client_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = dp.DPConfig(
            unit="record",
            mechanism="dpsgd",
            noise_multiplier=1.0,
            clip=1.0,
            delta=1e-6,
            num_clients=5,
        )
    assert config.unit is dp.PrivacyUnit.RECORD


@pytest.mark.parametrize(
    "bad",
    [
        dict(unit="branch"),
        dict(mechanism="dpsgd"),  # client unit with a record mechanism
        dict(delta=0.5),  # not below 1 / num_clients
        dict(delta=0.0),
        dict(mechanism="distributed", adaptive_clipping=True),
    ],
)
def test_config_refuses_incoherent_choices(bad: dict[str, object]) -> None:
    args: dict[str, object] = dict(
        unit="client", noise_multiplier=1.0, clip=1.0, delta=1e-6, num_clients=1000
    )
    with pytest.raises((ConfigurationError, ValueError)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp.DPConfig(**(args | bad))  # type: ignore[arg-type]


def test_importing_secagg_dp_does_not_load_torch() -> None:
    import subprocess

    code = "import sys, secagg.dp; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_privacy_cli_matches_the_library() -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["privacy", "epsilon", "-z", "1", "-q", "0.01", "-T", "1000", "--delta", "1e-5"]
    )
    assert result.exit_code == 0, result.output
    # rounded up at the 4 decimals shown: 1.82824 is 1.8283 (to the nearest, 1.8282)
    assert f"epsilon = {shown(dp.epsilon(1.0, 0.01, 1000, 1e-5))} " in result.output
    result = runner.invoke(
        main,
        [
            *("privacy", "noise", "--epsilon", "3", "--delta", "1e-5", "-q", "0.05", "-T", "500"),
            *("--accountant", "rdp", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["epsilon"] <= 3.0
    # the printed z, rounded up so that it spends at most the budget (never down)
    exact = dp.noise_multiplier_for(3.0, 1e-5, 0.05, 500, accountant="rdp")
    assert exact <= payload["noise_multiplier"] <= exact + 1e-4
    bad = runner.invoke(
        main, ["privacy", "epsilon", "-z", "0", "-q", "0.01", "-T", "10", "--delta", "1e-5"]
    )
    assert bad.exit_code == 2 and "--noise-multiplier" in bad.output  # the flag typed


def test_dp_benchmark_reports_every_step_against_the_plaintext_pass() -> None:
    result = json.loads(
        json.dumps(bench_dp.run_benchmark(dimensions=(4096,), runs=1, progress=False))
    )
    assert result["benchmark"] == "dp"
    (cell,) = result["cells"]
    assert cell["d"] == 4096 and cell["padded_d"] == 4096
    for step in (
        "clip_l2",
        "encode_fixed_point",
        "rotate",
        "discrete_gaussian_noise",
        "gaussian_noise",
        "distributed_encode",
    ):
        seconds = cell[f"{step}_seconds"]
        assert seconds > 0 and math.isfinite(cell[f"{step}_vs_plaintext"])
        assert cell[f"{step}_vs_plaintext"] == pytest.approx(
            seconds / cell["plaintext_pass_seconds"]
        )


def test_dp_benchmark_cli_quick() -> None:
    result = CliRunner().invoke(main, ["bench", "dp", "--d", "2048", "--runs", "1"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert payload["cells"][0]["d"] == 2048


def test_privacy_cli_gives_the_federations_figure_with_clients() -> None:
    """A secagg federation credits no amplification by sampling (a round's members see
    each other): with --clients the CLI prints what it will claim, the most sampled
    client's epsilon; without, at q < 1, the Poisson figure comes with a note."""
    runner = CliRunner()
    args = ["privacy", "epsilon", "-z", "1.72", "-q", "0.3", "-T", "10", "--delta", "1e-5"]
    result = runner.invoke(main, [*args, "--clients", "1000"])
    assert result.exit_code == 0, result.output
    federation = dp.federation_epsilon(1.72, 0.3, 10, 1e-5, 1000)
    assert result.output.startswith(f"epsilon = {federation:.4f}")
    assert "likely in 9 of 10 rounds" in result.output and "note:" not in result.output
    payload = json.loads(runner.invoke(main, [*args, "-N", "1000", "--json"]).output)
    assert payload["epsilon"] == pytest.approx(federation)
    assert payload["most_rounds_per_client"] == 9 and not payload["amplified_by_sampling"]
    amplified = runner.invoke(main, args)
    assert amplified.exit_code == 0
    first, note = amplified.output.splitlines()
    assert first.startswith(f"epsilon = {dp.epsilon(1.72, 0.3, 10, 1e-5):.4f}")
    assert note.startswith("note: at q < 1 this credits amplification by secret sampling")
    assert json.loads(runner.invoke(main, [*args, "--json"]).output)["amplified_by_sampling"]
    noise = ["privacy", "noise", "--epsilon", "3", "--delta", "1e-5", "-q", "0.3", "-T", "10"]
    payload = json.loads(runner.invoke(main, [*noise, "-N", "1000", "--json"]).output)
    exact = dp.federation_noise_multiplier(3.0, 1e-5, 0.3, 10, 1000)
    assert exact <= payload["noise_multiplier"] <= exact + 1e-4  # the printed z, rounded up
    assert payload["epsilon"] <= 3.0 and payload["most_rounds_per_client"] == 9
    everyone = runner.invoke(main, [*args[:5], "1", *args[7:], "-N", "1000"])
    assert "note:" not in everyone.output and "likely" not in everyone.output  # q = 1


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (dict(clip=0.0), "clip"),  # all four were accepted: the plan's epsilon rests on C
        (dict(clip=-1.0), "clip"),
        (dict(clip=math.nan), "clip"),
        (dict(clip=None), "clip"),
        (dict(num_clients=0), "num_clients"),  # ZeroDivisionError
        (dict(num_clients="1000"), "num_clients"),  # TypeError
        (dict(delta="1e-6"), "delta"),  # TypeError
        (dict(unit="bank"), "unit"),  # a bare ValueError of the enum
        (dict(unit=None), "unit"),
        (dict(adaptive_clipping="yes"), "adaptive_clipping"),  # taken as True
        (dict(dimension=-1), "dimension"),  # math domain error
        (dict(dimension=1.5), "dimension"),
        (dict(corrupt_fraction=1.5), "corrupt_fraction"),  # accepted
        (dict(corrupt_fraction=math.nan), "corrupt_fraction"),
        (dict(warn_noise_to_signal=math.nan), "warn_noise_to_signal"),  # never warned
    ],
)
def test_config_refuses_a_bad_value_naming_the_field(bad: dict[str, object], named: str) -> None:
    args: dict[str, object] = dict(
        unit="client", noise_multiplier=1.0, clip=1.0, delta=1e-6, num_clients=1000
    )
    with pytest.raises(ConfigurationError, match=named), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp.DPConfig(**(args | bad))  # type: ignore[arg-type]


def test_the_cost_description_never_shows_less_epsilon_or_delta_than_planned() -> None:
    """To 3 significant digits, to the nearest, a plan spending epsilon 3.00004 read
    "spends epsilon = 3" (and delta 1.2345641e-5 read 1.23456e-05)."""
    cost = dp.ClientLevelCost(
        expected_clients=100.0,
        noise_multiplier=1.0,
        epsilon=3.00004,
        delta=1.2345641e-5,
        rounds=10,
        relative_noise_on_mean=0.01,
        noise_to_signal=None,
    )
    text = cost.describe()
    assert "spends epsilon = 3.01 (delta = 1.23457e-05)" in text


def test_an_unreachable_budget_names_a_spend_not_below_the_real_one() -> None:
    """`noise_multiplier_for(1e-3, 1e-5, 1, 1000)`: even z = 10^4 spends 0.00743436, which
    read 0.007434 to 4 significant digits."""
    from secagg.dp.accounting import epsilon, noise_multiplier_for

    with pytest.raises(ConfigurationError, match="unreachable") as caught:
        noise_multiplier_for(1e-3, 1e-5, 1.0, 1000)
    spent = float(str(caught.value).split(" spends ")[1].split(";")[0])
    assert spent >= epsilon(1e4, 1.0, 1000, 1e-5)
