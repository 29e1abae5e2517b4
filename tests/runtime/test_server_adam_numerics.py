"""FedAdam's step at the edges of float64 (second review of ``server_optimizer =
"adam"``, 2026-12-07): a tiny ``server_adam_tau`` beside a released mean whose square
underflows.

Why: in exact arithmetic FedAdam's first step moves each coordinate by at most the
learning rate (``m_hat / sqrt(v_hat)`` is the sign of the mean). In float64 a mean
coordinate below about 1.6e-161 squares to zero, so the step is ``lr * g / tau``: with
``tau = 1e-300`` (which loaded) a coordinate of ``1e-200`` (the plain backend sums float64,
so one branch can send it) moved the model by ``1e100 * lr``, a finite model the server
adopted. ``federation.server_adam_tau`` now has a floor (``MIN_SERVER_ADAM_TAU``)
under which that cannot happen."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.runtime.config import MAX_SERVER_ADAM_TAU, MIN_SERVER_ADAM_TAU, FederationConfig
from secagg.runtime.server import FederationServer

D = 4


def _config(**federation: Any) -> FederationConfig:
    """A plain-backend federation (float64 sums: any float a branch sends is summed);
    with adam, a server learning rate, which a file must give for it."""
    if federation.get("server_optimizer") == "adam":
        federation = {"server_learning_rate": 0.05} | federation
    return FederationConfig.from_dict(
        {
            "federation": {"name": "adam", "clients": ["a", "b", "c"], "dimension": D} | federation,
            "backend": {"name": "plain", "value_bound": 1.0},
        }
    )


def _first_step(config: FederationConfig, mean: np.ndarray) -> np.ndarray:
    """The model change of a fresh server's first FedAdam step from a zero model."""
    bare = SimpleNamespace(
        config=config,
        model=np.zeros(D),
        _velocity=np.zeros(D),
        _second=np.zeros(D),
        _steps=0,
    )
    model, _ = FederationServer._updated(bare, mean)
    return model


@pytest.mark.parametrize("tau", [1e-300, 5e-324, MIN_SERVER_ADAM_TAU / 2])
def test_a_tau_below_the_floor_is_refused_by_name(tau: float) -> None:
    with pytest.raises(ConfigurationError, match=r"federation\.server_adam_tau .*1e-100"):
        _config(server_optimizer="adam", server_adam_tau=tau)


def test_the_floor_loads() -> None:
    assert _config(server_optimizer="adam", server_adam_tau=MIN_SERVER_ADAM_TAU)


_exponent = st.floats(-330.0, 6.0)
_coordinate = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=True)


@settings(max_examples=200, deadline=None)
@given(
    tau_exponent=_exponent,
    mean=st.lists(_coordinate, min_size=D, max_size=D),
    lr=st.sampled_from([1e-3, 0.1, 1.0, 100.0]),
)
@example(tau_exponent=-300.0, mean=[1e-200, 1e-160, 0.0, -1e-170], lr=1.0)
def test_a_loaded_tau_never_steps_past_the_learning_rate(
    tau_exponent: float, mean: list[float], lr: float
) -> None:
    """Either the config refuses the tau, or the first step moves no coordinate by more
    than the learning rate (up to rounding), whatever the released mean holds."""
    tau = min(10.0**tau_exponent, MAX_SERVER_ADAM_TAU)
    if tau == 0:
        return
    try:
        config = _config(server_optimizer="adam", server_adam_tau=tau, server_learning_rate=lr)
    except ConfigurationError:
        assert tau < MIN_SERVER_ADAM_TAU
        return
    step = _first_step(config, np.array(mean))
    assert np.isfinite(step).all()
    assert np.abs(step).max() <= lr * (1 + 1e-9), (tau, mean, step)


# --- server_adam_tau beside FedAvg --------------------------------------------------------


def _toml(tmp_path: Path, lines: str) -> Path:
    path = tmp_path / "federation.toml"
    path.write_text(
        '[federation]\nname = "opt"\nclients = ["a", "b", "c"]\ndimension = 4\n'
        + lines
        + '[backend]\nname = "plain"\nvalue_bound = 1.0\n'
    )
    return path


@pytest.mark.parametrize("optimizer", ['server_optimizer = "sgd"\n', ""])
@pytest.mark.parametrize("tau", ["1e-3", "0.5"])
def test_a_tau_set_beside_fedavg_is_refused_naming_both_keys(
    tmp_path: Path, optimizer: str, tau: str
) -> None:
    """A file that sets a tau (even the default's value) with FedAvg is a federation
    that believes it runs FedAdam: refused, as ``sampling.count`` beside Poisson is."""
    path = _toml(tmp_path, optimizer + f"server_adam_tau = {tau}\n")
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.load(path)
    message = str(refused.value)
    assert "federation.server_adam_tau" in message
    assert "federation.server_optimizer" in message


def test_fedavg_without_a_tau_and_adam_with_one_still_load(tmp_path: Path) -> None:
    assert FederationConfig.load(_toml(tmp_path, "")).server_optimizer == "sgd"
    adam = FederationConfig.load(
        _toml(
            tmp_path,
            'server_optimizer = "adam"\nserver_adam_tau = 0.5\nserver_learning_rate = 0.03\n',
        )
    )
    assert (adam.server_optimizer, adam.server_adam_tau) == ("adam", 0.5)


# --- the mean's dtype -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    mean=st.lists(st.floats(-1.0, 1.0, width=32, allow_subnormal=False), min_size=D, max_size=D),
    optimizer=st.sampled_from(["sgd", "adam"]),
)
@example(mean=[1e-30, 3e-20, -1e-25, 0.5], optimizer="adam")
def test_a_float32_mean_steps_as_its_float64_value(mean: list[float], optimizer: str) -> None:
    """The model is float64 (a checkpoint is read as ``<f8``); FedAvg's step upcasts a
    float32 mean through it, and FedAdam must too: it squared a float32 mean in float32,
    where a coordinate of 1e-30 squares to zero and steps by ``lr * g / tau`` instead of
    ``lr``. Every mechanism releases float64 today; this holds the step to the value,
    not to the array's dtype."""
    config = _config(server_optimizer=optimizer)
    as32 = np.array(mean, dtype=np.float32)
    stepped = _first_step(config, as32)
    assert stepped.dtype == np.float64
    np.testing.assert_array_equal(stepped, _first_step(config, as32.astype(np.float64)))
