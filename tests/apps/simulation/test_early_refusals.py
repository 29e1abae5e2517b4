"""``secagg simulate`` refusals that came late (after the prior's fit, the baselines or
earlier seeds) or named no flag: each is one line naming the flag as typed, before
any training (helper-86's audit of the simulate refusals, 2026-12-05)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation import data, runner

#: a small federation that still has fraud in every branch (the generator's floor)
SHORT = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _one_line_error(result: Result, status: int = 2) -> str:
    """The error a command printed, checked to be one line with no traceback."""
    assert result.exit_code == status, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def no_prior_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prior's fit (the first training of a run) must not start."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the prior was fitted before the refusal")

    monkeypatch.setattr(runner, "prior_model", refuse)


@pytest.mark.usefixtures("no_prior_fit")
def test_too_little_dpsgd_noise_is_refused_before_the_prior_naming_the_flag(
    tmp_path: Path,
) -> None:
    """``--noise-multiplier 0.01`` was refused only as local-only trained, after the
    prior's fit (40 s at the defaults), in the accountant's words suggesting
    ``accountant='rdp'``, which simulate cannot set."""
    out = tmp_path / "run"
    error = _one_line_error(_simulate(*SHORT, "--noise-multiplier", "0.01", "--out", str(out)))
    assert error.startswith("Error: --noise-multiplier 0.01 is too little noise"), error
    assert "rdp" not in error
    least = re.search(r"give at least ([0-9.e-]+)", error)
    assert least is not None, error
    assert float(least.group(1)) > 0.01
    assert not out.exists()


@pytest.mark.parametrize(
    "shape",
    [[], ["--local-epochs", "2", "--batch-size", "150"]],
    ids=["one-epoch", "two-epochs-batch-150"],
)
def test_the_least_noise_a_refusal_names_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: list[str]
) -> None:
    """The range the refusal states is one that works: its least noise trains (the
    trainers' own accountability check passes) and the federation's rounds complete (the
    server replays every branch's report: a least noise the accountant alone allowed,
    0.054 here, gave a PRV grid the server refuses, so every branch was a dropout and the
    run ended "0 of 1 rounds completed"), a little less is refused.

    Without the public prior's fit or a hidden layer (the run that trains took most of
    the test's time): the least noise is the accountant's, of the branches' data, batch
    and epochs, whatever model trains from wherever."""
    small = [*SHORT, "--prior", "none", "--model", "logistic", *shape]
    error = _one_line_error(
        _simulate(*small, "--noise-multiplier", "0.01", "--out", str(tmp_path / "a"))
    )
    least = float(re.search(r"give at least ([0-9.e-]+)", error).group(1))  # type: ignore[union-attr]
    below = _one_line_error(
        _simulate(*small, "--noise-multiplier", f"{least * 0.9:g}", "--out", str(tmp_path / "b"))
    )
    assert f"give at least {least:g}" in below, below
    ran = _simulate(*small, "--noise-multiplier", f"{least:g}", "--out", str(tmp_path / "c"))
    assert ran.exit_code == 0, (ran.output, ran.exception)
    assert (tmp_path / "c" / "summary.json").is_file()


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the data nor any training may start."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the run started before the refusal")

    monkeypatch.setattr(runner, "_load_data", refuse)
    monkeypatch.setattr(runner, "prior_model", refuse)


@pytest.mark.usefixtures("no_data")
@pytest.mark.parametrize(
    ("file_text", "flags", "named"),
    [
        ("", ("--engine", "ray", "--ray-address", "127.0.0.1:1"), "--ray-address 127.0.0.1:1"),
        (
            '[simulation]\nengine = "ray"\nray_address = "127.0.0.1:1"\n',
            (),
            "simulation.ray_address = '127.0.0.1:1'",
        ),
    ],
)
def test_an_unreachable_ray_address_is_refused_before_any_training(
    tmp_path: Path, file_text: str, flags: tuple[str, ...], named: str
) -> None:
    """``--engine ray --ray-address 127.0.0.1:1`` was first tried in the federation,
    after the prior's fit and every baseline. The probe is bounded
    (``ray_engine.PROBE_SECONDS`` per step): a refused port answers at once, and the
    bound here is generous."""
    import time

    config = tmp_path / "sim.toml"
    config.write_text(file_text)
    args = [*SHORT, *flags, "--out", str(tmp_path / "run")]
    if file_text:
        args = ["--config", str(config), *args]
    started = time.monotonic()
    error = _one_line_error(_simulate(*args))
    assert time.monotonic() - started < 120
    where = f"--config {config}: " if file_text else ""  # a key of the file names the file
    assert error.startswith(f"Error: {where}{named}: cannot reach Ray there"), error
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("no_data")
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ((), "RAY_ADDRESS=127.0.0.1:1 (the environment variable Ray joins when --ray-address "
             "is not given)"),
        (("--ray-address", "auto"), "RAY_ADDRESS=127.0.0.1:1 (the environment variable Ray "
                                    "joins when --ray-address is auto)"),
    ],
)  # fmt: skip
def test_an_unreachable_ray_address_variable_is_named_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...], named: str
) -> None:
    """``RAY_ADDRESS=127.0.0.1:1 secagg simulate --engine ray`` (no --ray-address, or
    ``auto``) was not checked: ray.init joined the variable's address and retried past
    150 s (killed), naming nothing; and an address from there was blamed on
    ``--ray-address``. It is refused before any data, naming the variable."""
    import time

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    args = [*SHORT, "--engine", "ray", *flags, "--out", str(tmp_path / "run")]
    started = time.monotonic()
    error = _one_line_error(_simulate(*args))
    assert time.monotonic() - started < 120
    assert error.startswith(f"Error: {named}: cannot reach Ray there"), error
    assert "nothing accepts connections on 127.0.0.1 port 1" in error
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def prior_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model vector of the right shape for :data:`SHORT`, as an earlier run's
    model.npy would be (what it scores does not matter here, what it cost does)."""
    import numpy as np

    from secagg.apps.simulation.config import SimulationConfig
    from secagg.dp.dpsgd import flat_parameters

    small = SimulationConfig(
        branches=3, rounds=1, local_epochs=1, train_rows=3000, test_rows_per_branch=400
    )
    branches, _ = runner.load_data(small)
    model = runner.starting_model(small, branches[0].x_train.shape[1], None)
    path = tmp_path_factory.mktemp("prior") / "model.npy"
    np.save(path, np.asarray(flat_parameters(model), dtype=np.float32), allow_pickle=False)
    return path


@pytest.mark.parametrize("prior_delta", ["0.9", "0.01"])
def test_a_prior_delta_that_is_no_guarantee_is_refused_before_any_training(
    tmp_path: Path, prior_file: Path, prior_delta: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--prior-delta 0.9`` was accepted (only ``prior_delta + delta < 1`` was asked)
    and every epsilon was printed at delta = 0.90001. The composed delta must be below
    1 / n of each branch's protected customers (a few hundred here), as delta alone."""

    def no_baseline(*args: object, **kwargs: object) -> None:
        raise AssertionError("a baseline trained before the refusal")

    monkeypatch.setattr(runner, "_run_baselines", no_baseline)
    out = tmp_path / "run"
    args = [*SHORT, "--prior-path", str(prior_file), "--prior-epsilon", "1"]
    error = _one_line_error(_simulate(*args, "--prior-delta", prior_delta, "--out", str(out)))
    assert error.startswith(f"Error: --prior-delta {prior_delta}: the composed delta"), error
    assert "is not below 1 / n" in error and "customers" in error
    assert not out.exists()


@pytest.mark.usefixtures("no_data")
def test_a_client_level_prior_delta_that_is_no_guarantee_is_refused_at_load(
    tmp_path: Path, prior_file: Path
) -> None:
    """Client level: the composed delta must be below 1 / branches (1/3 here), the rule
    ``delta`` alone already meets at load."""
    out = tmp_path / "run"
    args = [*SHORT, "--unit", "client", "--prior-path", str(prior_file)]
    args += ["--prior-epsilon", "1", "--prior-delta", "0.5", "--out", str(out)]
    error = _one_line_error(_simulate(*args))
    assert error.startswith("Error: --prior-delta + --delta (the composed delta) = 0.50001"), error
    assert "1/3" in error
    assert not out.exists()


def test_a_later_seeds_data_refusal_comes_before_any_seed_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--seeds N``: a refusal of one seed's data (here: seed 1's, as a split leaving a
    branch below its minimum rows would be) came only when that seed's turn came, after
    seed 0 had trained. Every seed's data is checked first; the refusal names the seed."""
    from secagg.apps.simulation.config import check_branch_data
    from secagg.errors import ConfigurationError

    def seed_1_refused(config: Any, branches: Any) -> list[str]:
        if config.seed == 1:
            raise ConfigurationError("--train-rows: branch-02 has too few rows (stand-in)")
        return check_branch_data(config, branches)

    def no_prior(*args: object, **kwargs: object) -> None:
        raise AssertionError("a seed trained before the refusal")

    # where the data stage reads it (secagg.apps.simulation.data, since the split of runner)
    monkeypatch.setattr(data, "check_branch_data", seed_1_refused)
    monkeypatch.setattr(runner, "prior_model", no_prior)
    out = tmp_path / "experiment"
    error = _one_line_error(_simulate(*SHORT, "--seeds", "2", "--out", str(out)))
    assert error == (
        "Error: --seeds 2: seed 1 is refused (checked before any seed trained): "
        "--train-rows: branch-02 has too few rows (stand-in)"
    ), error
    assert not out.exists()
