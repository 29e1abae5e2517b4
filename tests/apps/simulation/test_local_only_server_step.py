"""Local-only under record-level distributed DP steps as the federation's server does:
FedAvg, FedAvgM or FedAdam (``server_optimizer``), through the runtime's own step.

Why: the baseline kept its own copy of FedAvgM's step, so with ``server_optimizer =
"adam"`` the federation would have stepped FedAdam and every branch alone FedAvg, and
each branch's verdict (federated at least local) would have compared two optimizers
instead of sharing against not sharing. The copy is gone: the baseline calls
:func:`secagg.runtime.server_optimizer.server_step`, the step the federation's server
calls (:class:`~secagg.apps.simulation.server_step.ServerStep`).

The branch's gradients are replaced by a fixed sequence and its noise by zeros, so the
steps can be checked against the published rules written out here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import BranchTrainer, local_only_steps
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.server_step import ServerStep

BASE: dict[str, Any] = {
    "branches": 2,
    "local_epochs": 1,
    "model": "logistic",
    "batch_size": 16,
    "unit": "record",
    "mechanism": "distributed",
}


def _branch(rows: int = 60) -> BranchData:
    """``rows`` rows of 20 cards (3 rows each), a fifth of them fraud."""
    grid = np.linspace(-1.0, 1.0, rows * 4, dtype=np.float32).reshape(rows, 4)
    labels = (np.arange(rows) % 5 == 0).astype(np.float32)
    cards = np.arange(rows) // 3
    return BranchData("branch-01", grid, labels, grid, labels, 0.2, customers_train=cards)


def _trained_on(
    config: SimulationConfig, means: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of a local-only branch whose gradient steps are ``means`` and whose
    noise is zero."""
    import secagg.dp.noise

    trainer = BranchTrainer(config, _branch(), "local")
    start = trainer.flat().astype(np.float64)
    given = iter(means)
    monkeypatch.setattr(trainer, "gradient_step", lambda: next(given).copy())
    monkeypatch.setattr(secagg.dp.noise, "gaussian", lambda std, size, stream: np.zeros(size))
    trainer.train(config.epochs)
    return start, trainer.flat().astype(np.float64)


def _adam_reference(
    start: np.ndarray, means: list[np.ndarray], lr: float, tau: float
) -> np.ndarray:
    """FedAdam (Reddi et al. 2021, betas 0.9 / 0.99, with Adam's bias correction, as the
    runtime's server), the model loaded into float32 after each step as the branch's
    network holds it."""
    model, first, second = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t, g in enumerate(means, start=1):
        first = 0.9 * first + 0.1 * g
        second = 0.99 * second + 0.01 * g**2
        step = (first / (1 - 0.9**t)) / (np.sqrt(second / (1 - 0.99**t)) + tau)
        model = (model + lr * step).astype(np.float32).astype(np.float64)
    return model


def _momentum_reference(
    start: np.ndarray, means: list[np.ndarray], lr: float, momentum: float
) -> np.ndarray:
    model, velocity = start.copy(), np.zeros_like(start)
    for g in means:
        velocity = momentum * velocity + g
        model = (model + lr * velocity).astype(np.float32).astype(np.float64)
    return model


def _means(size: int, steps: int, seed: int) -> list[np.ndarray]:
    """A fixed sequence of gradient steps (test data, not a secret)."""
    grid = np.linspace(-0.5, 0.5, size * steps).reshape(steps, size)
    return [np.roll(row, seed + i) * (1 + 0.1 * i) for i, row in enumerate(grid)]


@settings(max_examples=8, deadline=None)
@given(
    lr=st.sampled_from([0.01, 0.1, 1.0]),
    tau=st.sampled_from([1e-6, 1e-3, 0.1]),
    rounds=st.integers(1, 12),
    seed=st.integers(0, 5),
)
def test_local_only_steps_fedadam_under_adam(lr: float, tau: float, rounds: int, seed: int) -> None:
    config = SimulationConfig(
        **BASE,
        rounds=rounds,
        server_optimizer="adam",
        server_adam_tau=tau,
        server_learning_rate=lr,
    )
    with pytest.MonkeyPatch.context() as patch:
        size = BranchTrainer(config, _branch(), "local").flat().size
        means = _means(size, local_only_steps(config), seed)
        start, end = _trained_on(config, means, patch)
    expected = _adam_reference(start, means, lr, tau)
    np.testing.assert_allclose(end, expected, rtol=1e-6, atol=1e-7)
    # and not FedAvg's step, which it took before
    fedavg = _momentum_reference(start, means, lr, 0.0)
    assert not np.allclose(end, fedavg, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_local_only_still_steps_fedavgm_under_sgd(
    momentum: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimulationConfig(**BASE, rounds=5, server_momentum=momentum)
    size = BranchTrainer(config, _branch(), "local").flat().size
    means = _means(size, 5, 1)
    start, end = _trained_on(config, means, monkeypatch)
    # bit for bit: the same arithmetic as the copy it replaced
    np.testing.assert_array_equal(end, _momentum_reference(start, means, 2.0, momentum))


def test_the_server_step_is_the_runtimes_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step is the runtime's function, the one its server calls, not a copy: a
    change there reaches here."""
    from secagg.apps.simulation import server_step as simulation_step
    from secagg.runtime import server_optimizer
    from secagg.runtime.server import FederationServer

    assert simulation_step.server_step is server_optimizer.server_step
    calls: list[str] = []
    real = server_optimizer.server_step

    def spied(settings: Any, *args: Any) -> Any:
        calls.append(settings.server_optimizer)
        return real(settings, *args)

    monkeypatch.setattr(simulation_step, "server_step", spied)
    config = SimulationConfig(**BASE, rounds=3, server_optimizer="adam")
    size = BranchTrainer(config, _branch(), "local").flat().size
    _trained_on(config, _means(size, 3, 0), monkeypatch)
    assert calls == ["adam"] * 3  # one server step per local-only step
    step = ServerStep(config, 4)
    step.step(step.step(np.zeros(4), np.ones(4)), np.ones(4))
    assert step._moments.steps == 2  # the bias correction counts the steps taken
    # and the federation's server steps through the same function
    monkeypatch.setattr("secagg.runtime.server.server_step", spied)
    calls.clear()
    FederationServer._updated(_BareServer(step.config), np.ones(4))
    assert calls == ["adam"]


class _BareServer:
    """What :meth:`FederationServer._updated` reads of its server."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.model = np.zeros(4)
        self._velocity = np.zeros(4)
        self._second = np.zeros(4)
        self._steps = 0
