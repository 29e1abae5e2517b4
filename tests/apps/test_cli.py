"""The console command: `secagg round` (the README's main job) and the parameter helper."""

from __future__ import annotations

import json
import warnings

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.display import shown


def test_round_reports_a_matching_sum_as_json() -> None:
    result = CliRunner().invoke(
        main, ["round", "--clients", "20", "--dim", "500", "--dropout", "0.1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["status"] == "complete"
    assert report["sum_matches_plaintext"] is True
    dropped = sum(len(v) for v in report["dropped"].values())
    assert dropped == 2
    assert report["included"] >= 20 - dropped


def test_round_below_threshold_exits_with_the_abort_reason() -> None:
    result = CliRunner().invoke(
        main,
        [
            "round",
            "--clients",
            "10",
            "--dim",
            "10",
            "--graph",
            "complete",
            "--threshold",
            "10",
            "--dropout",
            "0.3",
        ],
    )
    assert result.exit_code == 3  # was 2, a usage mistake's status
    assert "ABORTED" in result.output


def test_an_aborted_round_and_a_usage_mistake_exit_differently() -> None:
    """``secagg round`` exited 2 both for an aborted round and for a mistake in its
    options (click's usage status), so a script could not tell them apart."""
    mistake = CliRunner().invoke(main, ["round", "--dim", "0"])
    aborted = CliRunner().invoke(
        main,
        "round --clients 4 --dim 2 --graph complete --threshold 4 --dropout 0.5 --json".split(),
    )
    assert mistake.exit_code == 2, mistake.output
    assert aborted.exit_code == 3, aborted.output
    assert '"status": "aborted"' in aborted.output


def test_round_refuses_an_impossible_configuration() -> None:
    result = CliRunner().invoke(main, ["round", "--clients", "10", "--k", "3"])
    assert result.exit_code != 0
    assert "even degree" in result.output


def test_params_prints_the_published_choice() -> None:
    result = CliRunner().invoke(main, ["params", "--clients", "1000"])
    assert result.exit_code == 0
    assert "k=36" in result.output and "t=19" in result.output


@pytest.mark.parametrize("clients", [3, 4, 5, 6, 8, 10, 20, 57, 100])
def test_params_prints_what_a_round_of_that_size_runs(clients: int) -> None:
    """Network audit (2026-12-03): it printed "k=2, t=2" for 4 to 10 clients, the graph
    search without the colluder floor, where rounds ran k = 4, t = 3 (or all n)."""
    from secagg.protocol import RoundConfig

    config = RoundConfig.create(clients, 1)
    result = CliRunner().invoke(main, ["params", "--clients", str(clients)])
    assert result.exit_code == 0, result.output
    assert f"k={config.degree} neighbours, t={config.threshold}" in result.output
    assert f"tolerates {config.tolerated_colluders} colluders" in result.output


@pytest.mark.parametrize(
    ("target", "sample_rate", "rounds", "accountant"),
    [("20", "1", "1", "pld"), ("200", "1", "1", "pld"), ("20", "1", "1", "rdp"),
     ("3", "0.5", "20", "rdp")],
)  # fmt: skip
def test_the_printed_noise_multiplier_keeps_the_budget(
    target: str, sample_rate: str, rounds: str, accountant: str
) -> None:
    """`privacy noise --epsilon 20 -q 1 -T 1` printed z = 0.2900 (z rounded to the nearest
    1e-4, here down), and `privacy epsilon -z 0.2900` then spent 20.0038 > 20: the number
    a user copies into a config overspent the budget it was asked for."""
    plan = ["-q", sample_rate, "-T", rounds, "--delta", "1e-5", "--accountant", accountant]
    noise = CliRunner().invoke(main, ["privacy", "noise", "--epsilon", target, *plan])
    assert noise.exit_code == 0, noise.output
    printed = noise.output.split("z = ")[1].split()[0]
    spent = CliRunner().invoke(main, ["privacy", "epsilon", "-z", printed, *plan, "--json"])
    assert spent.exit_code == 0, spent.output
    epsilon = json.loads(spent.output)["epsilon"]
    assert epsilon <= float(target)
    assert epsilon == pytest.approx(float(target), rel=1e-3)  # and still about the budget
    assert f"epsilon = {shown(epsilon)} " in noise.output  # the line's epsilon: the printed z's


@pytest.mark.parametrize(
    "command", [["epsilon", "-z", "0.9"], ["noise", "--epsilon", "3"], ["noise", "--epsilon", "9"]]
)
def test_the_printed_epsilon_is_never_below_the_one_computed(command: list[str]) -> None:
    """Rounded to the nearest 1e-4 it could be: `privacy epsilon -z 0.9 -q 1 -T 1` spends
    4.94732 and printed 4.9473; `privacy noise --epsilon 3` printed epsilon = 2.9997 for
    2.99974 (9: 8.9989 for 8.99891). Now rounded up at the precision shown, as z is."""
    plan = ["-q", "1", "-T", "1", "--delta", "1e-5"]
    text = CliRunner().invoke(main, ["privacy", *command, *plan])
    report = CliRunner().invoke(main, ["privacy", *command, *plan, "--json"])
    assert text.exit_code == 0 and report.exit_code == 0, text.output + report.output
    epsilon = json.loads(report.output)["epsilon"]
    printed = text.output.split("epsilon = ")[1].split()[0]
    assert float(printed) >= epsilon
    assert float(printed) - epsilon < 1e-4
    assert "at delta = 1e-05 " in text.output or "at delta = 1e-05)" in text.output


def test_a_federation_too_sparse_to_sample_anyone_is_still_charged_one_round() -> None:
    """With --clients 10 -q 1e-9 the most sampled client likely takes part in 0 of 10
    rounds: `privacy epsilon` said epsilon = 0 while `privacy noise` (and the library's
    federation_epsilon) charge one round, since a round that runs charges its members.
    The round trip then gave 0 for any budget."""
    from secagg.dp.accounting import federation_epsilon

    plan = ["-q", "1e-9", "-T", "10", "--delta", "1e-5", "--clients", "10"]
    spent = CliRunner().invoke(main, ["privacy", "epsilon", "-z", "1", *plan, "--json"])
    assert spent.exit_code == 0, spent.output
    report = json.loads(spent.output)
    assert report["epsilon"] == pytest.approx(federation_epsilon(1.0, 1e-9, 10, 1e-5, 10))
    assert report["epsilon"] > 0
    noise = CliRunner().invoke(main, ["privacy", "noise", "--epsilon", "1", *plan])
    printed = noise.output.split("z = ")[1].split()[0]
    again = CliRunner().invoke(main, ["privacy", "epsilon", "-z", printed, *plan, "--json"])
    assert json.loads(again.output)["epsilon"] == pytest.approx(1.0, rel=1e-3)


def test_noise_met_only_from_pld_s_floor_says_so() -> None:
    """`privacy noise --epsilon 8 -q 1e-9 -T 1000000000` printed z = 0.4333 (epsilon 0.034)
    as the noise epsilon 8 needs: the search stops at the least noise PLD can evaluate.
    Now one more line says the budget is not reachable from above, with the printed z's
    epsilon, and points to --accountant rdp (which finds z = 0.2392); JSON says it too."""
    plan = ["--epsilon", "8", "--delta", "1e-5", "-q", "1e-9", "-T", "1000000000"]
    text = CliRunner().invoke(main, ["privacy", "noise", *plan])
    assert text.exit_code == 0, text.output
    printed = text.stdout.split("z = ")[1].split()[0]
    spent = text.stdout.split("epsilon = ")[1].split()[0]
    (line,) = [x for x in text.stderr.splitlines() if "not reachable from above" in x]
    assert f"z = {printed} " in line and f"epsilon {spent} of 8" in line
    assert "--accountant rdp" in line and float(spent) < 0.1
    report = CliRunner().invoke(main, ["privacy", "noise", *plan, "--json"])
    assert report.exit_code == 0, report.output
    payload = json.loads(report.stdout)
    assert payload["budget_not_reachable_from_above"] is True
    assert "--accountant rdp" in payload["note"]
    ordinary = CliRunner().invoke(main, ["privacy", "noise", *plan[:4], "-q", "1", "-T", "1"])
    assert ordinary.exit_code == 0 and "not reachable" not in ordinary.output


def test_floor_note_rounds_the_unevaluable_noise_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The floor note printed the z PLD cannot evaluate with ``:.4g``, to the nearest:
    0.28889 showed as 0.2889, more noise than the z that was refused (and one PLD may
    well evaluate). A noise figure shown is rounded down at the precision shown
    (:func:`secagg.dp.display.shown` with ``lower``): 0.2888."""
    from secagg.dp import accounting

    def floored(target: float, *args: object, **kwargs: object) -> float:
        warnings.warn(
            accounting.NoiseFloorWarning(
                noise_multiplier=2.0, epsilon=2.0, target_epsilon=target, unevaluable=0.28889
            ),
            stacklevel=2,
        )
        return 2.0

    from secagg.dp import calibration

    # noise_for_budget (what the command asks) searches through calibration's own name
    monkeypatch.setattr(calibration, "noise_multiplier_for", floored)
    plan = ["--epsilon", "8", "--delta", "1e-5", "-q", "1", "-T", "1", "--accountant", "rdp"]
    text = CliRunner().invoke(main, ["privacy", "noise", *plan])
    assert text.exit_code == 0, text.output
    (line,) = [x for x in text.stderr.splitlines() if "not reachable from above" in x]
    assert "cannot evaluate z = 0.2888, " in line, line


@pytest.mark.parametrize(
    ("plan", "says_amplified"),
    [
        (["-q", "0.01", "-T", "100"], True),
        (["-q", "1", "-T", "100"], False),
        (["-q", "0.01", "-T", "100", "--clients", "1000"], False),
    ],
)
def test_the_epsilon_line_says_when_it_credits_sampling(
    plan: list[str], says_amplified: bool
) -> None:
    """Without --clients at q < 1 the figure is amplified by a secret sample, which a
    secagg federation does not claim; the line read "(pld, per client)" as for the
    federation's figure, and only a stderr note said otherwise (review, 2026-12-05)."""
    result = CliRunner().invoke(main, ["privacy", "epsilon", "-z", "1", *plan, "--delta", "1e-5"])
    assert result.exit_code == 0, result.output
    line = result.stdout.splitlines()[0]
    assert ("amplified by sampling at q = 0.01" in line) is says_amplified, line
    assert line.count("(") == line.count(")") == 1


@pytest.mark.parametrize(
    ("plan", "says_amplified"),
    [
        (["-q", "0.01", "-T", "100"], True),
        (["-q", "1", "-T", "100"], False),
        (["-q", "0.01", "-T", "100", "--clients", "1000"], False),
    ],
)
def test_the_noise_line_says_when_its_epsilon_credits_sampling(
    plan: list[str], says_amplified: bool
) -> None:
    """As `privacy epsilon`'s line (cb2de9c): without --clients at q < 1 the noise is
    sized for an epsilon amplified by a secret sample, which a secagg federation does
    not claim, and the line read "(epsilon = ... at delta = ...)" as for the
    federation's figure, only a stderr note saying otherwise (review, 2026-12-05)."""
    args = ["privacy", "noise", "--epsilon", "3", *plan, "--delta", "1e-5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    line = result.stdout.splitlines()[0]
    assert line.startswith("noise multiplier z = "), line
    assert ("amplified by sampling at q = 0.01" in line) is says_amplified, line
    assert line.count("(") == line.count(")") == 1
