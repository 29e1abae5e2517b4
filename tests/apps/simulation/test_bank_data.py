"""``secagg simulate`` on the data a bank feeds in: a label column that is inverted, a
file too large for memory, and the notes of a run reaching the multi-seed report too
(simulate data audit, 2026-12-04)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError, SecAggError

#: a small CSV federation: 3 branches, one round of one epoch
SMALL = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--batch-size", "64"]
SMALL += ["--dropout", "0", "--quiet"]


def _csv(path: Path, rows: int = 3000, fraud_rate: float = 0.05, seed: int = 1) -> Path:
    """``rows`` rows of four numeric features and a 0/1 ``fraud`` column at ``fraud_rate``
    (seeded: the file is test data, not a secret)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < fraud_rate).astype(int)
    x = rng.normal(size=(rows, 4)) + y[:, None]
    with open(path, "w") as fh:
        fh.write("a,b,c,d,fraud\n")
        for features, label in zip(x, y, strict=True):
            fh.write(",".join(f"{v:.4f}" for v in features) + f",{label}\n")
    return path


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _one_line_error(result: Result, status: int = 2) -> str:
    """The error a command printed, checked to be one line with no traceback."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal of the data comes before any baseline trains."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("training started: the refusal came too late")

    monkeypatch.setattr(runner, "_run_baselines", refuse)


# --- an inverted label column ---------------------------------------------------------


@pytest.mark.usefixtures("no_training")
def test_an_inverted_label_column_is_refused_naming_the_column_and_share(
    tmp_path: Path,
) -> None:
    """Before: a file whose ``fraud`` column was 1 for the legitimate rows (95 % of them)
    trained and printed AUPRC 0.98 / 0.89 / 0.99, the base rate of the majority class,
    as a fraud model's result."""
    path = _csv(tmp_path / "inverted.csv", fraud_rate=0.95)
    out = tmp_path / "run"
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", *SMALL, "--out", str(out)]
    error = _one_line_error(_simulate(*args))
    assert (
        "'fraud'" in error
        and "2844 of 3000 rows (94.8 %)" in error
        and "--max-fraud-share" in error
    )
    assert "inverted" in error
    assert not out.exists()  # no run folder is left for a refused file


@pytest.mark.usefixtures("no_training")
def test_the_refusal_names_the_key_of_a_config_file(tmp_path: Path) -> None:
    path = _csv(tmp_path / "common.csv", fraud_rate=0.45)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[data]\nsource = "csv"\npath = "{path}"\nlabel = "fraud"\nmax_fraud_share = 0.4\n'
    )
    error = _one_line_error(
        _simulate("--config", str(config), *SMALL, "--out", str(tmp_path / "r"))
    )
    assert "above data.max_fraud_share = 0.4" in error, error


def test_a_majority_fraud_file_runs_when_the_user_raises_the_share(tmp_path: Path) -> None:
    """An undersampled file (fraud really is 60 % of its rows) is legitimate: the flag
    lets it through, and the limit in force is what the run records."""
    path = _csv(tmp_path / "balanced.csv", rows=1200, fraud_rate=0.6)
    config = SimulationConfig(
        source="csv", path=str(path), label="fraud", branches=3, max_fraud_share=0.7
    )
    branches = runner.load_branches(config)
    rate = sum(int(b.y_train.sum()) + int(b.y_test.sum()) for b in branches) / 1200
    assert 0.55 < rate < 0.65
    with pytest.raises(ConfigurationError, match=r"above data.max_fraud_share = 0.5"):
        runner.load_branches(SimulationConfig(source="csv", path=str(path), label="fraud"))


def test_the_share_refused_is_the_rows_share_at_the_boundary(tmp_path: Path) -> None:
    """Exactly at the limit is accepted; one fraud row above it is refused, with the
    counts (a share rounded to the limit would read as no reason)."""
    path = tmp_path / "half.csv"
    rows = ["a,fraud"] + [f"{i % 7},{i % 2}" for i in range(400)]
    path.write_text("\n".join(rows) + "\n")
    config = SimulationConfig(source="csv", path=str(path), label="fraud", branches=2)
    assert len(runner.load_branches(config)) == 2  # 200 of 400: 50 %, not above
    path.write_text("\n".join([*rows, "3,1"]) + "\n")
    with pytest.raises(ConfigurationError, match=r"201 of 401 rows \(50\.1 %\)"):
        runner.load_branches(config)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0", r"--max-fraud-share must lie in \(0, 1\]"),
        ("1.5", r"--max-fraud-share must lie in \(0, 1\]"),
        ("nan", r"--max-fraud-share"),
    ],
)
def test_a_max_fraud_share_out_of_range_is_one_line(value: str, match: str) -> None:
    args = ["--data", "csv", "--path", "x.csv", "--label", "y", "--max-fraud-share", value]
    import re

    assert re.search(match, _one_line_error(_simulate(*args)))


def test_a_max_fraud_share_with_synthetic_data_is_refused() -> None:
    """Synthetic data brings its own labels: the key would do nothing, and be recorded."""
    error = _one_line_error(_simulate("--max-fraud-share", "0.9"))
    assert "--max-fraud-share" in error and "CSV" in error


# --- every note of a run reaches the multi-seed report -------------------------------


def _unscaled_csv(path: Path) -> Path:
    """A file whose column ``amount`` lies three orders of magnitude above the others:
    with ``standardize = "none"`` every run notes it UNSCALED."""
    _csv(path, rows=1500, fraud_rate=0.08, seed=5)
    lines = path.read_text().splitlines()
    head, rows = lines[0].replace("a,", "amount,", 1), lines[1:]
    scaled = [f"{1000 * (5 + float(r.split(',', 1)[0])):.1f},{r.split(',', 1)[1]}" for r in rows]
    path.write_text("\n".join([head, *scaled]) + "\n")
    return path


def test_the_notes_of_every_seed_reach_the_multi_seed_report(tmp_path: Path) -> None:
    """Before: ``--seeds N`` printed and wrote (experiment.md) none of the runs' notes:
    the UNSCALED warning of ``standardize = "none"`` on a raw-scale column, the replay
    caveat of the ε and the feature statistics' line appeared only in each seed's own
    folder, where the console reader never looks."""
    path = _unscaled_csv(tmp_path / "raw.csv")
    config = tmp_path / "c.toml"
    config.write_text('[data]\nstandardize = "none"\n')
    common = ["--config", str(config), "--data", "csv", "--path", str(path), "--label", "fraud"]
    common += [*SMALL, "--seed", "4"]
    out = tmp_path / "many"
    many = _simulate(*common, "--seeds", "2", "--out", str(out))
    assert many.exit_code == 0, many.output
    # seed 4's own folder holds what a single run of it writes (a single run of its own
    # here cost a third of the test and said nothing more)
    summary = json.loads((out / "seed-4" / "summary.json").read_text())
    notes = summary["notes"]
    assert any(note.startswith("UNSCALED: ") and "'amount'" in note for note in notes)
    console = " ".join(many.output.split())
    written = " ".join((out / "experiment.md").read_text().split())
    for note in notes:  # every note, in the console and in experiment.md
        assert " ".join(note.split()) in console, note
        assert " ".join(note.split()) in written, note
    # and the privacy lines that are no figure of one seed: the replay caveat, the
    # feature statistics (the ε line's figure is the seed's own: 'at most' covers it)
    assert len(summary["privacy"]) > 1
    for line in summary["privacy"][1:]:
        assert " ".join(line.split()) in console, line


def _experiment(above: tuple[int, ...] = ()) -> Any:
    from secagg.apps.simulation.experiment import ExperimentResult

    result = ExperimentResult(config=SimulationConfig(seeds=3), seeds=[0, 1, 2])
    fed, central = "federated (secagg+)", "centralized (non-private)"
    for seed in (0, 1, 2):
        result.per_seed[seed] = {fed: {"auprc": 0.5}, central: {"auprc": 0.6}}
        result.ratios[seed] = 0.5 / 0.6
        result.verdicts[seed] = {}
        result.epsilons[seed] = 3.5 if seed in above else 2.9
        result.seconds[seed] = 1.0
        result.notes[seed] = ["UNSCALED: column x" if seed else "a note of seed 0 only"]
    result.above_target.extend(above)
    return result


def test_a_seed_above_its_epsilon_target_is_marked_in_the_experiment() -> None:
    """The single run marks ABOVE THE TARGET; the experiment said only 'at most 3.500'."""
    from secagg.apps.simulation.experiment import experiment_lines

    line = next(x for x in experiment_lines(_experiment((1,))) if "ε per run" in x)
    assert "ABOVE THE TARGET ε = 3 in seed 1" in line
    line = next(x for x in experiment_lines(_experiment()) if "ε per run" in x)
    assert "within the target ε = 3" in line and "ABOVE" not in line


def test_a_note_is_listed_once_with_the_seeds_it_came_from() -> None:
    from secagg.apps.simulation.experiment import experiment_lines

    lines = experiment_lines(_experiment())
    assert "- note (seeds 1, 2): UNSCALED: column x" in lines
    assert "- note (seed 0): a note of seed 0 only" in lines


def test_this_runs_epsilon_beside_a_priors_is_rounded_up() -> None:
    """The experiment printed each run's own ε with a prior from a file as ``:.3f``
    (2.9991 read 2.999, below what the run spent); every ε printed is rounded up."""
    from secagg.apps.simulation.experiment import experiment_lines

    result = _experiment()
    result.config = SimulationConfig(seeds=3, prior_path="prior.npy", prior_epsilon=1.0)
    result.epsilons_this_run = {0: 2.9991, 1: 2.5, 2: 2.0}
    result.epsilons = {s: e + 1.0 for s, e in result.epsilons_this_run.items()}
    line = next(x for x in experiment_lines(result) if "ε per run" in x)
    assert "(at most 3.000)" in line, line


# --- a file too large for memory: the estimate covers the run's peak ------------------


def _wide_csv(path: Path, rows: int, columns: int = 10) -> Path:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, columns))
    y = (rng.random(rows) < 0.05).astype(int)
    with open(path, "w") as fh:
        fh.write(",".join(f"f{j}" for j in range(columns)) + ",fraud\n")
        fh.writelines(
            ",".join(f"{v:.3f}" for v in r) + f",{label}\n" for r, label in zip(x, y, strict=True)
        )
    return path


def test_a_file_whose_run_would_not_fit_is_refused_though_its_table_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader checked its own 2 copies of the table; the run holds about 3 (the
    pooled centralized rows beside the branches'): a file between the two was read,
    split and standardised, then ran out of memory with no message. Now it is refused
    at its first block, naming the run's copies."""
    from secagg.apps import cli_types
    from secagg.apps.models.tabular import load_labelled_csv

    path = _wide_csv(tmp_path / "t.csv", rows=5_000)
    per_copy = 5_000 * (4 * 10 + 1)
    block = 4096 * 11 * 8
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 3 * per_copy + block)
    assert load_labelled_csv(path, "fraud").x.shape == (5_000, 10)  # the loader's 2 fit
    config = SimulationConfig(source="csv", path=str(path), label="fraud", branches=3)
    with pytest.raises(ConfigurationError, match=r"in a simulation \(4 copies of it at the peak\)"):
        runner.load_branches(config)


@pytest.fixture(scope="module")
def wide_100k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 100 000 x 10 file both standardisations load, written once (read only). Its
    size is the measurement's: at 50 000 rows, or 5 columns, the loader's fixed block
    alone puts the secure peak above 2.9 tables with today's code."""
    return _wide_csv(tmp_path_factory.mktemp("wide") / "t.csv", rows=100_000)


@pytest.mark.parametrize("standardize", ["none", "secure"])
def test_loading_a_csv_holds_few_copies_of_its_table(wide_100k: Path, standardize: str) -> None:
    """Measured with tracemalloc (numpy's allocations), 100 000 rows x 10 features: the
    data stage held 3.88 tables at its peak with ``standardize = "none"`` (the UNSCALED
    check pooled every training row, their absolute values and a sorted copy) and 3.05
    with secure statistics (the raw and standardised branches whole at once, and three
    float64 copies of a branch in the standardisation); now 2.75 and 2.63, about the
    loader's own 2 copies and its block. The values are the same (see the replayed
    default run)."""
    import tracemalloc

    config = SimulationConfig(
        source="csv", path=str(wide_100k), label="fraud", branches=3, standardize=standardize,
        mechanism="off",
    )  # fmt: skip
    tracemalloc.start()
    try:
        branches, _, names = runner._load_data(config)
        runner.unscaled_notes(config, branches, names)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    table = sum(
        b.x_train.nbytes + b.x_test.nbytes + b.y_train.size + b.y_test.size for b in branches
    )
    assert peak < 2.9 * table, peak / table


def test_the_standardisation_in_slices_gives_the_same_values() -> None:
    """:meth:`FeatureStatistics.apply` a slice of rows at a time: bit for bit the values
    of the whole array at once."""
    from secagg.apps.simulation import feature_stats

    rng = np.random.default_rng(3)
    x = (rng.standard_cauchy(size=(150_000, 5)) * 100).astype(np.float32)
    stats = feature_stats.public_feature_statistics(x[:1000], origin="test")
    whole = ((x.astype(np.float64) - stats.mean) / stats.std).astype(np.float32)
    assert np.array_equal(stats.apply(x), whole)
    assert stats.apply(x[:3]).dtype == np.float32


# --- hostile values of simulate's flags and keys ---------------------------------------

#: a small synthetic run whose mistakes are found before any training
TINY = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
TINY += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("flags", "toml", "named"),
    [
        # an OverflowError traceback from Opacus's RDP analysis
        (["--noise-multiplier", "1e308"], "", "--noise-multiplier must lie in (0, 10000]"),
        ([], "[privacy]\nnoise_multiplier = inf", "privacy.noise_multiplier must lie in"),
        # a RuntimeError traceback from torch's SGD step
        (["--learning-rate", "1e308"], "", "--learning-rate must lie in (0, 100]"),
        ([], "[training]\nlearning_rate = inf", "training.learning_rate must lie in (0, 100]"),
        # a loss of infinities: every model diverged, exit 0
        ([], "[training]\npositive_weight = inf", "training.positive_weight must lie in"),
        # noise z * clip past float32: every local model diverged, exit 0
        (["--clip", "1e308"], "", "--clip must lie in (0, 1e+06]"),
        # named --backend and --branches for an infinite bound
        ([], "[privacy]\nupdate_clip = inf", "privacy.update_clip must lie in (0, 1e+06]"),
        # a Dirichlet of infinities is NaN: silently an even split
        ([], '[data]\nalpha = inf\nsource = "csv"\npath = "P"\nlabel = "fraud"', "data.alpha"),
        # 'the Gaussian std must be finite and non-negative', naming no key
        ([], "[data]\nstats_bound = 1e160", "data.stats_bound must lie in (0, 1e+09]"),
        ([], "[data]\nstats_noise_multiplier = 1e308", "data.stats_noise_multiplier must lie"),
        # statistics drowned in noise: the run went on (exit 0 after training)
        ([], "[data]\nstats_bound = 1e150", "data.stats_bound must lie in (0, 1e+09]"),
    ],
)
def test_a_value_no_run_can_use_is_one_line_naming_it(
    tmp_path: Path, flags: list[str], toml: str, named: str
) -> None:
    args = [*TINY, *flags, "--out", str(tmp_path / "run")]
    if toml:
        config = tmp_path / "c.toml"
        path = _csv(tmp_path / "t.csv")
        config.write_text(toml.replace('"P"', f'"{path}"') + "\n")
        args = ["--config", str(config), *args]
        if "source" in toml:
            args = [a for a in args if a not in ("--train-rows", "3000", "--test-rows", "400")]
    error = _one_line_error(_simulate(*args))
    assert named in error, error


def test_a_prior_path_that_is_no_npy_file_never_suggests_unpickling(tmp_path: Path) -> None:
    """A CSV given as --prior-path said numpy's 'This file contains pickled (object)
    data. If you trust the file you can load it unsafely using the allow_pickle=
    keyword argument or pickle.load()': advice to unpickle a file from anywhere."""
    path = _csv(tmp_path / "t.csv", rows=50)
    args = [*TINY, "--prior-path", str(path), "--prior-epsilon", "1", "--out", str(tmp_path / "r")]
    error = _one_line_error(_simulate(*args))
    assert "--prior-path" in error and "not a .npy file" in error, error
    assert "pickle" not in error.lower()
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    args[args.index(str(path))] = str(objects)
    error = _one_line_error(_simulate(*args))
    assert "Python objects" in error and "never unpickled" in error, error
    assert "allow_pickle" not in error


@pytest.fixture
def no_prior_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No prior is fitted and no baseline trains: the refusal must come before both."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("training started: the refusal came too late")

    monkeypatch.setattr(runner, "prior_model", refuse)
    monkeypatch.setattr(runner, "_run_baselines", refuse)


@pytest.mark.usefixtures("no_prior_fit")
@pytest.mark.parametrize(
    ("flags", "toml", "named"),
    [(["--epsilon", "1e-6"], "", "--epsilon 1e-06"), ([], "epsilon = 1e-6", "privacy.epsilon")],
)
def test_an_epsilon_dpsgd_cannot_calibrate_is_refused_before_any_training(
    tmp_path: Path, flags: list[str], toml: str, named: str
) -> None:
    """``--epsilon 1e-6``, which the charged feature statistics already spend, was refused
    by the local-only trainers: after the data and the public prior's fit (7 s here, a
    fit on the public world's rows at the default size), and its advice was to "choose a
    smaller target". ``--epsilon 10000`` (PRV's "Discrete mean differs significantly")
    is no longer refused: see tests/dp/test_prv_unevaluable.py."""
    args = [*TINY, *flags, "--out", str(tmp_path / "run")]
    if toml:
        (tmp_path / "c.toml").write_text(f"[privacy]\n{toml}\n")
        args = ["--config", str(tmp_path / "c.toml"), *args]
    error = _one_line_error(_simulate(*args))
    where = f"--config {tmp_path / 'c.toml'}: " if toml else ""  # a file's key: the file
    assert error.startswith(f"Error: {where}{named}"), error
    assert "nothing is left for DP-SGD" in error, error
    assert "choose a larger target or give" in error, error
    assert ("--noise-multiplier" if flags else "privacy.noise_multiplier") in error, error


@pytest.mark.usefixtures("no_prior_fit")
@pytest.mark.parametrize(
    ("flags", "toml", "named", "words"),
    [
        (["--mechanism", "central", "--epsilon", "1e-9"], "", "--epsilon 1e-09", "9.024e-05"),
        (
            ["--mechanism", "distributed"],
            "epsilon = 1e-5",
            "privacy.epsilon = 1e-05",
            "distributed discrete Gaussian",
        ),
    ],
)
def test_a_client_level_budget_no_noise_meets_is_refused_before_the_prior_fit(
    tmp_path: Path, flags: list[str], toml: str, named: str, words: str
) -> None:
    """``--unit client --epsilon 1e-9`` was refused by the federation's plan, checked
    after the public prior's fit (a minute at the default size): the plan needs only the
    trained size, which ``trainable`` and the model give without the prior's values."""
    args = [*TINY, "--unit", "client", *flags, "--out", str(tmp_path / "run")]
    if toml:
        (tmp_path / "c.toml").write_text(f"[privacy]\n{toml}\n")
        args = ["--config", str(tmp_path / "c.toml"), *args]
    error = _one_line_error(_simulate(*args))
    where = f"--config {tmp_path / 'c.toml'}: " if toml else ""  # a file's key: the file
    assert error.startswith(f"Error: {where}{named}") and "unreachable" in error, error
    assert words in error, error
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("no_prior_fit")
@pytest.mark.parametrize("noise", [["--noise-multiplier", "1"], []])
def test_a_dpsgd_delta_above_one_over_a_branchs_customers_names_the_flag_before_the_prior(
    tmp_path: Path, noise: list[str]
) -> None:
    """``--delta 0.999`` was refused in the DP engine's words ("delta must be below 1/n
    = 0.00649 for n = 154 customers"), naming no flag, and with a noise multiplier only
    by a trainer, after the prior's fit."""
    args = [*TINY, *noise, "--delta", "0.999", "--out", str(tmp_path / "run")]
    error = _one_line_error(_simulate(*args))
    assert error.startswith("Error: --delta 0.999 is not below 1 / n = "), error
    assert "'s n = " in error and "customers" in error, error
    assert not (tmp_path / "run").exists()


def test_a_huge_epsilon_is_calibrated_before_the_prior_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--epsilon 10000`` (PRV's "Discrete mean differs significantly" before) is
    calibrated for every branch, at PRV's floor, before the prior's fit starts."""
    from secagg.dp import dpsgd

    seen: list[list[float]] = []

    def prior_fit(*args: Any, **kwargs: Any) -> Any:
        seen.append([key[1] for key in dpsgd._CALIBRATIONS])
        raise AssertionError("training started")

    monkeypatch.setattr(dpsgd, "_CALIBRATIONS", {})
    monkeypatch.setattr(runner, "prior_model", prior_fit)
    result = _simulate(*TINY, "--epsilon", "10000", "--out", str(tmp_path / "run"))
    assert isinstance(result.exception, AssertionError), result.output
    assert len(seen) == 1 and seen[0] and set(seen[0]) == {10000.0}, seen  # one per (q, prior)


def test_the_caps_follow_the_layers_they_protect() -> None:
    """The learning rate's cap is the runtime's on the server's, the noise multiplier's
    the accountants' calibration ceiling: the config keeps literals (no import of the
    DP engine to load a file), and this keeps them equal."""
    from secagg.apps.simulation.config import CAPS, REAL_CAPS
    from secagg.dp.accounting import MAX_NOISE_MULTIPLIER
    from secagg.runtime.config import MAX_SEED, MAX_SERVER_LEARNING_RATE

    assert REAL_CAPS["learning_rate"] == MAX_SERVER_LEARNING_RATE
    assert REAL_CAPS["server_learning_rate"] == MAX_SERVER_LEARNING_RATE
    assert REAL_CAPS["noise_multiplier"] == MAX_NOISE_MULTIPLIER
    # a seed valid for simulate is valid in a federation file, and the other way round
    assert CAPS["seed"] == MAX_SEED
    # the defaults, and every example file, lie within them
    for path in Path(__file__).parents[3].joinpath("examples").glob("*.toml"):
        try:
            SimulationConfig.load(path)
        except ConfigurationError as exc:
            assert "must lie in (0, " not in str(exc), (path, exc)
    SimulationConfig()


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("source", ["flag", "file"])
def test_an_empty_out_is_refused_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """``--out ""`` (a template's empty variable) was the folder the command ran in:
    an empty one received the run's files, a full one was 'not empty'."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    if source == "flag":
        error = _one_line_error(_simulate(*TINY, "--out", ""))
        assert "--out is empty" in error, error
    else:
        (tmp_path / "c.toml").write_text('[simulation]\nout = ""\n')
        error = _one_line_error(_simulate("--config", str(tmp_path / "c.toml"), *TINY))
        assert "simulation.out is empty" in error, error
    assert list(here.iterdir()) == []


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("args", "named"),
    [
        # synthetic data: the generator makes its own branches, the split was ignored
        (["--partition", "feature"], "--partition is read only with a CSV"),
        (["--alpha", "0.1"], "--alpha is read only with a CSV"),
        (["--partition", "iid", "--alpha", "0.1"], "--partition, --alpha are read only"),
        # the IID split draws no Dirichlet proportions
        (["CSV", "--partition", "iid", "--alpha", "0.1"], "--alpha is the Dirichlet"),
        # no customer column: every row is its own unit, the cap did nothing
        (["CSV", "--max-rows-per-customer", "2"], "--max-rows-per-customer caps the rows"),
    ],
)
def test_a_key_the_run_would_ignore_is_refused(tmp_path: Path, args: list[str], named: str) -> None:
    if args[0] == "CSV":
        path = _csv(tmp_path / "t.csv")
        args = ["--data", "csv", "--path", str(path), "--label", "fraud", *args[1:], *SMALL]
    else:
        args = [*args, *TINY]
    error = _one_line_error(_simulate(*args, "--out", str(tmp_path / "run")))
    assert named in error, error


@pytest.mark.parametrize("partition", ["feature", "dirichlet"])
def test_an_alpha_past_its_cap_is_one_line_before_any_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partition: str
) -> None:
    """``--partition feature --alpha 1e308``: the Dirichlet's gamma variates summed to
    infinity, every share was 0, and every bin's rows but the minimum went to the last
    branch (1, 1, 1 and 19 997 of 20 000 rows): the opposite of the near-IID split a
    large alpha asks for, run to the end without a word."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the data was read: the refusal came too late")

    monkeypatch.setattr(runner, "load_data", refuse)
    monkeypatch.setattr(runner, "_load_data", refuse)
    path = _csv(tmp_path / "t.csv")
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", *SMALL]
    args += ["--partition", partition, "--alpha", "1e308", "--out", str(tmp_path / "run")]
    error = _one_line_error(_simulate(*args))
    assert error == "Error: --alpha must lie in (0, 1e+06], not 1e+308", error
    assert not (tmp_path / "run").exists()
    # at the cap, the split is the near-IID one a large alpha means
    monkeypatch.undo()
    config = SimulationConfig(
        source="csv", path=str(path), label="fraud", branches=3, partition=partition, alpha=1e6
    )
    rows = [b.x_train.shape[0] + b.x_test.shape[0] for b in runner.load_branches(config)]
    assert max(rows) - min(rows) <= 0.1 * max(rows), rows


def test_a_synthetic_runs_folder_records_no_split_and_replays(tmp_path: Path) -> None:
    """The run folder's config.toml of a synthetic run must replay: it records no key
    the run never read (partition, alpha), which the replay would refuse."""
    from secagg.apps.simulation.report import _write_config

    config = SimulationConfig()
    assert "partition" not in config.as_dict() and "alpha" not in config.as_dict()
    written = _write_config(type("R", (), {"config": config})(), tmp_path / "config.toml")
    text = written.read_text()
    assert "partition" not in text and "alpha" not in text
    with pytest.raises(ConfigurationError, match=r"data.alpha is read only with a CSV"):
        SimulationConfig(alpha=0.1)
    csv = SimulationConfig(source="csv", path="x.csv", label="y", alpha=0.1)
    assert csv.as_dict()["alpha"] == 0.1


def test_notes_naming_other_branches_on_each_seed_are_counted_not_listed() -> None:
    """40 participants without fraud name other branches on every seed: the experiment
    lists one of each kind and counts the rest (the console names a few branches)."""
    from secagg.apps.simulation.experiment import experiment_lines

    result = _experiment()
    for seed in (0, 1, 2):
        result.notes[seed] = [
            f"{30 + seed} of 40 branches' test sets hold no fraud (branch-0{seed}, "
            f"branch-1{seed}, branch-2{seed} and {27 + seed} more): their own AUPRC is n/a"
        ]
    notes = [line for line in experiment_lines(result) if line.startswith("- note")]
    assert len(notes) == 1, notes
    assert notes[0].startswith("- note (every seed): 30 of 40 branches' test sets")
    assert "(and 2 more like it, naming other branches" in notes[0]
    assert sum(line.count("branch-") for line in experiment_lines(result)) == 3


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_a_csv_runs_folder_records_only_the_split_it_made_and_replays(
    tmp_path: Path, partition: str
) -> None:
    """A CSV run without customers records no max_rows_per_customer, an IID one no
    alpha: its config.toml replays (the replay would refuse keys that did nothing)."""
    from secagg.apps.simulation.cli import build_config
    from secagg.apps.simulation.report import _write_config

    path = _csv(tmp_path / "t.csv", rows=300)
    config = SimulationConfig(
        source="csv", path=str(path), label="fraud", branches=3, partition=partition
    )
    recorded = config.as_dict()
    assert "max_rows_per_customer" not in recorded
    assert ("alpha" in recorded) == (partition != "iid")
    written = _write_config(type("R", (), {"config": config})(), tmp_path / "config.toml")
    assert build_config(str(written), {}) == config
    with pytest.raises(ConfigurationError, match=r"data.alpha is the Dirichlet concentration"):
        SimulationConfig(source="csv", path="x.csv", label="y", partition="iid", alpha=2.0)


# --- a customer column that names every row apart --------------------------------------


def _with_ids(path: Path, source: Path, repeat: int = 1) -> Path:
    """``source`` with a numeric ``id`` column first: row i gets i // ``repeat``, so 1
    makes every row its own customer and 2 pairs them."""
    lines = source.read_text().splitlines()
    body = [f"{i // repeat},{line}" for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(["id," + lines[0], *body]) + "\n")
    return path


def test_a_customer_column_of_unique_values_is_noted_in_console_and_report(
    tmp_path: Path,
) -> None:
    """Before: ``--customer-column id`` on a numeric row id (3000 rows, 3000 values) ran
    silently and every output said customer-level privacy, though each "customer" was
    one transaction."""
    path = _with_ids(tmp_path / "ids.csv", _csv(tmp_path / "plain.csv"))
    out = tmp_path / "run"
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", "--customer-column"]
    args += ["id", *[a for a in SMALL if a != "--quiet"], "--out", str(out)]
    result = _simulate(*args)
    assert result.exit_code == 0, result.output
    said = "'id' (--customer-column) holds 3000 distinct values in 3000 rows"
    assert said in " ".join(result.output.split()), result.output
    report = " ".join((out / "report.md").read_text().split())
    assert said in report and "protects one transaction in effect" in report


def test_a_customer_column_with_repeated_values_adds_no_such_note(tmp_path: Path) -> None:
    """Two rows per id: real customers, no note (the note is no blanket warning)."""
    path = _with_ids(tmp_path / "pairs.csv", _csv(tmp_path / "plain.csv"), repeat=2)
    config = SimulationConfig(
        source="csv", path=str(path), label="fraud", customer_column="id", branches=3
    )
    branches = runner.load_branches(config)
    assert runner.customer_column_notes(config, branches) == []
    unique = _with_ids(tmp_path / "ids.csv", _csv(tmp_path / "plain2.csv"))
    config = config.with_changes(path=str(unique))
    (note,) = runner.customer_column_notes(config, runner.load_branches(config))
    assert "data.customer_column) holds 3000 distinct values in 3000 rows" in note


# --- the column a feature skew uses ---------------------------------------------------


def test_a_feature_partition_names_the_column_it_skewed_on(tmp_path: Path) -> None:
    """Before: ``--partition feature`` skewed on the first feature column ('a' here) and
    neither the console, report.md nor the flag's help said which."""
    path = _csv(tmp_path / "tx.csv")
    out = tmp_path / "run"
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", "--partition"]
    args += ["feature", *[a for a in SMALL if a != "--quiet"], "--out", str(out)]
    result = _simulate(*args)
    assert result.exit_code == 0, result.output
    said = "--partition feature skewed the branches on the file's first feature column, 'a'"
    assert said in " ".join(result.output.split()), result.output
    report = " ".join((out / "report.md").read_text().split())
    assert said in report and "Dirichlet(--alpha 0.5)" in report
    helped = " ".join(CliRunner().invoke(main, ["simulate", "--help"]).output.split())
    assert "feature (skew on the file's first feature column" in helped


def test_only_a_feature_partition_names_a_column() -> None:
    config = SimulationConfig(source="csv", path="x.csv", label="fraud", partition="dirichlet")
    assert runner.partition_notes(config, ("a", "b")) == []
    (note,) = runner.partition_notes(config.with_changes(partition="feature"), ("b", "a"))
    assert "first feature column, 'b':" in note
    assert runner.partition_notes(SimulationConfig(), ("a",)) == []  # synthetic: no file


def test_every_data_key_is_documented_beside_its_neighbours() -> None:
    """Before: ``--max-fraud-share`` (``[data] max_fraud_share``) was in no document,
    though the guide of bank data (examples/bank_fraud/README.md) names the other data
    keys of a file: each is named there by its flag, or by its key when it has none."""
    from secagg.apps.simulation.config import FLAGS, SECTION_OF, SYNTHETIC_KEYS

    guide = (Path(__file__).parents[3] / "examples" / "bank_fraud" / "README.md").read_text()
    missing = [
        name
        for name, section in SECTION_OF.items()
        if section == "data" and name not in SYNTHETIC_KEYS and FLAGS.get(name, name) not in guide
    ]
    assert missing == [], missing


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("flags", "toml", "named"),
    [
        (["--unit", "client", "--mechanism", "central"], "", "--epsilon 1e-09"),
        (["--unit", "record", "--mechanism", "distributed"], "", "--epsilon 1e-09"),
        (
            ["--unit", "client", "--mechanism", "central"],
            "epsilon = 1e-9",
            "privacy.epsilon = 1e-09",
        ),
        # the distributed discrete Gaussian's own floor: its central Gaussian start is
        # below the cap, and the search went on to z = 2e5-9e5 (named dp.noise_multiplier)
        (
            ["--unit", "record", "--mechanism", "distributed", "--epsilon", "1e-3"],
            "",
            "--epsilon 0.001",
        ),
        (
            ["--unit", "record", "--mechanism", "distributed", "--epsilon", "1e-2"],
            "",
            "--epsilon 0.01",
        ),
        (
            ["--unit", "client", "--mechanism", "distributed", "--epsilon", "1e-2"],
            "",
            "--epsilon 0.01",
        ),
    ],
)
def test_an_unreachable_federation_budget_names_the_epsilon_not_the_clip(
    tmp_path: Path, flags: list[str], toml: str, named: str
) -> None:
    """``--epsilon 1e-9`` was refused before the baselines with "(the updates' bound is
    --clip = 1)" at its end, naming a flag that has nothing to do with it; ``--epsilon
    1e-3`` with the noise added once named ``dp.noise_multiplier``, which nobody set."""
    args = [*TINY, *flags, "--out", str(tmp_path / "run")]
    if toml:
        (tmp_path / "c.toml").write_text(f"[privacy]\n{toml}\n")
        args = ["--config", str(tmp_path / "c.toml"), *args]
    elif "--epsilon" not in flags:
        args += ["--epsilon", "1e-9"]
    error = _one_line_error(_simulate(*args))
    where = f"--config {tmp_path / 'c.toml'}: " if toml else ""  # a file's key: the file
    assert error.startswith(f"Error: {where}{named}: no federation round can run"), error
    assert "dp.noise_multiplier" not in error, error
    assert "unreachable" in error and "clip" not in error, error


def _reordered(path: Path, source: Path, first: str) -> Path:
    """``source`` with its column ``first`` moved to the front (values unchanged)."""
    rows = [line.split(",") for line in source.read_text().splitlines()]
    j = rows[0].index(first)
    path.write_text("\n".join(",".join([r[j], *r[:j], *r[j + 1 :]]) for r in rows) + "\n")
    return path


def test_a_feature_partition_skews_on_the_column_it_is_given(tmp_path: Path) -> None:
    """Before: the skew always took the file's first feature column, and a bank had to
    rewrite its file to skew on another. ``partition_column = "c"`` now splits exactly
    as the default does on a file with ``c`` moved first, and differently from the
    default on the file as it is."""
    path = _csv(tmp_path / "tx.csv")
    moved = _reordered(tmp_path / "c-first.csv", path, "c")
    base = SimulationConfig(
        branches=3, source="csv", path=str(path), label="fraud", partition="feature"
    )
    named, names = runner._raw_branches(base.with_changes(partition_column="c"))
    first, first_names = runner._raw_branches(base.with_changes(path=str(moved)))
    default, _ = runner._raw_branches(base)
    assert names == ("a", "b", "c", "d") and first_names[0] == "c"
    for one, other in zip(named, first, strict=True):
        assert np.array_equal(one.y_train, other.y_train)
        assert np.array_equal(one.x_train[:, 2], other.x_train[:, 0])
        assert np.array_equal(one.x_test[:, 2], other.x_test[:, 0])
    assert [b.x_train.shape[0] for b in named] != [b.x_train.shape[0] for b in default]
    # and per customer: the mean of each customer's rows in that column
    ids = _with_ids(tmp_path / "ids.csv", path, repeat=2)
    ids_moved = _with_ids(tmp_path / "ids-moved.csv", moved, repeat=2)
    by_customer = base.with_changes(customer_column="id")
    named, _ = runner._raw_branches(by_customer.with_changes(path=str(ids), partition_column="c"))
    first, _ = runner._raw_branches(by_customer.with_changes(path=str(ids_moved)))
    for one, other in zip(named, first, strict=True):
        assert np.array_equal(one.customers_train, other.customers_train)


def test_the_column_of_a_feature_partition_is_noted(tmp_path: Path) -> None:
    path = _csv(tmp_path / "tx.csv")
    out = tmp_path / "run"
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", "--partition", "feature"]
    args += ["--partition-column", "c", *[a for a in SMALL if a != "--quiet"], "--out", str(out)]
    result = _simulate(*args)
    assert result.exit_code == 0, result.output
    said = "--partition feature skewed the branches on the column 'c' (--partition-column)"
    assert said in " ".join(result.output.split()), result.output
    assert said in " ".join((out / "report.md").read_text().split())
    # recorded, and replayed by the run folder's config.toml
    assert json.loads((out / "summary.json").read_text())["config"]["partition_column"] == "c"
    replayed = SimulationConfig.load(out / "config.toml")
    assert (replayed.partition, replayed.partition_column) == ("feature", "c")
    # without it, the note says how to choose another column than the first
    unnamed = dataclasses.replace(replayed, partition_column=None)
    (note,) = runner.partition_notes(unnamed, ("a", "b"))
    assert "first feature column, 'a'" in note and "(data.partition_column)" in note


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--partition-column", "z"], "--partition-column 'z' is no column of"),
        (["--partition-column", "fraud"], "--partition-column 'fraud' is the label column"),
        (["--partition-column", "id"], "--partition-column 'id' is the customer column"),
        (["--partition-column", " "], "--partition-column is empty"),
        # a split that reads no column
        (["--partition", "dirichlet", "--partition-column", "b"], "--partition-column names"),
        (["--partition", "iid", "--partition-column", "b"], "--partition iid reads none"),
    ],
)
def test_a_partition_column_that_cannot_be_used_is_refused_in_one_line(
    tmp_path: Path, extra: list[str], named: str
) -> None:
    path = _with_ids(tmp_path / "ids.csv", _csv(tmp_path / "tx.csv"), repeat=2)
    args = ["--data", "csv", "--path", str(path), "--label", "fraud", "--customer-column", "id"]
    args += ["--partition", "feature", *extra, *SMALL, "--out", str(tmp_path / "run")]
    error = _one_line_error(_simulate(*args))
    assert named in error, error
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("no_training")
def test_a_partition_column_in_a_file_is_named_by_its_key(tmp_path: Path) -> None:
    path = _csv(tmp_path / "tx.csv")
    config = tmp_path / "c.toml"
    run = ["--config", str(config), *SMALL, "--out", str(tmp_path / "run")]
    data = f'[data]\nsource = "csv"\npath = "{path}"\nlabel = "fraud"\npartition = "feature"\n'
    config.write_text(data + "partition_column = 3\n")
    assert "[data] partition_column must be a string" in _one_line_error(_simulate(*run))
    config.write_text(data + 'partition_column = "z"\n')
    assert "data.partition_column 'z' is no column" in _one_line_error(_simulate(*run))
    # synthetic data: the generator makes its own branches
    config.write_text('[data]\npartition_column = "a"\n')
    assert "data.partition_column is read only with a CSV" in _one_line_error(_simulate(*run))
