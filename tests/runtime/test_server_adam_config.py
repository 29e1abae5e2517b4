"""``federation.server_optimizer`` and ``federation.server_adam_tau``: what loads, what is
refused (a typed error naming the key), and that the server's optimizer stays the
server's business (nothing a branch or the key holder checks reads it).

Why: FedAdam is an option of the runtime's server (post-processing of the released
mean); a bad value must stop at load with the key named, as its neighbours do."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    MAX_SERVER_ADAM_TAU,
    SERVER_OPTIMIZERS,
    FederationConfig,
)

ROOT = Path(__file__).resolve().parents[2]


def _data(**federation: Any) -> dict[str, Any]:
    """A federation; with adam, a server learning rate, which a file must give for it."""
    if federation.get("server_optimizer") == "adam":
        federation = {"server_learning_rate": 0.05} | federation
    return {
        "federation": {"name": "opt", "clients": ["a", "b", "c"], "dimension": 4} | federation,
        "backend": {"name": "plain", "value_bound": 1.0},
    }


def test_the_defaults_are_fedavg() -> None:
    config = FederationConfig.from_dict(_data())
    assert (config.server_optimizer, config.server_adam_tau) == ("sgd", 1e-3)
    assert SERVER_OPTIMIZERS == ("sgd", "adam")


@pytest.mark.parametrize("tau", [1e-12, 1e-3, 1.0, MAX_SERVER_ADAM_TAU])
def test_adam_loads_from_toml(tmp_path: Path, tau: float) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[federation]\nname = "opt"\nclients = ["a", "b", "c"]\ndimension = 4\n'
        f'server_optimizer = "adam"\nserver_adam_tau = {tau!r}\nserver_learning_rate = 0.03\n'
        '[backend]\nname = "plain"\nvalue_bound = 1.0\n'
    )
    config = FederationConfig.load(path)
    assert (config.server_optimizer, config.server_adam_tau) == ("adam", tau)


@settings(max_examples=80, deadline=None)
@given(
    name=st.text(max_size=12).filter(lambda s: s not in SERVER_OPTIMIZERS)
    | st.sampled_from(["Adam", "ADAM", "sgd ", "fedadam", "momentum", ""])
)
def test_an_unknown_optimizer_is_refused_by_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"federation\.server_optimizer"):
        FederationConfig.from_dict(_data(server_optimizer=name))


@settings(max_examples=80, deadline=None)
@given(
    tau=st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda t: not (math.isfinite(t) and 0 < t <= MAX_SERVER_ADAM_TAU)
    ),
    optimizer=st.sampled_from(SERVER_OPTIMIZERS),
)
def test_a_bad_tau_is_refused_by_name(tau: float, optimizer: str) -> None:
    with pytest.raises(ConfigurationError, match=r"federation\.server_adam_tau"):
        FederationConfig.from_dict(_data(server_optimizer=optimizer, server_adam_tau=tau))


@settings(max_examples=40, deadline=None)
@given(momentum=st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True))
def test_a_momentum_beside_adam_is_refused(momentum: float) -> None:
    with pytest.raises(ConfigurationError, match=r"federation\.server_momentum.*'adam'"):
        FederationConfig.from_dict(_data(server_optimizer="adam", server_momentum=momentum))
    # with FedAvg the same momentum is FedAvgM, as before
    assert FederationConfig.from_dict(_data(server_momentum=momentum)).server_momentum == momentum


@pytest.mark.parametrize(
    ("key", "value", "needed"),
    [("server_optimizer", 1, "a string"), ("server_adam_tau", "0.001", "a number")],
)
def test_a_wrong_type_in_toml_names_the_key(
    tmp_path: Path, key: str, value: Any, needed: str
) -> None:
    path = tmp_path / "f.toml"
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    path.write_text(
        '[federation]\nname = "opt"\nclients = ["a", "b", "c"]\ndimension = 4\n'
        f"{key} = {shown}\n"
        '[backend]\nname = "plain"\nvalue_bound = 1.0\n'
    )
    with pytest.raises(ConfigurationError, match=rf"\[federation\] {key} must be {needed}"):
        FederationConfig.load(path)


def test_nothing_outside_the_server_and_config_reads_the_optimizer() -> None:
    """The server's optimizer is post-processing, the server's own business: no branch,
    key holder or wire check may read it (as none reads ``server_momentum``). The
    simulator, which plays the server (and steps its local-only baseline as the server
    does), sets it and records it."""
    readers = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "secagg").rglob("*.py")
        if "server_optimizer" in p.read_text() or "server_adam_tau" in p.read_text()
    )
    outside = [r for r in readers if not r.startswith("secagg/apps/simulation/")]
    assert outside == [
        "secagg/runtime/config.py",
        "secagg/runtime/server.py",
        "secagg/runtime/server_optimizer.py",
    ]


def test_the_config_docs_name_the_new_keys() -> None:
    head = (ROOT / "secagg" / "runtime" / "config.py").read_text().split('"""')[1]
    assert "server_optimizer" in head and "server_adam_tau" in head
    privacy = (ROOT / "docs" / "privacy.md").read_text()
    assert "server_optimizer" in privacy


def test_a_long_unknown_optimizer_is_not_echoed_whole() -> None:
    """A pasted blob as the optimizer's name is named, not printed back in full."""
    with pytest.raises(ConfigurationError, match=r"federation\.server_optimizer") as refused:
        FederationConfig.from_dict(_data(server_optimizer="x" * 100_000))
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("momentum", [None, 0.0])
def test_adam_without_a_server_learning_rate_is_refused_naming_it(momentum: float | None) -> None:
    """FedAdam moves every coordinate by about the server learning rate a round; the
    default, 1.0, is FedAvg's: a file asking for adam without a rate loaded and ran
    FedAdam at 1 a parameter a round (second review, 2026-12-07, as ``secagg simulate``
    refuses it)."""
    data = _data(server_optimizer="adam")
    del data["federation"]["server_learning_rate"]
    if momentum is not None:
        data["federation"]["server_momentum"] = momentum
    with pytest.raises(ConfigurationError, match=r"federation\.server_learning_rate") as refused:
        FederationConfig.from_dict(data)
    assert "federation.server_optimizer = 'adam'" in str(refused.value)


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(1e-6, 10.0))
def test_adam_with_any_server_learning_rate_given_loads(rate: float) -> None:
    config = FederationConfig.from_dict(_data(server_optimizer="adam", server_learning_rate=rate))
    assert (config.server_optimizer, config.server_learning_rate) == ("adam", rate)
    # FedAvg without a rate still takes the default
    assert FederationConfig.from_dict(_data()).server_learning_rate == 1.0
