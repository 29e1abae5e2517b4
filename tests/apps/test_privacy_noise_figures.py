"""`secagg privacy noise`: the z it prints and the epsilon beside it come from the dp layer.

The command found z, rounded it up and computed the epsilon of the rounded z with its
own code (and its own copy of which rounds a federation is charged for), beside the
accountant's. Now both figures are :func:`secagg.dp.accounting.noise_for_budget`'s,
whose epsilon is :func:`~secagg.dp.accounting.plan_epsilon` of the printed z, the same
call `privacy epsilon` makes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp import accounting
from secagg.dp.display import shown

#: (flags, population): a closed-form plan, an amplified RDP plan, a federation's plan
PLANS = [
    (["-q", "1", "-T", "10"], None),
    (["-q", "0.01", "-T", "100", "--accountant", "rdp"], None),
    (["-q", "0.3", "-T", "10", "--clients", "1000"], 1000),
]


def _accountant(flags: list[str]) -> str:
    return flags[flags.index("--accountant") + 1] if "--accountant" in flags else "pld"


@pytest.mark.parametrize(("flags", "population"), PLANS)
def test_the_printed_epsilon_is_the_accountants_for_the_printed_z(
    flags: list[str], population: int | None
) -> None:
    """The epsilon printed is :func:`plan_epsilon` of the z printed (not of the search's
    unrounded z), rounded up, and within the budget; JSON carries the same figures."""
    args = ["privacy", "noise", "--epsilon", "2", "--delta", "1e-5", *flags]
    text = CliRunner().invoke(main, args)
    report = CliRunner().invoke(main, [*args, "--json"])
    assert text.exit_code == 0 and report.exit_code == 0, text.output + report.output
    printed_z = text.stdout.split("z = ")[1].split()[0]
    printed_eps = text.stdout.split("epsilon = ")[1].split()[0]
    rate = float(flags[flags.index("-q") + 1])
    rounds = int(flags[flags.index("-T") + 1])
    spent = accounting.plan_epsilon(
        float(printed_z), rate, rounds, 1e-5, population, _accountant(flags)
    )
    assert printed_eps == shown(spent)  # the accountant's figure, rounded up
    assert spent <= 2.0
    payload = json.loads(report.stdout)
    assert payload["noise_multiplier"] == float(printed_z)
    assert payload["epsilon"] == spent


def test_privacy_noise_prints_the_dp_layers_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command prints what :func:`noise_for_budget` answers, no figure of its own."""
    charge = accounting.PlanCharge(1.0, 1)

    def answer(epsilon: float, *args: object) -> accounting.BudgetNoise:
        return accounting.BudgetNoise("1.2345", 1.2345, 0.123456, epsilon, charge)

    monkeypatch.setattr(accounting, "noise_for_budget", answer)
    plan = ["--epsilon", "1", "--delta", "1e-5", "-q", "1", "-T", "1", "--accountant", "rdp"]
    result = CliRunner().invoke(main, ["privacy", "noise", *plan])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("noise multiplier z = 1.2345 (epsilon = 0.1235 at"), (
        result.output
    )


def test_a_rounded_z_that_overspends_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the accountant is not monotone in z (PLD near its floor), the z rounded up
    for printing can spend more than the budget although the search's z did not; the
    command printed it with that epsilon, above the budget it was asked for. Now z goes
    up by a printed digit until its own epsilon meets the budget."""
    found = 0.29004  # the search's z: within the budget

    def search(*args: object, **kwargs: object) -> float:
        return found

    def spent(z: float, *args: object) -> float:
        # the search's z and anything from 0.2902 up meet the budget; 0.2901 does not
        return 0.999 if z == found or z >= 0.2902 else 1.001

    from secagg.dp import calibration, plan_figures

    # where noise_for_budget looks them up: its search, and plan_epsilon's epsilon
    monkeypatch.setattr(calibration, "noise_multiplier_for", search)
    monkeypatch.setattr(plan_figures, "epsilon", spent)
    plan = ["--epsilon", "1", "--delta", "1e-5", "-q", "1", "-T", "1", "--accountant", "rdp"]
    result = CliRunner().invoke(main, ["privacy", "noise", *plan, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["epsilon"] <= 1.0
    assert payload["noise_multiplier"] == 0.2902
