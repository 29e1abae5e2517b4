"""Privacy figures in the simulator's report.md and experiment.md never flatter.

Costs and sensitivities (ε, δ, a prior's spend, a clip, a sample rate, a budget) are
rounded up at the precision shown; noise multipliers down. To the nearest, a clip of
1.2345641 read 1.23456 (a smaller sensitivity than ran), a noise multiplier of 1.2345678
read 1.23457 (more noise than was added), and a feature-statistics ε of 0.6200045 read
0.620 (the default run's own figure, now 0.621)."""

from __future__ import annotations

from secagg.apps.simulation import report


def test_the_feature_statistics_line_rounds_clip_up_noise_down_and_epsilon_up() -> None:
    stats = {
        "source": "secure",
        "charged_to_branches": True,
        "backend": "secagg+",
        "bound": 1.2345641,
        "noise_multiplier": 1.2345678,
        "epsilon_alone": 0.6200044983104362,
    }
    line = report._statistics_line(stats, 1.0000001e-5)
    assert "±1.23457," in line
    assert "z = 1.23456 per block" in line
    assert "ε = 0.621 alone" in line
    assert "δ = 1.00001e-05" in line


def test_the_noise_once_table_rounds_each_figure_toward_the_safe_side() -> None:
    server = {
        "unit": "customer",
        "clip": 2.0000011,
        "record_clip": 0.00123456,
        "noise_multiplier": 6.80059,
        "delta": 1e-5,
        "accountant": "pld",
        "rounds": 10,
        "epsilon_budget": 3.0000004,
        "customers": 800,
    }
    row = report._noise_once_rows(server)[-1]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # clip C, C / N and the budget up; z down
    assert cells[2] == "2.00001"
    assert cells[3] == "0.001235"
    assert cells[4] == "6.8"
    assert cells[-1] == "ε ≤ 3.00001"


def test_the_effective_noise_multiplier_is_shown_down_or_as_a_dash() -> None:
    assert report._noise_or_dash(1.23456) == "1.2345"
    assert report._noise_or_dash(None) == "-"


def test_a_prior_s_cost_is_shown_up() -> None:
    assert report._up(1.2345641) == "1.23457"
    assert report._up(1e-5) == "1e-05"
    assert report._down(6.80009, 4) == "6.8"
