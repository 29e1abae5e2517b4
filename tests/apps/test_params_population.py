"""``secagg params --population``: the k and t of a round drawn from a larger
federation, sized for the population's colluders (second review of colluders,
2026-12-07). Before, the command sized every round as its own population, so an
operator sampling 20 of 100 saw k and t for 2 colluders where the round runs for 5, and
had no way to see that 20 of 1 000 is refused."""

from __future__ import annotations

import json

from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.protocol import RoundConfig


def _params(*flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["params", *flags])
    return result.exit_code, result.output


def test_a_sampled_round_s_k_and_t_are_the_plan_s_for_its_population() -> None:
    config = RoundConfig.create(20, 1, active=True, population=100)
    code, out = _params("--clients", "20", "--population", "100", "--semi-malicious")
    assert code == 0, out
    assert f"k={config.degree} neighbours, t={config.threshold}" in out
    assert "drawn from a population of 100, sized for its 5 colluders" in out
    own = RoundConfig.create(20, 1, active=True)
    assert (own.degree, own.threshold) != (config.degree, config.threshold)


def test_a_round_too_small_for_its_population_is_one_line_naming_the_flags() -> None:
    code, out = _params("--clients", "20", "--population", "1000")
    assert code == 2, out
    assert "Traceback" not in out
    assert "'--clients' / '--population' / '--corrupt'" in out
    assert "at least 52 clients" in out


def test_a_population_below_the_round_or_past_the_limit_is_the_flag_s_mistake() -> None:
    for value in ("19", "1000001", "1"):
        code, out = _params("--clients", "20", "--population", value)
        assert code == 2, out
        assert "--population" in out and "Traceback" not in out


def test_without_population_or_with_the_round_itself_nothing_changes() -> None:
    assert _params("--clients", "20")[1] == _params("--clients", "20", "--population", "20")[1]


def test_round_runs_a_sampled_round_as_planned_for_its_population() -> None:
    """``secagg round --population``: the round runs with the k and t of the plan, the
    clients counting the population's colluders (their policy takes the setup)."""
    config = RoundConfig.create(20, 4, active=True, population=100)
    flags = ["--clients", "20", "--dim", "4", "--active", "--dropout", "0"]
    result = CliRunner().invoke(main, ["round", *flags, "--population", "100", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["config"]["k"] == config.degree
    assert report["config"]["threshold"] == config.threshold
    assert report["config"]["population"] == 100
    assert report["sum_matches_plaintext"] is True


def test_round_refuses_a_round_too_small_for_its_population_in_one_line() -> None:
    result = CliRunner().invoke(
        main, ["round", "--clients", "20", "--dim", "4", "--population", "1000"]
    )
    assert result.exit_code == 2, result.output
    assert "'--clients' / '--population' / '--corrupt'" in result.output
    result = CliRunner().invoke(main, ["round", "--clients", "20", "--population", "5"])
    assert result.exit_code == 2 and "--population" in result.output
