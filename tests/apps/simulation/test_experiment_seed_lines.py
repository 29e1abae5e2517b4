"""experiment.md folds the seeds' lines that differ only in the branches and counts they
name into one, "(and N more like it, naming other branches)". It ignored every digit, so
two seeds' privacy lines with different ε were one line showing the first seed's ε, and
the sentence said they differed in branches (report review, 2026-12-05)."""

from __future__ import annotations

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.experiment import ExperimentResult, experiment_lines

FED, CENTRAL = "federated (secagg+)", "centralized (non-private)"


def _experiment(advisories: dict[int, list[str]]) -> ExperimentResult:
    result = ExperimentResult(config=SimulationConfig(seeds=3), seeds=[0, 1, 2])
    for seed in result.seeds:
        result.per_seed[seed] = {FED: {"auprc": 0.5}, CENTRAL: {"auprc": 0.6}}
        result.ratios[seed] = 0.5 / 0.6
        result.verdicts[seed] = {}
        result.epsilons[seed] = 2.9
        result.seconds[seed] = 1.0
    result.advisories.update(advisories)
    return result


def _prior_line(epsilon: str) -> str:
    return f"prior: model.npy already spent ε = 1.25; this run alone: ε = {epsilon}, δ = 1e-05"


def test_each_seeds_privacy_figure_is_printed_with_its_seed() -> None:
    lines = experiment_lines(
        _experiment(
            {0: [_prior_line("2.994")], 1: [_prior_line("2.981")], 2: [_prior_line("2.994")]}
        )
    )
    assert f"- seeds 0, 2: {_prior_line('2.994')}" in lines
    assert f"- seed 1: {_prior_line('2.981')}" in lines
    assert not [line for line in lines if "more like it" in line]


def test_a_privacy_line_naming_other_branches_is_still_folded() -> None:
    def line(branch: str) -> str:
        return f"ε of {branch} ended above the others' (δ = 1e-05)"

    lines = experiment_lines(
        _experiment({0: [line("branch-01")], 1: [line("branch-02")], 2: [line("branch-03")]})
    )
    folded = [x for x in lines if "ended above" in x]
    assert folded == [
        f"- every seed: {line('branch-01')} (and 2 more like it, naming other branches: "
        "each seed's report.md has its own)"
    ]


def test_lines_whose_counts_differ_say_so() -> None:
    def line(round_number: int) -> str:
        return f"ran its 3 planned rounds; 1 aborted (round {round_number}): below the threshold"

    lines = experiment_lines(_experiment({0: [line(2)], 1: [line(3)], 2: [line(3)]}))
    folded = [x for x in lines if "planned rounds" in x]
    assert folded == [
        f"- every seed: {line(2)} (and 1 more like it, naming other branches or counts: "
        "each seed's report.md has its own)"
    ]


def test_the_last_rounds_column_says_what_it_averages() -> None:
    """experiment.md's "AUPRC, last rounds" column said neither which rounds nor how
    many (the run reports the last 3 completed ones, fewer where fewer completed)."""
    result = _experiment({})
    for seed in result.seeds:
        result.per_seed[seed][FED]["last_rounds_auprc"] = 0.5
    lines = experiment_lines(result)
    table_end = max(i for i, line in enumerate(lines) if line.startswith("| "))
    assert lines[table_end + 2] == (
        "*AUPRC, last rounds*: each seed's federated pooled AUPRC averaged over its last 3 "
        "completed rounds (over all of them where fewer completed; each seed's report.md "
        "names the rounds), the final round alone wobbling."
    )
    # no column, no sentence
    assert not any("*AUPRC, last rounds*" in line for line in experiment_lines(_experiment({})))
