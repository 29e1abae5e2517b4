"""``secagg simulate`` as a demanding user meets it: every mistake is one line naming the
flag or key (exit 2), found at config load and not minutes into a run; and what a run
folder says is what ran (simulate audit, 2026-12-04)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import CAPS, SimulationConfig
from secagg.errors import ConfigurationError, SecAggError

#: a small federation that still has fraud in every branch (the generator's floor)
SHORT = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]

#: SHORT without DP: for a run whose test is about its rounds aborting or being stopped,
#: not about its noise (DP-SGD's calibration was about half of such a run's time)
NO_DP = [*SHORT, "--mechanism", "off"]


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _one_line_error(result: Result, status: int = 2) -> str:
    """The error a command printed, checked to be one line with no traceback."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line: no click "Usage:" / "Try ..." preamble
    return lines[0]


# --- 1: a round that can never run is refused at config load ---------------------------


@pytest.mark.usefixtures("nothing_runs")
def test_a_round_no_backend_can_run_is_refused_at_load_naming_the_keys(tmp_path: Path) -> None:
    """``tolerated_dropout = 0.9`` ran data, prior and baselines, then failed naming the
    runtime's ``[backend] dropout_fraction``, which no simulate file has."""
    config = tmp_path / "c.toml"
    config.write_text("[simulation]\ntolerated_dropout = 0.9\n")
    out = tmp_path / "run"
    error = _one_line_error(_simulate("--config", str(config), *SHORT, "--out", str(out)))
    assert "simulation.tolerated_dropout = 0.9" in error and "no round can run" in error
    assert "dropout_fraction" not in error and "[backend]" not in error
    assert not out.exists()
    config.write_text("[simulation]\ncorrupt_fraction = 0.7\ntolerated_dropout = 0.7\n")
    error = _one_line_error(
        _simulate("--config", str(config), *SHORT, "--backend", "secagg", "--out", str(out))
    )
    assert "--backend secagg" in error and "--branches 3" in error
    assert "num_clients" not in error


def test_a_plan_refused_for_its_bound_names_the_bound_not_the_fractions(tmp_path: Path) -> None:
    """Review of 2026-12-04: every refused plan was blamed on tolerated_dropout and
    corrupt_fraction, a CKKS ring no bound of 1e300 fits included."""
    config = tmp_path / "c.toml"
    config.write_text("[privacy]\nupdate_clip = 1e300\n")
    args = ["--config", str(config), *SHORT, "--backend", "ckks", "--mechanism", "off"]
    error = _one_line_error(_simulate(*args, "--out", str(tmp_path / "run")))
    # refused at load since the bound has a cap (REAL_CAPS): still named, alone
    assert "privacy.update_clip must lie in (0, 1e+06], not 1e+300" in error, error
    assert "tolerated_dropout" not in error and "corrupt_fraction" not in error


def test_a_federation_the_real_model_cannot_run_is_refused_before_any_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of 2026-12-04: record-level distributed DP with ``--clip 1e12`` passed the
    load-time plan (stand-in sizes) and failed in the federation's configuration after
    the data, the prior and every baseline."""
    from secagg.apps.simulation import runner

    def no_baseline(*args: object, **kwargs: object) -> None:
        raise AssertionError("a baseline trained before the plan was checked")

    monkeypatch.setattr(runner, "_run_baselines", no_baseline)
    out = tmp_path / "run"
    args = [*SHORT, "--unit", "record", "--mechanism", "distributed", "--clip", "1e12"]
    error = _one_line_error(_simulate(*args, "--out", str(out)))
    # refused at load since the clip has a cap (REAL_CAPS), before any data either
    assert error.startswith("Error: --clip must lie in (0, 1e+06], not 1e+12"), error
    assert not out.exists()


@pytest.mark.usefixtures("nothing_runs")
def test_a_client_level_delta_above_one_over_the_branches_is_refused_at_load(
    tmp_path: Path,
) -> None:
    args = [*SHORT, "--mechanism", "central", "--delta", "0.4", "--out", str(tmp_path / "r")]
    error = _one_line_error(_simulate(*args))
    assert "--delta = 0.4 is not below 1 / --branches" in error
    with pytest.raises(ConfigurationError, match=r"privacy\.delta"):
        SimulationConfig(branches=3, unit="client", mechanism="central", delta=0.5)


# --- 2: absurd sizes are refused by their caps ------------------------------------------


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--train-rows", "1000000000000"), "--train-rows + --branches * --test-rows"),
        (("--test-rows", "10000000000"), "--train-rows + --branches * --test-rows"),
        (  # the defaults' 20 000 test rows per branch, at 1 000 branches: 20 million
            ("--branches", "1000", "--train-rows", "120000", "--test-rows", "20000"),
            f"= 20120000 synthetic rows: at most {CAPS['rows']}",
        ),
        (("--local-epochs", "100000000"), f"--local-epochs must be at most {CAPS['local_epochs']}"),
        (("--batch-size", "1000000000"), f"--batch-size must be at most {CAPS['batch_size']}"),
        (("--seed", str(2**70)), f"--seed must be at most {CAPS['seed']}"),
        (("--rounds", "20000"), f"--rounds must lie in [1, {CAPS['rounds']}]"),
        (("--seeds", "5000"), f"--seeds must lie in [1, {CAPS['seeds']}]"),
        (("--rounds", "5000", "--seeds", "5"), "--rounds * --seeds = 25000"),
        (("--rounds", "5000", "--local-epochs", "50"), "--rounds * --local-epochs = 250000"),
        (("--max-rows-per-customer", "5000"), "--max-rows-per-customer must lie in [1, 1000]"),
        (("--delta", "1e-300"), "--delta must be at least 1e-12"),
        # refused after the data, as the runtime's federation.server_learning_rate, and
        # blamed on the updates' clip ("the updates' bound is privacy.update_clip = 5")
        (
            ("--server-learning-rate", "1e308"),
            "Error: --server-learning-rate must lie in (0, 100], not 1e+308",
        ),
        # tracebacks from the accountants: ZeroDivisionError in Opacus's RDP (DP-SGD), a
        # NaN in the Gaussian's closed form (client level), ZeroDivisionError sizing the
        # distributed discrete Gaussian
        (("--noise-multiplier", "1e-300"), "--noise-multiplier must be at least 0.0001"),
        (
            ("--unit", "client", "--mechanism", "central", "--noise-multiplier", "1e-300"),
            "--noise-multiplier must be at least 0.0001, not 1e-300",
        ),
        (
            ("--mechanism", "distributed", "--clip", "1e-300", "--noise-multiplier", "1"),
            "--clip must be at least 1e-06, not 1e-300",
        ),
        # ran the federation, then an OverflowError traceback writing the run folder
        (
            ("--prior-path", "PRIOR", "--prior-epsilon", "1.7e308"),
            "--prior-epsilon must be at most 1e+06, not 1.7e+308",
        ),
    ],
)
def test_absurd_sizes_are_one_line_naming_the_flag(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    """``--train-rows 1000000000000`` was a 335 GiB MemoryError traceback, ``--seed 2**70``
    an overflow in torch, ``--test-rows 10000000000`` and ``--batch-size 1000000000``
    ran until killed."""
    out = tmp_path / "run"
    if "PRIOR" in args:  # a model vector of the synthetic world's size (2 081)
        import numpy as np

        np.save(tmp_path / "prior.npy", np.zeros(2081, dtype=np.float32))
        args = tuple(str(tmp_path / "prior.npy") if a == "PRIOR" else a for a in args)
    error = _one_line_error(_simulate(*SHORT, *args, "--out", str(out)))
    assert words in error
    assert not out.exists()


def test_the_caps_are_named_in_the_config_file_as_keys(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[data]\ntrain_rows = 1000000000000\n")
    with pytest.raises(ConfigurationError, match=r"^data\.train_rows \+ simulation\.branches"):
        SimulationConfig.load(config)
    # the seed's cap holds for the last seed of an experiment too
    with pytest.raises(ConfigurationError, match=r"simulation\.seed must be at most"):
        SimulationConfig(seed=CAPS["seed"], seeds=2)
    assert SimulationConfig(seed=CAPS["seed"] - 1, seeds=2).seed == CAPS["seed"] - 1


# --- 3: no DP beside DP keys ------------------------------------------------------------


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("file", "flags", "named"),
    [
        ('[privacy]\nmechanism = "off"\nepsilon = 3.0\n', (), "privacy.epsilon is"),
        ("[privacy]\nepsilon = 1.0\nclip = 2.0\n", ("--mechanism", "off"), "privacy.epsilon, "),
        ("[privacy]\nnoise_multiplier = 1.1\n", ("--mechanism", "off"), "noise_multiplier"),
        ('[privacy]\nmechanism = "off"\ndelta = 1e-6\n', (), "privacy.delta is"),
        ('[privacy]\nmechanism = "off"\n', ("--clip", "2"), "--clip is"),
    ],
)
def test_no_dp_beside_dp_keys_is_a_contradiction_naming_them(
    tmp_path: Path, file: str, flags: tuple[str, ...], named: str
) -> None:
    """``mechanism = "off"`` beside ``epsilon = 3`` in a file ran without DP and exit 0:
    the user believed DP was on; only the flags were refused."""
    config = tmp_path / "c.toml"
    config.write_text(file or "[simulation]\n")  # an empty file is refused on its own
    out = tmp_path / "run"
    error = _one_line_error(_simulate("--config", str(config), *SHORT, *flags, "--out", str(out)))
    assert named in error and "read only with a DP mechanism" in error
    assert not out.exists()


def test_a_run_without_dp_writes_no_dp_key_and_replays(tmp_path: Path) -> None:
    from secagg.apps.simulation.report import _write_config

    result = runner.SimulationResult(SimulationConfig(mechanism="off", branches=3), [])
    text = _write_config(result, tmp_path / "config.toml").read_text()
    assert "epsilon" not in text and "delta" not in text and 'mechanism = "off"' in text
    out = tmp_path / "run"
    replay = _simulate(
        "--config", str(tmp_path / "config.toml"), "--rounds", "0", "--out", str(out)
    )
    assert "--rounds must lie in" in _one_line_error(replay)  # the file itself was accepted


# --- 4: the paths a run folder saves are absolute ---------------------------------------


def test_the_files_a_run_names_are_saved_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run folder's config.toml said ``path = "t.csv"`` and ``prior_path = "m.npy"``
    as typed, and its replay comment ``--config run/config.toml``: replayed from another
    directory, it read other files or none."""
    from secagg.apps.simulation.cli import build_config
    from secagg.apps.simulation.report import _write_config

    monkeypatch.chdir(tmp_path)
    flags = {"source": "csv", "path": "t.csv", "label": "y", "prior_path": "m.npy"}
    config = build_config(None, {**flags, "prior_epsilon": 0.0, "branches": 3})
    assert config.path == str(tmp_path / "t.csv")
    assert config.prior_path == str(tmp_path / "m.npy")
    # a library caller's relative paths are written absolute too
    relative = SimulationConfig(branches=3, prior_path="m.npy", prior_epsilon=0.0)
    (tmp_path / "run").mkdir()
    written = _write_config(runner.SimulationResult(relative, []), Path("run/config.toml"))
    text = written.read_text()
    assert f'prior_path = "{tmp_path / "m.npy"}"' in text
    assert f"--config {tmp_path / 'run' / 'config.toml'}" in text
    monkeypatch.chdir(tmp_path / "run")  # elsewhere, the replay names the same file
    replayed = SimulationConfig.load(tmp_path / "run" / "config.toml")
    assert replayed.prior_path == str(tmp_path / "m.npy")


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("file", "flags", "named"),
    [
        ("", ("--data", "csv", "--label", "y", "--path", ""), "--path"),
        ('[data]\nsource = "csv"\nlabel = "y"\npath = ""\n', (), "data.path"),
        ('[data]\nsource = "csv"\nlabel = "y"\npath = "  "\n', (), "data.path"),
        ("", ("--prior-path", "", "--prior-epsilon", "0"), "--prior-path"),
        ('[data]\nstandardize = "public"\nstats_path = ""\n', (), "data.stats_path"),
    ],
)
def test_an_empty_path_is_refused_naming_the_key(
    tmp_path: Path, file: str, flags: tuple[str, ...], named: str
) -> None:
    """``path = ""`` (or ``--path ""``) was made absolute into the directory the command
    ran in, which the loader then failed to read as a CSV, naming a folder the user never
    typed (simulate audit, 2026-12-06)."""
    config = tmp_path / "c.toml"
    config.write_text(file or "[simulation]\n")  # an empty file is refused on its own
    out = tmp_path / "run"
    error = _one_line_error(_simulate("--config", str(config), *SHORT, *flags, "--out", str(out)))
    # a key of the file names the file first (as secagg server --config F: ...); a flag not
    where = "" if named.startswith("--") else f"--config {config}: "
    assert error.startswith(f"Error: {where}{named} ") and "is empty" in error, error
    assert str(tmp_path) not in error.replace(str(config), "")  # no folder it resolved to
    assert not out.exists()
    with pytest.raises(ConfigurationError, match=r"^data\.path .*is empty"):
        SimulationConfig(source="csv", label="y", path="")


# --- 5: a bad prior is one line, before the data is made ---------------------------------


def _prior_file(tmp_path: Path, kind: str) -> Path:
    import numpy as np

    path = tmp_path / f"{kind}.npy"
    good = np.zeros(2081, dtype=np.float32)  # the synthetic world's MLP
    if kind == "strings":
        np.save(path, np.array(["a"] * 2081))
    elif kind == "integers":
        np.save(path, np.zeros(2081, dtype=np.int64))
    elif kind == "nan":
        good[7] = np.nan
        np.save(path, good)
    elif kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:500])
    elif kind == "text":
        path.write_text("not numpy")
    elif kind == "matrix":
        np.save(path, np.zeros((2, 2081), dtype=np.float32))
    return path  # "missing": not written


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("missing", "no prior model at"),
        ("strings", "not a numpy model vector: an array of <U1"),
        ("integers", "not a numpy model vector: an array of int64"),
        ("nan", "holds 1 NaN or infinite parameters"),
        ("truncated", "not a numpy model vector: Failed to read all data"),
        ("text", "is not a .npy file"),
        ("matrix", "shape (2, 2081)"),
    ],
)
def test_a_bad_prior_file_is_one_line_before_any_data(
    tmp_path: Path, kind: str, words: str
) -> None:
    """A string array was a ValueError traceback; a vector with a NaN ran to the end,
    exit 0, from a random start; an integer array ran as a model of zeros."""
    prior = _prior_file(tmp_path, kind)
    out = tmp_path / "run"
    args = [*SHORT, "--prior-path", str(prior), "--prior-epsilon", "0", "--out", str(out)]
    error = _one_line_error(_simulate(*args))
    assert words in error and "(--prior-path)" in error
    assert not out.exists()


def test_a_prior_of_another_models_size_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    """It said ``expected a flat vector of 2081 parameters, got shape (10,)``."""
    import numpy as np

    prior = tmp_path / "small.npy"
    np.save(prior, np.zeros(10, dtype=np.float32))
    out = tmp_path / "run"
    args = [*SHORT, "--prior-path", str(prior), "--prior-epsilon", "0", "--out", str(out)]
    error = _one_line_error(_simulate(*args))
    assert (
        "(--prior-path) holds 10 parameters; the mlp model of these 30 features has 2081" in error
    )
    assert "--model" in error
    assert not out.exists()


# --- 6: a misspelt key is named, with what it should be ----------------------------------


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("file", "words"),
    [
        (
            "[privacy]\nepsilom = 3.0\n",
            "unknown key privacy.epsilom (did you mean privacy.epsilon?)",
        ),
        (
            "[training]\nrounds = 3\n",
            "unknown key training.rounds (it belongs in [simulation]: simulation.rounds)",
        ),
        ("[privacy]\nlocal_epoch = 2\n", "(did you mean training.local_epochs?)"),
        ("[privcy]\nepsilon = 3.0\n", "unknown section [privcy] (did you mean [privacy]?)"),
        ("[data]\nflavour = 1\n", "unknown key data.flavour; known: source"),
    ],
)
def test_a_misspelt_key_is_one_line_naming_it_and_its_likely_spelling(
    tmp_path: Path, file: str, words: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(file or "[simulation]\n")  # an empty file is refused on its own
    error = _one_line_error(_simulate("--config", str(config), *SHORT))
    assert words in error


# --- 9: a CSV run takes no synthetic-only setting, and records none ----------------------


def _tiny_csv(path: Path) -> Path:
    lines = ["amount,velocity,is_fraud"]
    lines += [f"{(i % 7) / 3:.3f},{i % 3},{int(i % 10 == 0)}" for i in range(400)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("file", "flags", "named"),
    [
        ("", ("--train-rows", "1000"), "--train-rows"),
        ("", ("--test-rows", "500"), "--test-rows"),
        ("", ("--train-rows", "120000"), "--train-rows"),  # the default, typed: still refused
        ("", ("--world", "standard"), "--world"),
        ("[data]\ntrain_rows = 900\n", (), "data.train_rows"),
        ("[data]\ntest_rows_per_branch = 200\n", (), "data.test_rows_per_branch"),
        ("", ("--train-rows", "500", "--branches", "8"), "--train-rows"),  # below 100/branch
    ],
)
def test_synthetic_row_counts_with_a_csv_are_refused_naming_the_flag(
    tmp_path: Path, file: str, flags: tuple[str, ...], named: str
) -> None:
    """``--data csv --train-rows 1000`` was accepted, ignored (each branch trained on
    its split of the file) and recorded in summary.json as ``train_rows: 1000``; a value
    below 100 per branch got a message about synthetic rows (simulate audit, 2026-12-06)."""
    config = tmp_path / "c.toml"
    config.write_text(file or "[simulation]\n")  # an empty file is refused on its own
    data = _tiny_csv(tmp_path / "t.csv")
    csv = ("--data", "csv", "--path", str(data), "--label", "is_fraud")
    out = tmp_path / "run"
    short = [a for a in SHORT if a not in ("--train-rows", "3000", "--test-rows", "400")]
    error = _one_line_error(
        _simulate("--config", str(config), *short, *csv, *flags, "--out", str(out))
    )
    where = "" if named.startswith("--") else f"--config {config}: "  # the file's key
    assert error.startswith(f"Error: {where}{named} "), error
    assert "synthetic data" in error and "per branch at least" not in error
    assert not out.exists()


def test_a_library_csv_config_refuses_synthetic_row_counts_and_records_none(
    tmp_path: Path,
) -> None:
    from secagg.apps.simulation.report import _write_config

    data = str(_tiny_csv(tmp_path / "t.csv"))
    csv = {"source": "csv", "path": data, "label": "is_fraud", "branches": 3}
    for name, value in (("train_rows", 1000), ("test_rows_per_branch", 300)):
        with pytest.raises(ConfigurationError, match=rf"^data\.{name} is read only with"):
            SimulationConfig(**csv, **{name: value})
    config = SimulationConfig(**csv)
    recorded = config.as_dict()
    assert not {"train_rows", "test_rows_per_branch", "world"} & set(recorded)
    assert recorded["source"] == "csv" and recorded["branches"] == 3
    text = _write_config(runner.SimulationResult(config, []), tmp_path / "config.toml").read_text()
    assert "train_rows" not in text and "test_rows" not in text
    # no `world = ...` key (a validation may still be named "world": prior_validation)
    assert not re.search(r"^\s*world\s*=", text, re.MULTILINE), text
    from secagg.apps.simulation.cli import build_config

    assert build_config(str(tmp_path / "config.toml"), {}) == config  # the replay is accepted
    # synthetic data still records them: they ran
    assert SimulationConfig().as_dict()["train_rows"] == 120_000


def test_a_csv_runs_summary_states_no_synthetic_row_count(tmp_path: Path) -> None:
    out = tmp_path / "run"
    data = _tiny_csv(tmp_path / "t.csv")
    done = _simulate(
        "--data", "csv", "--path", str(data), "--label", "is_fraud", "--partition", "iid",
        "--branches", "3", "--rounds", "1", "--local-epochs", "1", "--batch-size", "32",
        "--model", "logistic", "--mechanism", "off", "--dropout", "0", "--quiet",
        "--out", str(out),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "summary.json").read_text())
    assert "train_rows" not in summary["config"] and "world" not in summary["config"]
    # what each branch did train on is in the branch table
    assert all(0 < b["train_rows"] < 400 for b in summary["branches"])


# --- 8: a model no round trained is UNTRAINED, not a result ------------------------------


def test_a_federation_whose_every_round_aborted_is_untrained_not_a_result(
    tmp_path: Path,
) -> None:
    """Every round aborted (a branch in two drops out, and the threshold tolerates none):
    the federated row printed the prior's figures as the federation's, and each branch
    was judged against local-only with them."""
    import json

    config = tmp_path / "c.toml"
    config.write_text("[simulation]\ntolerated_dropout = 0.0\n")
    out = tmp_path / "run"
    args = ["--config", str(config), *NO_DP, "--dropout", "0.49", "--seed", "0"]
    result = _simulate(*args, "--out", str(out))
    assert result.exit_code == 1, result.output  # a failed run (see the test below)
    fed_row = next(line for line in result.stdout.splitlines() if "federated (secagg+)" in line)
    assert fed_row.count("UNTRAINED") == 5  # every metric column
    assert "3 branches, 0 of 1 rounds completed" in result.stdout  # not "1 rounds"
    assert "UNTRAINED: federated (secagg+): no round completed (0 of 1 planned" in result.stdout
    assert "no branch compared with local-only" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    row = next(r for r in summary["table"] if r["setting"].startswith("federated"))
    assert row["untrained"] is True and row["auprc"] is None
    assert summary["untrained"] and not any(
        v["judged"] for v in summary["branch_verdicts"].values()
    )
    report = (out / "report.md").read_text()
    assert "| federated (secagg+) | UNTRAINED |" in report
    assert "3 branches, 0 of 1 rounds completed" in report
    prior = next(r for r in summary["table"] if r["setting"] == "prior only")
    assert prior["auprc"] is not None and not prior["untrained"]  # the prior is a result


def test_a_run_whose_every_round_aborted_exits_1_in_one_line_saying_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every federated round aborted, yet ``secagg simulate`` exited 0 as if it had
    produced a result: a script or CI job running it took the untrained model for one
    (review, 2026-12-05). Now it exits 1 with one line naming why no round completed;
    the run folder is still written and says so (the test above)."""
    config = tmp_path / "c.toml"
    config.write_text("[simulation]\ntolerated_dropout = 0.0\n")
    out = tmp_path / "run"
    args = ["--config", str(config), *NO_DP, "--dropout", "0.49", "--seed", "0"]
    error = _one_line_error(_simulate(*args, "--out", str(out), "--json"), 1)
    assert error.startswith("Error: no federated round completed: 1 of 1 planned aborted")
    # why: the round's own reason, from the protocol
    assert "below the threshold of 3" in error
    assert f"{out}" in error and "report.md" in error
    assert (out / "report.md").exists() and (out / "summary.json").exists()
    assert not (out / "ABORTED").exists()  # it ran to its end: a record, not a stopped run
    # the stop is said by the command, not also by an ERROR record of the server beside
    # it ("federation simulation stopped before finishing (...)", review 2026-12-05):
    # the command shows the engine's errors only, so any record here reached the user
    shown = [r.getMessage() for r in caplog.records if r.name.startswith("secagg")]
    assert not [m for m in shown if "aborted in a row" in m or "stopped" in m], shown


def test_an_experiment_whose_every_seed_is_untrained_exits_1_in_one_line(
    tmp_path: Path,
) -> None:
    """``--seeds 2`` where neither seed's federation completed a round exited 0 like the
    single run; now 1, naming a seed's reason, with every folder still written."""
    config = tmp_path / "c.toml"
    config.write_text("[simulation]\ntolerated_dropout = 0.0\n")
    out = tmp_path / "experiment"
    args = ["--config", str(config), *NO_DP, "--dropout", "0.49", "--seed", "0", "--seeds", "2"]
    error = _one_line_error(_simulate(*args, "--out", str(out)), 1)
    assert error.startswith("Error: no federated round completed in any of the 2 seeds (seed 0:")
    assert "below the threshold of 3" in error and f"{out}" in error
    assert (out / "experiment.md").exists()
    assert all((out / f"seed-{s}" / "report.md").exists() for s in (0, 1))


def test_an_experiment_counts_an_untrained_seed_as_untrained_not_diverged() -> None:
    import math

    from secagg.apps.simulation.experiment import ExperimentResult, experiment_lines

    result = ExperimentResult(config=SimulationConfig(seeds=2), seeds=[0, 1])
    fed, central = "federated (secagg+)", "centralized (non-private)"
    for seed in (0, 1):
        auprc = math.nan if seed == 1 else 0.5
        result.per_seed[seed] = {fed: {"auprc": auprc}, central: {"auprc": 0.6}}
        result.ratios[seed] = auprc / 0.6
        result.verdicts[seed] = {}
        result.epsilons[seed] = 1.0
        result.seconds[seed] = 1.0
    result.untrained_seeds.append(1)
    head = result.headline()
    assert head["untrained_seeds"] == [1] and head["diverged_seeds"] == []
    # the federated row summarises the trained seed only: the untrained one is not
    # counted as diverged (review of 2026-12-04: "(n=1, 1 diverged)")
    federated = result.summary()[fed]["auprc"]
    assert (federated.n, federated.diverged) == (1, 0)
    assert result.summary()[central]["auprc"].n == 2
    assert any("UNTRAINED" in line and "[1]" in line for line in experiment_lines(result))


@pytest.mark.parametrize("untrained", [(1,), (0, 1)])
def test_an_experiment_without_a_ratio_prints_no_nan(untrained: tuple[int, ...]) -> None:
    """Every seed untrained printed 'nan' as the headline ratio and worst seed."""
    import math

    from secagg.apps.simulation.experiment import ExperimentResult, experiment_lines

    result = ExperimentResult(config=SimulationConfig(seeds=2), seeds=[0, 1])
    fed, central = "federated (secagg+)", "centralized (non-private)"
    for seed in (0, 1):
        auprc = math.nan if seed in untrained else 0.5
        result.per_seed[seed] = {fed: {"auprc": auprc}, central: {"auprc": 0.6}}
        result.ratios[seed] = auprc / 0.6
        result.verdicts[seed] = {}
        result.epsilons[seed] = 1.0
        result.seconds[seed] = 1.0
    result.untrained_seeds.extend(untrained)
    text = "\n".join(experiment_lines(result))
    assert "nan" not in text.lower()
    headline = next(line for line in text.splitlines() if "(means)" in line)
    assert "worst seed **none" in headline
    assert all(f"{s}: UNTRAINED" in headline for s in untrained)
    if len(untrained) == 2:
        assert "(means): **none" in headline
    else:
        assert "(means): **0.833**" in headline and "0: 0.833" in headline


# --- 7: SIGTERM leaves a folder marked aborted, never one claiming a result --------------


def _wait_for_the_ledger_to_grow(
    process: subprocess.Popen[str], ledger: Path, bound: float
) -> None:
    """Until the run's ledger has grown past its size when first seen: the server is
    writing it, so the federation is under way (and the SIGTERM handler, installed
    before the run starts, is in place). Bounded by ``bound`` seconds; a process that
    ends first fails the test with its output.

    Why: the test waited 120 s for the ledger, then slept 1 s. Before the federation
    come the data, the prior's fit and every baseline: about 10 s on an idle machine,
    40-98 s beside two busy cores (measured), so a loaded machine met the 120 s bound
    (the test failed once under load)."""
    import time

    deadline = time.monotonic() + bound
    first: int | None = None
    while True:
        assert process.poll() is None, process.communicate()
        size = ledger.stat().st_size if ledger.exists() else None
        if first is None:
            first = size
        elif size is not None and size > first:
            return
        assert time.monotonic() < deadline, f"the ledger did not grow within {bound:g} s"
        time.sleep(0.1)


def test_sigterm_during_the_federation_marks_the_run_folder_aborted(tmp_path: Path) -> None:
    """SIGTERM killed the run silently (exit 143, no line) and left a ledger, server
    state and no sign the run never finished."""
    import os
    import signal
    import sys

    out = tmp_path / "run"
    # no DP, prior fit or hidden layer: the stop is about the federation under way, and
    # what comes before it (about 10 s idle, 40-98 s loaded) only delays it
    args = [*NO_DP, "--prior", "none", "--model", "logistic"]
    args[args.index("--rounds") + 1] = "50"
    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(
        [sys.executable, "-m", "secagg.apps.cli", "simulate", *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        # generous bounds: only a run that hangs meets them, never a loaded machine
        _wait_for_the_ledger_to_grow(process, out / "ledger.sqlite", bound=900.0)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, (stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: stopped by SIGTERM before the simulation finished: {out} is incomplete, "
        f"marked aborted ({out / 'ABORTED'})"
    ], stderr
    assert "Traceback" not in stdout + stderr
    assert "stopped by SIGTERM" in (out / "ABORTED").read_text()
    assert not (out / "summary.json").exists() and not (out / "report.md").exists()


#: a run whose SIGTERM handler runs inside a finaliser (Python runs it wherever the main
#: thread is): the handler's exception is "ignored" there, and the block goes on
_STOPPED_IN_A_FINALISER = """
import signal, sys
from pathlib import Path
from secagg.apps.simulation.cli import _marked_aborted_if_stopped

class Finaliser:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGTERM)

run = Path(sys.argv[1])
run.mkdir()
with _marked_aborted_if_stopped(run):
    (run / "summary.json").write_text("{}")
    Finaliser()  # collected at once: its __del__ takes the signal
print("finished")
"""


def test_a_sigterm_taken_inside_a_finaliser_still_marks_the_run_aborted(tmp_path: Path) -> None:
    """Before: the handler's exception, raised in a ``__del__``, was printed as "Exception
    ignored in ..." with a traceback, and the run went on to exit 0 keeping its
    summary.json, as if never stopped (a race of any SIGTERM, rare but real)."""
    import os
    import sys

    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _STOPPED_IN_A_FINALISER, str(run)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,  # "-c" puts the working directory first on sys.path
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 143, (done.stdout, done.stderr)
    assert "finished" not in done.stdout and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: stopped by SIGTERM"), lines
    assert (run / "ABORTED").is_file() and not (run / "summary.json").exists()


#: a stop whose one line cannot be written (stderr's reader gone) while a thread, as a
#: branch still training, has not finished
_STOPPED_WITH_STDERR_CLOSED = """
import os, signal, sys, threading
from pathlib import Path
from secagg.apps.simulation.cli import _marked_aborted_if_stopped

threading.Thread(target=threading.Event().wait, name="training").start()  # never ends
run = Path(sys.argv[1])
run.mkdir()
with _marked_aborted_if_stopped(run):
    os.close(2)
    signal.raise_signal(signal.SIGTERM)
"""


def test_a_stop_with_stderr_closed_still_leaves_at_once(tmp_path: Path) -> None:
    """Before: the line's write raised (a closed stderr), the exception skipped the
    immediate exit, and the process waited for every branch thread to finish training
    (here, one that never does: the process never left)."""
    import os
    import sys

    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _STOPPED_WITH_STDERR_CLOSED, str(run)],
        capture_output=True,
        text=True,
        timeout=300,  # generous: it leaves at once, or never
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 143, (done.stdout, done.stderr)
    assert (run / "ABORTED").is_file()


def test_a_stopped_run_loses_the_files_that_present_a_result(tmp_path: Path) -> None:
    from secagg.apps.simulation.cli import _mark_aborted

    assert not _mark_aborted(tmp_path / "never-made", "SIGTERM")
    for name in ("summary.json", "report.md", "ledger.sqlite", "model.npy"):
        (tmp_path / name).write_text("x")
    assert _mark_aborted(tmp_path, "SIGINT")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["ABORTED", "ledger.sqlite", "model.npy"]


def test_the_progress_of_an_aborted_round_shows_no_auprc(tmp_path: Path) -> None:
    """The bar said ``round 1 aborted: AUPRC 0.561``: the unchanged model's score, as if
    the round had produced it."""
    config = SimulationConfig(
        branches=3,
        rounds=1,
        local_epochs=1,
        train_rows=3000,
        test_rows_per_branch=400,
        batch_size=64,
        dropout=0.49,
        tolerated_dropout=0.0,
        mechanism="off",  # the note of an aborted round, not its noise
    )
    seen: list[str] = []

    def progress(stage: str, done: int, total: int, note: str) -> None:
        seen.append(f"{stage} {note}")

    result = runner.run_simulation(config, tmp_path / "run", progress)
    fed = next(v for k, v in result.settings.items() if k.startswith("federated"))
    assert fed["untrained"] and fed["rounds_completed"] == 0
    aborted = [note for note in seen if note.startswith("federated round 1 aborted")]
    assert aborted and all("AUPRC" not in note for note in aborted)


def test_a_stop_during_the_local_only_baselines_does_not_wait_for_their_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review of 2026-12-04: Ctrl-C or SIGTERM while the local-only baselines trained
    waited for the two trainings under way (the executor's ``with``) before the stop was
    handled, so a service manager's SIGKILL came first and no ABORTED marker was written.

    The trainings left under way are released and their threads joined before the test
    ends: they slept the whole ``hold`` (30 s) into the later tests, and whatever they
    raised then was charged to another test, or to none."""
    import signal
    import threading
    import time
    from types import SimpleNamespace

    from secagg.apps.simulation import baselines, runner

    training = threading.Event()
    release = threading.Event()  # ends the trainings under way once the test has seen
    finished: list[str] = []
    hold = 30.0  # a training's length: the old code raised only after it
    threads_before = set(threading.enumerate())

    class _SlowTrainer:
        def __init__(self, config: object, branch: SimpleNamespace, *args: object) -> None:
            self.name = branch.name

        def train(self, epochs: int) -> None:
            training.set()
            release.wait(hold)
            finished.append(self.name)

    def interrupt() -> None:
        if training.wait(90):  # a training is under way: stop the run as Ctrl-C does
            # once the main thread waits for the results (the new code is quick whenever
            # the signal comes; the pause only lets the old one show its wait)
            time.sleep(0.5)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    monkeypatch.setattr(baselines, "BranchTrainer", _SlowTrainer)  # where the baselines build it
    branches = [SimpleNamespace(name=f"branch-{i}") for i in range(4)]
    threading.Thread(target=interrupt, daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner._run_baselines(SimulationConfig(), branches, lambda *a: None)  # type: ignore[arg-type]
        assert time.monotonic() - start < hold and finished == []
    finally:
        release.set()
        started = [t for t in threading.enumerate() if t not in threads_before]
        for thread in started:  # the pool's workers and the interrupter
            thread.join(120)  # generous: released, each ends at once
        assert not any(t.is_alive() for t in started), started


# --- 10: a raw-scale column is refused before training, not trained on as garbage ---------


def test_a_raw_scale_csv_is_one_line_naming_the_columns_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--data csv --label Class`` on a Kaggle-layout file trained on Time in seconds and
    Amount in euros clipped to +-5 (AUPRC 0.157; 1.000 with ``--data creditcard``) and
    exited 0 (simulate audit, 2026-12-06)."""
    from _fraud_csv import write_creditcard_layout

    def no_baseline(*args: object, **kwargs: object) -> None:
        raise AssertionError("a baseline trained on the clipped statistics")

    monkeypatch.setattr(runner, "_run_baselines", no_baseline)
    data = write_creditcard_layout(tmp_path / "creditcard.csv")
    out = tmp_path / "run"
    error = _one_line_error(
        _simulate("--data", "csv", "--path", str(data), "--label", "Class", "--out", str(out))
    )
    assert error.startswith("Error: the secure feature statistics clip every value to ±5")
    assert "'Time' (100 % of its values on 8 of 8 branches)" in error and "'Amount'" in error
    assert "data.stats_bound" in error and "--data creditcard" in error
    assert not out.exists()


def test_an_unreachable_distributed_budget_is_refused_in_its_own_words() -> None:
    """The distributed mechanism's noise was started from the central Gaussian's, whose
    calibration refused first: the user read the central Gaussian's epsilon at the most
    noise (9.024e-05) and "a lower sample_rate", which this mechanism never credits
    (audit, 2026-12-04). Now the distributed discrete Gaussian's own figure, and its
    advice."""
    result = _simulate(
        *SHORT, "--unit", "client", "--mechanism", "distributed", "--epsilon", "1e-5"
    )
    line = _one_line_error(result)
    assert "unreachable for the distributed discrete Gaussian" in line
    assert "9.024e-05" not in line and "sample_rate" not in line
    assert "honest shares" in line


# --- 8: a file flag or key that names no file says which flag or key ---------------------


def test_an_empty_or_missing_config_file_is_refused_naming_the_flag(tmp_path: Path) -> None:
    """``--config ""`` ran the defaults as if no file had been named (exit 0), and a
    missing file said "no configuration file at X", naming no flag (CLI audit)."""
    out = tmp_path / "run"
    error = _one_line_error(_simulate("--config", "", *SHORT, "--out", str(out)))
    assert "--config is empty" in error, error
    missing = tmp_path / "missing.toml"
    error = _one_line_error(_simulate("--config", str(missing), *SHORT, "--out", str(out)))
    assert f"--config {missing}: no such file" in error, error
    assert not out.exists()


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_a_data_file_that_is_not_there_is_refused_naming_its_flag_or_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """``--path``, ``data.path`` and ``data.stats_path`` naming a missing file or a folder
    said "no CSV file at X", "X is a directory, not a CSV file" or "X: cannot read the
    feature statistics: [Errno 21] Is a directory", naming no flag or key."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("training started: the refusal came too late")

    monkeypatch.setattr(runner, "_run_baselines", refuse)
    bad = tmp_path / "nothing.csv"
    if what == "folder":
        bad.mkdir()
    said = "is a directory, not a file" if what == "folder" else ": no such file"
    out = tmp_path / "run"
    small = [a for a in SHORT if a not in ("--train-rows", "3000", "--test-rows", "400")]
    csv = ["--data", "csv", "--label", "is_fraud", *small, "--out", str(out)]
    if what == "missing":  # a folder is click's to refuse as a flag (dir_okay=False)
        error = _one_line_error(_simulate("--path", str(bad), *csv))
        assert f"--path {bad}{said}" in error, error
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\npath = "{bad}"\n')
    error = _one_line_error(_simulate("--config", str(config), *csv))
    assert f"data.path {bad}{' ' if what == 'folder' else ''}{said}" in error, error
    good = _tiny_csv(tmp_path / "tx.csv")
    config.write_text(
        f'[data]\npath = "{good}"\nstandardize = "public"\nstats_path = "{bad}"\n'
        '[privacy]\nunit = "client"\nmechanism = "central"\n'
    )
    error = _one_line_error(_simulate("--config", str(config), *csv))
    assert f"data.stats_path {bad}{' ' if what == 'folder' else ''}{said}" in error, error
    assert not out.exists()
