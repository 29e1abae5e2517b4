"""The server's FedAdam step (``federation.server_optimizer = "adam"``): its stepping
against an independent reference, a whole federation's model after three rounds, a
non-finite step refused with the optimizer's state kept, and FedAvg left as it was.

Why: a probe on the tuning seeds (benchmarks/bench_record_rounds.py's ``adam:`` variants)
suggested FedAdam lifts record-level DP federations far from the public prior; the runtime
must step exactly as that probe did (Reddi et al. 2021, with Adam's bias correction)."""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import ADAM_BETA1, ADAM_BETA2, FederationConfig
from secagg.runtime.server import FederationServer, ServerMoments
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 12
NAMES = [f"branch-{i:02d}" for i in range(4)]
#: generous: a round ends as soon as every branch answered; this only bounds a stuck one
WAIT = 90.0


def _reference_adam(
    means: list[list[float]], lr: float, tau: float, start: list[float]
) -> list[float]:
    """FedAdam over ``means`` one coordinate at a time in plain floats, written from the
    probe's stepping (benchmarks/bench_record_rounds.py ``probe_seed``), not the server's."""
    model = list(start)
    for i in range(len(model)):
        m = v = 0.0
        for t, mean in enumerate(means, start=1):
            g = mean[i]
            m = 0.9 * m + 0.1 * g
            v = 0.99 * v + 0.01 * g * g
            m_hat = m / (1 - 0.9**t)
            v_hat = v / (1 - 0.99**t)
            model[i] = model[i] + lr * m_hat / (math.sqrt(v_hat) + tau)
    return model


def _config(**federation: Any) -> FederationConfig:
    """A plain-backend federation of NAMES with central DP (the released mean is noised)."""
    if federation.get("server_optimizer") == "adam":  # a file must give its rate
        federation = {"server_learning_rate": 0.05} | federation
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "adam",
                "clients": NAMES,
                "dimension": D,
                "rounds": 3,
                "seed": 11,
                "replay_noise": True,
            }
            | federation,
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "plain", "value_bound": 1.0},
            "dp": {"clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-3},
            "deadlines": {"phase_seconds": WAIT},
        }
    )


def _bare_server(config: FederationConfig, model: np.ndarray) -> Any:
    """What :meth:`FederationServer._updated` reads of a server, and nothing more."""
    return SimpleNamespace(
        config=config,
        model=model,
        _velocity=np.zeros(model.size),
        _second=np.zeros(model.size),
        _steps=0,
    )


def _step(bare: Any, mean: np.ndarray) -> tuple[np.ndarray, ServerMoments]:
    """One step, adopted as the server adopts it (model and moments together)."""
    model, moments = FederationServer._updated(bare, mean)
    bare.model = model
    bare._velocity, bare._second, bare._steps = moments
    return model, moments


_coordinate = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(
    means=st.lists(st.lists(_coordinate, min_size=D, max_size=D), min_size=1, max_size=8),
    start=st.lists(_coordinate, min_size=D, max_size=D),
    lr=st.sampled_from([1e-3, 0.01, 0.1, 1.0, 5.0]),
    tau=st.sampled_from([1e-6, 1e-3, 0.1, 1.0]),
)
def test_adam_steps_equal_the_reference_over_rounds(
    means: list[list[float]], start: list[float], lr: float, tau: float
) -> None:
    config = _config(server_optimizer="adam", server_learning_rate=lr, server_adam_tau=tau)
    bare = _bare_server(config, np.array(start, dtype=np.float64))
    for mean in means:
        _step(bare, np.array(mean, dtype=np.float64))
    assert bare._steps == len(means)
    expected = np.array(_reference_adam(means, lr, tau, start))
    # each step moves a coordinate by at most about lr / (1 - 0.9) (m_hat / sqrt(v_hat) is
    # bounded), and a sum of such terms that nearly cancels keeps their rounding in
    # absolute terms: the tolerance scales with what was added, not with the result
    # (a start of -0.5 stepped back to 1e-9 differs by 6.5e-19 between two orders of
    # the same sums)
    scale = max(1.0, max(abs(x) for x in start)) + 10 * lr * len(means)
    np.testing.assert_allclose(bare.model, expected, rtol=1e-12, atol=1e-13 * scale)


def test_the_betas_are_reddi_et_al_s() -> None:
    assert (ADAM_BETA1, ADAM_BETA2) == (0.9, 0.99)


def test_an_overflowing_square_leaves_the_moments_not_finite() -> None:
    """A mean whose square overflows gives a finite model (its step is 0) but an inf
    second moment, which would freeze the coordinate: the server refuses such a step."""
    config = _config(server_optimizer="adam")
    bare = _bare_server(config, np.zeros(D))
    model, moments = FederationServer._updated(bare, np.full(D, 1e200))
    assert np.isfinite(model).all()
    assert not moments.finite()
    assert ServerMoments(np.zeros(D), np.zeros(D), 1).finite()


def _run(
    config: FederationConfig, tmp_path: Path, rounds: int, **run: Any
) -> tuple[FederationServer, list[np.ndarray], list[Any]]:
    """Run ``config`` with NAMES over the in-process hub; the released means as released,
    and the server's state seen as each release is made (before its step)."""
    hub = InProcessHub()
    targets = {n: np.linspace(-1, 1, D) * 0.1 * (i + 1) for i, n in enumerate(NAMES)}
    for name in NAMES:
        client = FederationClient(
            name,
            lambda m, t=targets[name]: t - m,
            hub.connect(name),
            policy=BranchPolicy(allow_plain=True),
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": WAIT, "rounds": rounds}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"))
    means: list[np.ndarray] = []
    seen: list[Any] = []
    release = server.mechanism.release

    def spied(*args: Any, **kwargs: Any) -> Any:
        seen.append(
            (server.model.copy(), server._velocity.copy(), server._second.copy(), server._steps)
        )
        out = release(*args, **kwargs)
        if "mean_as" in run:
            out = dataclasses.replace(out, mean=run["mean_as"](out.mean))
        means.append(np.array(out.mean, dtype=np.float64, copy=True))
        hook = run.get("before_step")
        if hook is not None:
            hook(len(means))
        return out

    server.mechanism.release = spied  # type: ignore[method-assign]
    results = server.run(wait_for_clients=WAIT, max_attempts=run.get("max_attempts"))
    server.results = results  # type: ignore[attr-defined]
    return server, means, seen


def test_a_federation_with_adam_steps_its_released_means(tmp_path: Path) -> None:
    config = _config(server_optimizer="adam", server_learning_rate=0.05, server_adam_tau=1e-3)
    server, means, _ = _run(config, tmp_path, rounds=3)
    assert [r.status for r in server.results] == ["complete"] * 3  # type: ignore[attr-defined]
    assert len(means) == 3
    expected = _reference_adam([list(m) for m in means], 0.05, 1e-3, [0.0] * D)
    np.testing.assert_allclose(server.model, expected, rtol=1e-12, atol=1e-300)
    assert server._steps == 3
    # not FedAvg's model: the optimizer did change the steps
    assert not np.allclose(server.model, 0.05 * sum(means))


@pytest.mark.parametrize("optimizer", [None, "sgd"], ids=["default", "sgd"])
def test_the_default_optimizer_is_fedavg_byte_for_byte(
    tmp_path: Path, optimizer: str | None
) -> None:
    config = _config(
        server_learning_rate=1.5, **({} if optimizer is None else {"server_optimizer": optimizer})
    )
    assert config.server_optimizer == "sgd"
    server, means, _ = _run(config, tmp_path, rounds=3)
    assert [r.status for r in server.results] == ["complete"] * 3  # type: ignore[attr-defined]
    model = np.zeros(D)
    for mean in means:
        model = model + 1.5 * mean
    assert server.model.tobytes() == model.tobytes()
    assert not server._second.any()


def test_a_non_finite_adam_step_is_refused_and_keeps_the_optimizer_state(
    tmp_path: Path,
) -> None:
    """Round 1 steps; round 2's learning rate is made inf (the config refuses it; this
    one got past it) after its mean is released: the round aborts, and the model, both
    moments and the step count are round 1's."""
    config = _config(server_optimizer="adam", server_learning_rate=0.05, rounds=2)

    def break_the_rate(number: int) -> None:
        if number == 2:
            object.__setattr__(config, "server_learning_rate", float("inf"))

    server, means, seen = _run(
        config, tmp_path, rounds=2, before_step=break_the_rate, max_attempts=2
    )
    statuses = [r.status for r in server.results]  # type: ignore[attr-defined]
    assert statuses == ["complete", "aborted"]
    assert "non-finite parameters" in str(server.results[1].reason)  # type: ignore[attr-defined]
    assert "server_adam_tau" in str(server.results[1].reason)  # type: ignore[attr-defined]
    model, first, second, steps = seen[1]  # the state round 2 started its step from
    assert steps == 1 and first.any() and second.any()
    assert np.array_equal(server.model, model)
    assert np.array_equal(server._velocity, first)
    assert np.array_equal(server._second, second)
    assert server._steps == 1
    expected = _reference_adam([list(means[0])], 0.05, 1e-3, [0.0] * D)
    np.testing.assert_allclose(server.model, expected, rtol=1e-12, atol=1e-300)


def test_the_adam_state_restarts_at_zero_with_a_new_server(tmp_path: Path) -> None:
    """Like FedAvgM's velocity, FedAdam's moments are not checkpointed: a server
    resuming from the state starts them (and the bias correction's count) at zero."""
    config = _config(server_optimizer="adam", server_learning_rate=0.05, rounds=1)
    first, _, _ = _run(config, tmp_path, rounds=1)
    assert first._steps == 1
    resumed = FederationServer(config, InProcessHub(), ServerStore(tmp_path / "state.sqlite"))
    assert np.array_equal(resumed.model, first.model)
    assert resumed._steps == 0
    assert not resumed._velocity.any() and not resumed._second.any()


def test_a_step_whose_moments_overflow_is_refused_and_keeps_the_state(tmp_path: Path) -> None:
    """A released mean whose square overflows (stood in by scaling the real one: a
    clipped mean never gets there) leaves the model finite, its steps being 0, but the
    second moment inf, which would freeze every coordinate at a zero step from then on:
    the round aborts, naming the moments, and model and moments stay as they were."""
    config = _config(server_optimizer="adam", rounds=1)
    server, _, _ = _run(config, tmp_path, rounds=1, mean_as=lambda m: m * 1e200, max_attempts=1)
    assert [r.status for r in server.results] == ["aborted"]  # type: ignore[attr-defined]
    assert "moments are not finite" in str(server.results[0].reason)  # type: ignore[attr-defined]
    assert not server.model.any()
    assert not server._velocity.any() and not server._second.any()
    assert server._steps == 0
