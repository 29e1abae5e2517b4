"""Many participants (issue 18, item 3): the ``many`` world, Poisson client sampling in
the simulator, and examples/many_participants*.toml shrunk to a test's size."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation.config import (
    MAX_NOTES_PER_KIND,
    SimulationConfig,
    check_branch_data,
    listed_names,
)
from secagg.apps.simulation.runner import (
    _client_level_noise,
    _distributed_noise,
    expected_cohort,
    federation_config,
    honest_shares,
)
from secagg.errors import ConfigurationError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MANY = dict(branches=1000, world="many", train_rows=300_000, test_rows_per_branch=200)


def test_the_sampling_rate_is_validated_and_read_from_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"sample_rate must lie in \(0, 1\]"):
        SimulationConfig(sample_rate=0.0)
    with pytest.raises(ConfigurationError, match=r"sample_rate must lie in \(0, 1\]"):
        SimulationConfig(sample_rate=1.5)
    with pytest.raises(ConfigurationError, match="expected branches in a round"):
        SimulationConfig(branches=8, sample_rate=0.2)  # 1.6 expected
    with pytest.raises(ConfigurationError, match=r"needs simulation\.sample_rate = 1"):
        SimulationConfig(branches=100, train_rows=10_000, unit="record",
                         mechanism="distributed", sample_rate=0.5)  # fmt: skip
    path = tmp_path / "c.toml"
    # half of 40: a drawn round is sized for the colluders of all 40 (a quarter of them,
    # the default corrupt fraction, all of whom may be drawn): rounds of 10 cannot run
    path.write_text("[simulation]\nsample_rate = 0.5\nbranches = 40\n[data]\nworld = 'many'\n")
    config = SimulationConfig.load(path)
    assert (config.sample_rate, config.world) == (0.5, "many")
    path.write_text("[simulation]\nsample_rate = 0.25\nbranches = 40\n[data]\nworld = 'many'\n")
    with pytest.raises(ConfigurationError, match="drawn from a population of 40"):
        SimulationConfig.load(path)
    path.write_text("[simulation]\nsample_rate = 'often'\n")
    with pytest.raises(ConfigurationError, match=r"\[simulation\] sample_rate must be"):
        SimulationConfig.load(path)


def test_the_accountants_use_the_sampling_rate_as_the_runtime_does(tmp_path: Path) -> None:
    """Central: no amplification is credited (a round's members see each other); the
    noise is sized for the 9 of 10 rounds the most sampled of 1 000 participants likely
    takes part in, and the runtime's plan spends no more than the target. Distributed:
    no amplification either (the untrusted server draws the cohort), so z is the one of
    q = 1, sized for the expected cohort q * N."""
    from secagg.dp.accounting import noise_multiplier_for

    central = SimulationConfig(**MANY, unit="client", mechanism="central", epsilon=3.0,
                               sample_rate=0.3, rounds=10)  # fmt: skip
    z_sampled, z_all = _client_level_noise(central), _client_level_noise(central, 1.0)
    assert z_sampled == pytest.approx(noise_multiplier_for(3.0, 1e-5, 1.0, 9))
    assert z_all / 1.1 < z_sampled < z_all  # 9 rounds instead of 10: a little less noise
    fed = federation_config(central, 2081, tmp_path / "s.sqlite")
    assert fed.sampling.kind == "poisson" and fed.sample_rate == 0.3
    assert fed.expected_clients == pytest.approx(300)
    assert fed.dp is not None and fed.dp.noise_multiplier == z_sampled
    assert fed.mechanism().accounted_rate == 1.0
    planned = fed.dp.plan(
        num_clients=1000, sample_rate=0.3, rounds=10, dimension=2081, bits=32,
        corrupt_fraction=fed.backend.corrupt_fraction,
    )  # fmt: skip
    assert planned is not None and planned.planned_epsilon() <= 3.0 + 1e-9

    distributed = central.with_changes(mechanism="distributed")
    assert expected_cohort(distributed) == 300
    z = _distributed_noise(distributed, 2081)
    assert z >= z_all  # no credit for sampling, and discreteness costs a little
    fed = federation_config(distributed, 2081, tmp_path / "d.sqlite")
    assert fed.mechanism().accounted_rate == 1.0
    assert fed.dp is not None and fed.dp.noise_multiplier == z
    # every participant every round: the shares of 1 000, of which 850 are counted honest
    everyone = distributed.with_changes(sample_rate=1.0, corrupt_fraction=0.05,
                                        tolerated_dropout=0.1)  # fmt: skip
    assert _distributed_noise(everyone, 2081) <= z


def test_a_sampled_cohort_is_sized_for_every_colluder_of_the_population() -> None:
    """The server draws the cohort of 300 from 1 000 participants, 50 of them colluders
    at a corrupt fraction of 0.05: it can put all 50 in, not the 15 of a cohort's own
    5 % (DP audit, 2026-12-03). The noise shares are sized for what is left."""
    sampled = SimulationConfig(**MANY, unit="client", mechanism="distributed", epsilon=3.0,
                               sample_rate=0.3, rounds=10, corrupt_fraction=0.05,
                               tolerated_dropout=0.1)  # fmt: skip
    assert honest_shares(sampled) == 300 - 50 - 30
    everyone = sampled.with_changes(branches=300, train_rows=90_000, sample_rate=1.0)
    assert honest_shares(everyone) == 300 - 15 - 30


def test_a_thousand_fraud_free_participants_are_one_note_not_a_thousand() -> None:
    """Most participants of the many world have no fraud: that is said, once per kind,
    with the count, never silently and never as 1 000 lines."""
    config = SimulationConfig(**MANY)
    counts = [(f"branch-{b + 1:02d}", 300, int(b % 3 == 0), int(b % 4 == 0)) for b in range(1000)]
    notes = check_branch_data(config, counts)
    assert len(notes) == 2
    assert notes[0].startswith("666 of 1000 branches' training sets hold no fraud (branch-02,")
    assert notes[1].startswith("750 of 1000 branches' test sets hold no fraud (branch-02,")
    assert "no per-branch comparison" in notes[1]
    few = check_branch_data(SimulationConfig(), [(f"b{i}", 300, int(i == 0), 0) for i in range(3)])
    assert len(few) == 5 and 3 <= MAX_NOTES_PER_KIND  # a few are still named one by one
    assert few[0].startswith("b1's training set (300 rows) has no fraud")
    with pytest.raises(ConfigurationError, match="nothing to learn"):
        check_branch_data(config, [(f"b{i}", 300, 0, 0) for i in range(1000)])


#: examples/many_participants*.toml shrunk: 24 participants (above the report's
#: MANY_BRANCHES = 20, so it summarises them), 2 rounds, about 150 rows each
SHRUNK_BRANCHES = 24
SHRUNK = ["--branches", str(SHRUNK_BRANCHES), "--rounds", "2", "--local-epochs", "1"]
SHRUNK += ["--train-rows", str(150 * SHRUNK_BRANCHES)]
SHRUNK += ["--test-rows", "100"]


@pytest.mark.parametrize(
    ("example", "mechanism"),
    [
        ("many_participants.toml", "distributed"),
        ("many_participants.toml", "central"),
        ("many_participants_sampled.toml", "central"),
    ],
)
def test_the_many_participant_scenario_completes_within_its_epsilon(
    tmp_path: Path, example: str, mechanism: str
) -> None:
    """The example scenario, shrunk, on two seeds with each client-level mechanism: it
    completes, the epsilon every seed reports is at most the target, the sampling rate
    is the file's, and the report summarises the participants instead of listing each."""
    out = tmp_path / "exp"
    args = ["simulate", "--config", str(EXAMPLES / example), *SHRUNK]
    args += ["--mechanism", mechanism, "--seed", "3", "--seeds", "2", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    # the console counts the participants, it does not name 24 (or 1 000) of them
    assert result.output.count("branch-") <= 8, result.output
    payload = json.loads((out / "experiment.json").read_text())
    config = SimulationConfig.load(EXAMPLES / example)
    assert payload["config"]["world"] == "many" and payload["config"]["branches"] == SHRUNK_BRANCHES
    assert payload["config"]["sample_rate"] == config.sample_rate
    for seed in (3, 4):
        eps = payload["epsilons"][str(seed)]
        assert eps is not None and 0 < eps <= config.epsilon  # type: ignore[operator]
        summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        server = summary["privacy_parameters"]["server"]
        assert server["mechanism"] == mechanism
        assert server["sample_rate"] == config.sample_rate
        assert server["accounted_sample_rate"] == 1.0  # no amplification, ever
        fed = next(v for k, v in summary["settings"].items() if k.startswith("federated"))
        assert fed["rounds_completed"] >= 1 and not fed["above_target"]
        assert math.isfinite(fed["pooled"]["auprc"])
        report = (out / f"seed-{seed}" / "report.md").read_text()
        assert (
            f"{SHRUNK_BRANCHES} branches;" in report
            and "Every branch's figures are in summary.json" in report
        )
        assert len(report.splitlines()) < 200  # summarised, not one line per participant


def test_one_run_of_many_participants_names_a_few_branches_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    from secagg.apps.simulation.report import MANY_BRANCHES

    assert SHRUNK_BRANCHES > MANY_BRANCHES  # the run is one the report summarises
    args = ["simulate", "--config", str(EXAMPLES / "many_participants.toml"), *SHRUNK]
    args += ["--rounds", "1", "--seed", "3", "--out", str(tmp_path / "run"), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    pattern = (
        r"too few test frauds \(or cards holding them\) to judge well: "
        r"(branch-\d+, ){7}branch-\d+ and \d+ more"
    )
    assert re.search(pattern, output), output
    assert output.count("branch-") < 20, output


def test_a_console_line_names_a_few_branches_and_counts_the_rest() -> None:
    names = [f"branch-{b:02d}" for b in range(1, 1001)]
    assert listed_names(names[:8]) == ", ".join(names[:8])
    assert listed_names(names) == ", ".join(names[:8]) + " and 992 more"
    assert listed_names(names[:5], 3) == "branch-01, branch-02, branch-03 and 2 more"
    assert listed_names([]) == ""


def test_the_report_summarises_many_branches_instead_of_listing_each() -> None:
    """Per-branch lines, tables and plot curves are summarised above MANY_BRANCHES
    branches: the many world's report is read, not scrolled."""
    from secagg.apps.simulation.report import (
        MANY_BRANCHES,
        _dropout_lines,
        _listed_branches,
        epsilon_series,
        verdict_lines,
    )
    from secagg.apps.simulation.runner import ENOUGH_TEST_FRAUDS, SimulationResult

    n = MANY_BRANCHES + 10
    names = [f"branch-{b + 1:02d}" for b in range(n)]
    branches = [
        {"name": name, "train_rows": 300, "train_frauds": b % 2, "test_rows": 200,
         "test_frauds": ENOUGH_TEST_FRAUDS if b == 0 else b % 3, "fraud_rate": 0.001}
        for b, name in enumerate(names)
    ]  # fmt: skip
    rounds = [
        {"epsilon_client_level": None,
         "epsilon_record_level": {name: r * (1 + b / n) for b, name in enumerate(names)}}
        for r in (1, 2)
    ]  # fmt: skip
    verdicts = {
        name: {"test_frauds": b["test_frauds"], "judged": b["test_frauds"] >= 2,
               "enough_frauds": b["test_frauds"] >= ENOUGH_TEST_FRAUDS, "difference": 0.0,
               "low": -0.1, "high": 0.1, "at_least_local": True, "better": False}
        for name, b in zip(names, branches, strict=True)
    }  # fmt: skip
    result = SimulationResult(
        config=SimulationConfig(branches=n), branches=branches, rounds=rounds,
        branch_verdicts=verdicts,
    )  # fmt: skip
    series = epsilon_series(result)
    assert list(series) == [f"largest of {n} branches", f"smallest of {n} branches"]
    assert series[f"largest of {n} branches"] == pytest.approx([1 + (n - 1) / n, 2 * (2 - 1 / n)])
    assert series[f"smallest of {n} branches"] == [1.0, 2.0]
    listed, summary = _listed_branches(result)
    assert [b["name"] for b in listed] == ["branch-01"]
    assert f"{n} branches; 1 with at least {ENOUGH_TEST_FRAUDS} test frauds" in summary[-1]
    lines = verdict_lines(result)
    assert sum(line.startswith("| branch-") for line in lines) == 1  # only branch-01
    judged = sum(v["judged"] for v in verdicts.values())
    assert any(f"{n} branches: {judged} have the 2 test frauds or more" in x for x in lines)
    dropouts = [{"round": 1 + i % 2, "branch": names[i % n], "phase": "masked_input"}
                for i in range(60)]  # fmt: skip
    assert _dropout_lines(dropouts) == [
        "- round 1: 30 branches (30 at masked_input)",
        "- round 2: 30 branches (30 at masked_input)",
    ]
    assert len(_dropout_lines(dropouts[:3])) == 3  # a few are still named


def test_bytes_per_round_average_the_branches_that_took_part() -> None:
    """Review (a run with q = 0.5): "sent / branch / round" averaged in the branches the
    server did not sample, which send nothing (478 B against 783-903 B sent by those in
    the round)."""
    from secagg.apps.simulation.runner import bytes_per_branch_taking_part

    rounds = [
        {"bytes_sent": {"branch-01": 800, "branch-02": 0, "branch-03": 900, "branch-04": 0}},
        {"bytes_sent": {"branch-01": 0, "branch-02": 0, "branch-03": 0, "branch-04": 0}},
        {"bytes_sent": {"branch-01": 10, "branch-02": 20, "branch-03": 30, "branch-04": 40}},
    ]
    assert bytes_per_branch_taking_part(rounds) == [850.0, 0.0, 25.0]
