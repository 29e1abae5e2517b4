"""``secagg simulate --server-optimizer adam``: the federation's server steps FedAdam
(Reddi et al. 2021) over the released means, the run folder says so and its
config.toml replays it, every mechanism and backend runs it (and ``--seeds``), and the
default run is FedAvg as before, bit for bit.

Why: the runtime's server had FedAdam and ``secagg simulate`` could not run it, so a
user could not compare it with FedAvg(M) on the simulator (helper brief, 2026-12-07).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.runtime.server import FederationServer

#: a small federation that still has fraud in every branch (the generator's floor)
SHORT = ["--branches", "3", "--rounds", "3", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]

#: record-level DP gradient descent noised once: every parameter trains, in full
#: batches, so a server step shows in the model at once
NOISE_ONCE = ["--unit", "record", "--mechanism", "distributed"]

ADAM = ["--server-optimizer", "adam", "--server-learning-rate", "0.05", "--server-adam-tau", "0.01"]


class _ServerSteps:
    """What the federation's server stepped from and along, spied on its own step."""

    def __init__(self) -> None:
        self.start: np.ndarray | None = None
        self.means: list[np.ndarray] = []
        self.optimizers: set[str] = set()
        #: the last model the server's step returned (adopted: every round completes)
        self.final: np.ndarray | None = None


@pytest.fixture
def server_steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[_ServerSteps]:
    """Records each released mean the federation's server steps along (not the
    local-only baseline's steps, which call the same step function,
    :func:`secagg.runtime.server_optimizer.server_step`, outside any server)."""
    seen = _ServerSteps()
    real = FederationServer._updated

    def spied(self: Any, mean: np.ndarray) -> Any:
        if seen.start is None:
            seen.start = np.array(self.model, dtype=np.float64)
        seen.means.append(np.array(mean, dtype=np.float64))
        seen.optimizers.add(self.config.server_optimizer)
        model, moments = real(self, mean)
        seen.final = np.array(model, dtype=np.float64)
        return model, moments

    monkeypatch.setattr(FederationServer, "_updated", spied)
    yield seen


def _simulate(*args: str) -> None:
    result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exit_code == 0, result.output


def _fedadam(start: np.ndarray, means: list[np.ndarray], lr: float, tau: float) -> np.ndarray:
    """FedAdam as published (betas 0.9 / 0.99) with Adam's bias correction, as the
    runtime documents its server's step."""
    model, first, second = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t, g in enumerate(means, start=1):
        first = 0.9 * first + 0.1 * g
        second = 0.99 * second + 0.01 * g**2
        model = model + lr * (first / (1 - 0.9**t)) / (np.sqrt(second / (1 - 0.99**t)) + tau)
    return model


def _model(run: Path) -> np.ndarray:
    return np.load(run / "model.npy")


def _released_steps_checked(run: Path, seen: _ServerSteps, lr: float, tau: float) -> None:
    """The server's model is FedAdam's steps from its start along the released means,
    and the run folder's model.npy holds it (float32; the whole network, whose last
    entries are the output layer the federation trains with a prior)."""
    assert seen.start is not None and seen.final is not None
    expected = _fedadam(seen.start, seen.means, lr=lr, tau=tau)
    np.testing.assert_allclose(seen.final, expected, rtol=1e-12, atol=1e-15)
    released = _model(run)
    assert np.array_equal(released[-seen.final.size :], seen.final.astype(np.float32))


def test_an_adam_run_releases_the_fedadam_steps_of_its_released_means(
    tmp_path: Path, server_steps: _ServerSteps
) -> None:
    run = tmp_path / "adam"
    _simulate(*SHORT, *NOISE_ONCE, *ADAM, "--out", str(run))
    assert server_steps.optimizers == {"adam"}
    assert len(server_steps.means) == 3
    _released_steps_checked(run, server_steps, lr=0.05, tau=0.01)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["server_optimizer"] == "adam"
    assert summary["config"]["server_adam_tau"] == 0.01
    assert summary["config"]["server_learning_rate"] == 0.05
    report = (run / "report.md").read_text()
    assert "server step FedAdam (server learning rate 0.05, tau 0.01, betas 0.9 / 0.99)" in report
    toml = (run / "config.toml").read_text()
    assert 'server_optimizer = "adam"' in toml and "server_adam_tau = 0.01" in toml

    # the same run with FedAvg at the same learning rate releases another model
    sgd = tmp_path / "sgd"
    _simulate(*SHORT, *NOISE_ONCE, "--server-learning-rate", "0.05", "--out", str(sgd))
    assert not np.allclose(_model(sgd), _model(run))
    assert json.loads((sgd / "summary.json").read_text())["config"]["server_optimizer"] == "sgd"
    assert "server_adam_tau" not in json.loads((sgd / "summary.json").read_text())["config"]
    assert "server step FedAvg (server learning rate 0.05)" in (sgd / "report.md").read_text()

    # the run folder's config.toml replays it: the same model, bit for bit
    replay = tmp_path / "replay"
    _simulate("--config", str(run / "config.toml"), "--quiet", "--out", str(replay))
    assert (replay / "model.npy").read_bytes() == (run / "model.npy").read_bytes()
    replayed = json.loads((replay / "summary.json").read_text())["config"]
    assert {**replayed, "out": None} == {**summary["config"], "out": None}


def test_the_default_run_is_the_explicit_sgd_run_bit_for_bit(tmp_path: Path) -> None:
    """The default (record-level DP-SGD, FedAvg at 2) and the same with ``--server-optimizer
    sgd`` written out release the same model: the new key changed no default run."""
    default, explicit = tmp_path / "default", tmp_path / "explicit"
    _simulate(*SHORT, "--rounds", "2", "--out", str(default))
    _simulate(*SHORT, "--rounds", "2", "--server-optimizer", "sgd", "--out", str(explicit))
    assert (default / "model.npy").read_bytes() == (explicit / "model.npy").read_bytes()
    assert "server step FedAvg (server learning rate 2)" in (default / "report.md").read_text()


#: every mechanism and backend the simulator offers, each once (the noise once on
#: secagg+ is the test above's)
SETTINGS = {
    "record-dpsgd/secagg+": ["--mechanism", "dpsgd", "--backend", "secagg+"],
    "client-central/ckks": ["--mechanism", "central", "--backend", "ckks"],
    "client-distributed/secagg": ["--mechanism", "distributed", "--backend", "secagg"],
    "off/plain": ["--mechanism", "off", "--backend", "plain"],
    "record-distributed/secagg": [*NOISE_ONCE, "--backend", "secagg"],
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_mechanism_and_backend_steps_fedadam(
    tmp_path: Path, setting: str, server_steps: _ServerSteps
) -> None:
    run = tmp_path / "run"
    _simulate(*SHORT, "--rounds", "2", *SETTINGS[setting], *ADAM, "--out", str(run))
    assert server_steps.optimizers == {"adam"}
    assert len(server_steps.means) == 2
    _released_steps_checked(run, server_steps, lr=0.05, tau=0.01)
    assert json.loads((run / "summary.json").read_text())["config"]["server_optimizer"] == "adam"


def test_an_experiment_over_seeds_runs_fedadam_on_each_and_says_so(
    tmp_path: Path, server_steps: _ServerSteps
) -> None:
    out = tmp_path / "exp"
    args = [*SHORT, "--rounds", "2", "--mechanism", "off", "--backend", "plain", *ADAM]
    _simulate(*args, "--seed", "4", "--seeds", "2", "--out", str(out))
    assert server_steps.optimizers == {"adam"} and len(server_steps.means) == 4
    payload = json.loads((out / "experiment.json").read_text())
    assert payload["config"]["server_optimizer"] == "adam"
    assert payload["config"]["server_adam_tau"] == 0.01
    for seed in (4, 5):
        seed_summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        assert seed_summary["config"]["server_optimizer"] == "adam"
    title = next(line for line in (out / "experiment.md").read_text().splitlines() if line)
    assert title.startswith("# Experiment: ") and "server step FedAdam" in title, title
