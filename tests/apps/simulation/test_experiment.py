"""``secagg simulate --seeds N``: every mechanism completes on several seeds, and the
summary is the plain mean and sample standard deviation of the seeds' figures."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.models.metrics import summarise
from secagg.apps.simulation.config import TUNING_SEEDS, SimulationConfig
from secagg.apps.simulation.experiment import ExperimentResult, experiment_lines
from secagg.errors import ConfigurationError

#: a small federation that still has fraud in every branch (the generator's floor)
SHORT = ["--branches", "3", "--rounds", "2", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0"]

#: the seeds of every mechanism's experiment (``--seed 4 --seeds 2``)
SEEDS = (4, 5)

MECHANISMS = {
    "record-dpsgd": ["--mechanism", "dpsgd"],
    "record-distributed": ["--unit", "record", "--mechanism", "distributed"],
    "client-central": ["--mechanism", "central", "--backend", "secagg+"],
    "client-distributed": ["--mechanism", "distributed", "--backend", "secagg+"],
    "off": ["--mechanism", "off"],
}


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_every_mechanism_completes_on_several_seeds_and_summarises_them(
    tmp_path: Path, mechanism: str
) -> None:
    """Issue 16: simulate completes with every mechanism on many seeds; a diverged model
    would be a row that says so (tests/integration/test_simulation.py), never a crash."""
    out = tmp_path / "exp"
    # two seeds: the fewest with a sample standard deviation (a third seed checked
    # nothing more and cost a third of the file's time)
    args = ["simulate", *SHORT, *MECHANISMS[mechanism], "--seed", "4", "--seeds", str(len(SEEDS))]
    level = logging.getLogger("secagg").level
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    # run in-process, the command hands the engine's logging back as it found it (it
    # once left it at ERROR, and later tests' log assertions saw nothing)
    assert logging.getLogger("secagg").level == level
    assert "Federated / centralized AUPRC (means)" in result.output
    payload = json.loads((out / "experiment.json").read_text())
    assert payload["seeds"] == list(SEEDS)
    assert payload["tuned_on_reported_seeds"] == []
    for seed in SEEDS:
        assert (out / f"seed-{seed}" / "report.md").stat().st_size > 0
        assert (out / f"seed-{seed}" / "model.npy").stat().st_size > 0
    if mechanism == "record-distributed":  # the report names the unit it protects
        summary = json.loads((out / "seed-4" / "summary.json").read_text())
        server = summary["privacy_parameters"]["server"]
        assert server["unit"] == "customer" and server["max_rows"] == 8
        assert server["customers"] * server["record_clip"] == pytest.approx(server["clip"])
        assert 1 <= server["honest_shares"] < server["expected_clients"] == 3
        assert server["rounds"] == 2
        # the accountant's shares of each released round, and the distinct counts every
        # round is charged at (the largest per-round bound of them, order by order)
        fed = next(v for k, v in summary["settings"].items() if k.startswith("federated"))
        assert len(server["noise_shares_per_round"]) == fed["rounds_completed"]
        assert server["noise_shares_charged"] == sorted(set(server["noise_shares_per_round"]))
        report = (out / "seed-4" / "report.md").read_text()
        assert "Customer-level DP with the noise added once" in report
        assert "Client-level" not in report
    # what training changed, said in the folder (the help said "head with a prior" for
    # every mechanism; record-level distributed DP trains every parameter)
    trained = {"record-distributed": "every parameter of 2 081"}.get(
        mechanism, "the output layer only of 2 081"
    )
    assert f"(trained: {trained})" in (out / "seed-4" / "report.md").read_text()
    # the summary is the plain mean and sample sd of the per-seed figures
    for setting, metrics in payload["summary"].items():
        for metric, summary in metrics.items():
            values = [payload["per_seed"][str(s)][setting][metric] for s in SEEDS]
            finite = [v for v in values if v is not None and math.isfinite(v)]
            assert summary["n"] == len(finite)
            assert summary["diverged"] == len(SEEDS) - len(finite)
            if len(finite) >= 2:
                assert summary["mean"] == pytest.approx(np.mean(finite), abs=1e-12)
                assert summary["std"] == pytest.approx(np.std(finite, ddof=1), abs=1e-12)
    fed = next(k for k in payload["summary"] if k.startswith("federated"))
    ratios = [payload["ratios"][str(s)] for s in SEEDS]
    for seed, ratio in zip(SEEDS, ratios, strict=True):
        expected = (
            payload["per_seed"][str(seed)][fed]["auprc"]
            / payload["per_seed"][str(seed)]["centralized (non-private)"]["auprc"]
        )
        assert ratio == pytest.approx(expected)
    assert payload["headline"]["worst_ratio"] == pytest.approx(min(ratios))


def _result(
    per_seed_auprc: dict[int, tuple[float, float]], config: SimulationConfig | None = None
) -> ExperimentResult:
    config = config or SimulationConfig(seeds=3)
    result = ExperimentResult(config=config, seeds=sorted(per_seed_auprc))
    for seed, (fed, central) in per_seed_auprc.items():
        result.per_seed[seed] = {
            "federated (secagg+)": {"auprc": fed},
            "centralized (non-private)": {"auprc": central},
        }
        result.ratios[seed] = fed / central if math.isfinite(fed) else math.nan
        result.verdicts[seed] = {}
        result.seconds[seed] = 1.0
    return result


def test_a_diverged_seed_is_counted_not_averaged_away() -> None:
    result = _result({0: (0.5, 0.8), 1: (math.nan, 0.7), 2: (0.6, 0.75)})
    fed = result.summary()["federated (secagg+)"]["auprc"]
    assert fed == summarise([0.5, math.nan, 0.6])
    assert fed.n == 2 and fed.diverged == 1 and fed.mean == pytest.approx(0.55)
    head = result.headline()
    assert head["diverged_seeds"] == [1]
    assert math.isnan(head["worst_ratio"])  # no worst seed while one has no ratio
    # the means' ratio uses the seeds where both settings have a figure
    assert head["mean_ratio"] == pytest.approx(np.mean([0.5, 0.6]) / np.mean([0.8, 0.75]))
    assert any("Diverged (no ratio): seeds [1]" in line for line in experiment_lines(result))


def test_reporting_a_tuning_seed_is_flagged_as_in_sample() -> None:
    tuned = TUNING_SEEDS.start
    result = _result({tuned: (0.5, 0.8), tuned + 1: (0.6, 0.8)})
    assert result.tuned_on_reported_seeds == [tuned, tuned + 1]
    assert any("in-sample" in line for line in experiment_lines(result))
    clean = _result({0: (0.5, 0.8), 1: (0.6, 0.8)})
    assert not any("in-sample" in line for line in experiment_lines(clean))


def test_a_configuration_names_its_own_tuning_seeds(tmp_path: Path) -> None:
    """An example file tuned for its own scenario says on which seeds: the report names
    those, not the built-in defaults' 1000-1002, and reusing one of them is flagged."""
    config = SimulationConfig(seeds=2, tuning_seeds=(100, 101, 102))
    clean = _result({0: (0.5, 0.8), 1: (0.6, 0.8)}, config)
    lines = experiment_lines(clean)
    assert "The settings were chosen on seeds 100-102, none of which is reported here." in lines
    assert not any("1000" in line for line in lines)
    reused = _result({101: (0.5, 0.8), 102: (0.6, 0.8)}, config)
    assert reused.tuned_on_reported_seeds == [101, 102]
    assert any("the settings were chosen on them" in line for line in experiment_lines(reused))
    # a default seed is not a tuning seed of a configuration tuned elsewhere
    assert _result({1000: (0.5, 0.8), 1001: (0.6, 0.8)}, config).tuned_on_reported_seeds == []
    path = tmp_path / "c.toml"
    path.write_text("[simulation]\ntuning_seeds = [7, 9, 12]\n")
    loaded = SimulationConfig.load(path)
    assert loaded.tuning_seeds == (7, 9, 12)
    assert "The settings were chosen on seeds 7, 9, 12," in "".join(
        experiment_lines(_result({0: (0.5, 0.8), 1: (0.6, 0.8)}, loaded))
    )
    for bad in ("'100-102'", "[1.5, 2]", "[true]"):
        path.write_text(f"[simulation]\ntuning_seeds = {bad}\n")
        with pytest.raises(
            ConfigurationError, match=r"\[simulation\] tuning_seeds must be a list of integers"
        ):
            SimulationConfig.load(path)
    path.write_text("[simulation]\ntuning_seeds = [-1]\n")
    with pytest.raises(ConfigurationError, match="tuning_seeds must be a list of seeds"):
        SimulationConfig.load(path)


def test_seeds_out_of_range_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--seeds", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--seeds must lie in [1, 1000]" in result.output
    assert "Traceback" not in result.output


def test_an_experiment_on_ray_starts_ray_once_for_all_its_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session per seed started and stopped a local Ray instance each time (about
    3.5 s apiece here); the experiment now holds one and every seed's run joins it."""
    import contextlib

    import secagg.apps.simulation.experiment as experiment
    import secagg.apps.simulation.report as report
    import secagg.runtime.ray_engine as ray_engine

    sessions: list[str | None] = []
    inside: list[bool] = []
    active = {"depth": 0}

    @contextlib.contextmanager
    def counting_session(address: str | None = None, **_: object):  # type: ignore[no-untyped-def]
        sessions.append(address)
        active["depth"] += 1
        try:
            yield None
        finally:
            active["depth"] -= 1

    def fake_run(config: SimulationConfig, out: Path, progress: object) -> object:
        inside.append(active["depth"] == 1)
        out.mkdir(parents=True, exist_ok=True)  # as a seed's run makes its folder
        fields = {
            "branch_verdicts": {},
            "seconds": 0.0,
            "settings": {},
            "notes": [],
            "config": config,
        }
        return type("Run", (), fields)()

    monkeypatch.setattr(ray_engine, "ray_session", counting_session)
    monkeypatch.setattr(experiment, "run_simulation", fake_run)
    monkeypatch.setattr(experiment, "headline_values", lambda run: {})
    monkeypatch.setattr(experiment, "write_experiment", lambda result, out: [])
    monkeypatch.setattr(report, "write_run_folder", lambda run, out: None)

    # small data: the later seeds' checks before any training (data, DP-SGD calibration)
    # still run for real, but took 51 of the test's 52 s at the default 120 000 rows
    small = SimulationConfig(branches=4, train_rows=2000, test_rows_per_branch=400)
    config = small.with_changes(seed=7, seeds=3, engine="ray", ray_address="auto")
    result = experiment.run_experiment(config, tmp_path)
    assert sessions == ["auto"] and inside == [True, True, True]
    assert sorted(result.ratios) == [7, 8, 9]

    sessions.clear()
    inside.clear()
    experiment.run_experiment(small.with_changes(seed=7, seeds=2), tmp_path)
    assert sessions == [] and inside == [False, False]  # in-process: no Ray at all


def test_the_wall_time_line_adds_up_to_the_total() -> None:
    """The experiment's wall time is the seeds' runs plus the rest, each said: it read
    "8.3 min (98 s a seed)" where 5 x 98 s is 8.2 min and the rest went unsaid."""
    result = _result({0: (0.5, 0.8), 1: (0.6, 0.8), 2: (0.55, 0.8)})
    result.seconds = {0: 100.0, 1: 90.0, 2: 110.0}
    result.total_seconds = 330.0
    (line,) = [x for x in experiment_lines(result) if "Wall time" in x]
    assert "Wall time 5.5 min: 100 s a seed's run, and 30 s checking" in line


@pytest.mark.parametrize("judged", [2, 5, 8, 40])
def test_the_chance_line_is_the_binomial_tail_by_enumeration(judged: int) -> None:
    """The chance of ``behind`` or more comparisons below 0 when each is 2.5 %, against
    the definition: the probability of every pattern of outcomes (for small counts) or
    the sum of the binomial terms written out."""
    import itertools

    from secagg.apps.simulation.report import CHANCE_BEHIND, chance_behind_text

    p = CHANCE_BEHIND
    for behind in range(1, min(judged, 5) + 1):
        if judged <= 8:
            tail = sum(
                p ** sum(o) * (1 - p) ** (judged - sum(o))
                for o in itertools.product((0, 1), repeat=judged)
                if sum(o) >= behind
            )
        else:
            tail = 1 - sum(
                math.comb(judged, k) * p**k * (1 - p) ** (judged - k) for k in range(behind)
            )
        text = chance_behind_text(judged, behind)
        assert f"about {p * judged:.1f} of {judged}" in text
        assert f"{behind} or more, as here, in {100 * tail:.1f} % of repetitions" in text
    assert f"in {100 * (1 - p) ** judged:.0f} % of repetitions" in chance_behind_text(judged, 0)


def test_the_experiment_report_gives_the_chance_of_its_branch_count() -> None:
    result = _result({0: (0.5, 0.8), 1: (0.6, 0.8)})
    result.verdicts = {
        0: {
            f"branch-0{b}": {"judged": True, "at_least_local": b != 1, "enough_frauds": True}
            for b in range(1, 5)
        },
        1: {
            f"branch-0{b}": {"judged": True, "at_least_local": True, "enough_frauds": True}
            for b in range(1, 5)
        },
    }
    lines = experiment_lines(result)
    assert any("7 of 8 judged" in x for x in lines)
    assert any("about 0.2 of 8 would fall behind" in x and "1 or more" in x for x in lines)


@pytest.mark.parametrize("diverged_seeds", [1, 2, 3])
def test_a_setting_diverged_in_every_seed_reads_diverged_in_the_table(diverged_seeds: int) -> None:
    """A setting with no finite figure because its model diverged in every seed read
    "-" in experiment.md, the cell of a figure the setting does not have (a baseline's
    last rounds): the divergence the single run's table prints was hidden."""
    seeds = list(range(diverged_seeds))
    result = _result(dict.fromkeys(seeds, (0.5, 0.8)), SimulationConfig(seeds=diverged_seeds))
    for seed in seeds:
        result.per_seed[seed]["local-only"] = {"auprc": math.nan, "last_rounds_auprc": None}
    table = [line for line in experiment_lines(result) if line.startswith("| local-only |")]
    assert len(table) == 1
    cells = [cell.strip() for cell in table[0].strip("|").split("|")][1:]
    plural = "s" if diverged_seeds != 1 else ""
    assert cells[0] == f"diverged in {diverged_seeds} seed{plural} (n=0)"
    # the column it has no figure for stays "-": nothing diverged there
    header = next(line for line in experiment_lines(result) if line.startswith("| setting |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
    assert all(c == "-" for c, name in zip(cells, columns, strict=True) if name != "AUPRC")


def test_experiment_json_names_the_settings_that_diverged_in_each_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """experiment.json writes NaN as null, so a diverged model's per-seed figure read
    the same as a figure the setting has not (a baseline's last rounds): the seeds'
    diverged settings are listed beside per_seed."""
    from types import SimpleNamespace

    from secagg.apps.simulation import report
    from secagg.apps.simulation.experiment import _record_seed, write_experiment

    monkeypatch.setattr(report, "divergence_lines", lambda run: [])
    monkeypatch.setattr(report, "privacy_lines", lambda run: [""])
    figures = {"auprc": 0.5, "roc_auc": 0.9}

    def setting(diverged: bool) -> dict[str, Any]:
        pooled = dict.fromkeys(figures, math.nan) if diverged else figures
        return {"pooled": pooled, "diverged": diverged, "mean_branch_auprc": math.nan}

    result = ExperimentResult(config=SimulationConfig(seeds=2), seeds=[0, 1])
    for seed in result.seeds:
        settings = {
            "local-only": setting(seed == 1),
            "federated (secagg+)": setting(False) | {"last_rounds": {"auprc": 0.5}},
            "centralized (non-private)": setting(False),
        }
        run = SimpleNamespace(settings=settings, branch_verdicts={}, seconds=1.0, notes=[])
        _record_seed(result, seed, run)  # type: ignore[arg-type]
    write_experiment(result, tmp_path)
    payload = json.loads((tmp_path / "experiment.json").read_text())
    assert payload["diverged_settings"] == {"0": [], "1": ["local-only"]}
    # both nulls the list tells apart: seed 1's diverged AUPRC, a baseline's last rounds
    assert payload["per_seed"]["1"]["local-only"]["auprc"] is None
    assert payload["per_seed"]["0"]["local-only"]["last_rounds_auprc"] is None
