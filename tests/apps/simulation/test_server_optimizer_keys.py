"""``secagg simulate``'s ``server_optimizer`` and ``server_adam_tau``: the keys of
``[training]`` and the flags ``--server-optimizer`` / ``--server-adam-tau``, accepted and
refused as the runtime's federation file takes ``federation.server_optimizer`` and
``federation.server_adam_tau``, each refusal one line naming the key or flag (and the
file) before any data is made.

Why: the runtime's server had FedAdam (Reddi et al. 2021) and ``secagg simulate`` could
not run it: a user comparing it with FedAvg(M) on the simulator had no way to
(helper brief of 2026-12-07)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from _simulate_cli import SHORT, one_line_error, simulate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import SECTION_OF, SimulationConfig
from secagg.apps.simulation.federation_plan import federation_config
from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    MAX_SERVER_ADAM_TAU,
    MIN_SERVER_ADAM_TAU,
    FederationConfig,
)

#: the runtime's default tau, as its config states it
RUNTIME_TAU = FederationConfig.__dataclass_fields__["server_adam_tau"].default


# --- accepted --------------------------------------------------------------------------


def test_the_keys_live_beside_server_momentum_and_have_flags() -> None:
    assert SECTION_OF["server_optimizer"] == SECTION_OF["server_momentum"] == "training"
    assert SECTION_OF["server_adam_tau"] == "training"
    # (a rate given: FedAdam at FedAvg's default rate nobody chose is refused, see
    # test_server_step_named.py)
    config = build_config(
        None, {"server_optimizer": "adam", "server_adam_tau": 0.01, "server_learning_rate": 0.03}
    )
    assert (config.server_optimizer, config.server_adam_tau) == ("adam", 0.01)


def test_the_default_is_sgd_without_a_tau_and_adam_takes_the_runtimes_tau() -> None:
    assert SimulationConfig().server_optimizer == "sgd"
    assert SimulationConfig().server_adam_tau is None
    assert "server_adam_tau" not in SimulationConfig().as_dict()  # sgd has none to record
    adam = SimulationConfig(server_optimizer="adam")
    assert adam.server_adam_tau == RUNTIME_TAU == 1e-3  # filled in: the records name it
    assert adam.as_dict()["server_optimizer"] == "adam"
    assert adam.as_dict()["server_adam_tau"] == RUNTIME_TAU
    # written explicitly, sgd is the default run
    assert SimulationConfig(server_optimizer="sgd") == SimulationConfig()


def test_a_file_sets_them_in_training(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[training]\nserver_optimizer = "adam"\nserver_adam_tau = 1e-4\n'
        "server_learning_rate = 0.03\n"
    )
    loaded = SimulationConfig.load(path)
    assert (loaded.server_optimizer, loaded.server_adam_tau) == ("adam", 1e-4)
    via_cli = build_config(str(path), {})
    assert (via_cli.server_optimizer, via_cli.server_adam_tau) == ("adam", 1e-4)


@pytest.mark.parametrize("tau", [MIN_SERVER_ADAM_TAU, 1e-7, 1.0, MAX_SERVER_ADAM_TAU])
def test_the_federation_server_gets_the_optimizer(tmp_path: Path, tau: float) -> None:
    config = SimulationConfig(
        branches=3, train_rows=3000, test_rows_per_branch=400, server_optimizer="adam",
        server_adam_tau=tau, server_learning_rate=0.05,
    )  # fmt: skip
    fed = federation_config(config, 33, tmp_path / "s.sqlite")
    assert fed.server_optimizer == "adam" and fed.server_adam_tau == tau
    assert fed.server_learning_rate == 0.05 and fed.server_momentum == 0
    sgd = federation_config(
        SimulationConfig(branches=3, server_momentum=0.5), 33, tmp_path / "t.sqlite"
    )
    assert (sgd.server_optimizer, sgd.server_momentum) == ("sgd", 0.5)
    assert sgd.server_adam_tau == RUNTIME_TAU  # the runtime's default, unread by sgd


def test_adam_beside_a_zero_momentum_is_taken(tmp_path: Path) -> None:
    """A run folder's config.toml writes ``server_momentum = 0.0`` beside adam; its
    replay must run (the runtime refuses only a momentum that would be used)."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[training]\nserver_optimizer = "adam"\nserver_momentum = 0.0\n'
        "server_learning_rate = 0.03\n"
    )
    assert build_config(str(path), {}).server_optimizer == "adam"


# --- refused ---------------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_runs")
def test_a_tau_beside_sgd_is_refused_naming_the_flag(tmp_path: Path) -> None:
    error = one_line_error(simulate(*SHORT, "--server-adam-tau", "0.1", "--out", str(tmp_path)))
    assert "--server-adam-tau is set but --server-optimizer sgd (the default)" in error, error
    assert "--server-optimizer adam" in error
    typed = one_line_error(
        simulate(*SHORT, "--server-optimizer", "sgd", "--server-adam-tau", "0.1")
    )
    assert "--server-optimizer sgd, FedAvg / FedAvgM, has no tau" in typed, typed


@pytest.mark.usefixtures("nothing_runs")
def test_a_tau_beside_sgd_in_a_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[training]\nserver_adam_tau = 0.1\n")
    error = one_line_error(simulate("--config", str(path), *SHORT))
    assert error.startswith(f"Error: --config {path}: training.server_adam_tau is set"), error
    # a tau typed beside a typed sgd: the flags named
    error = one_line_error(
        simulate(*SHORT, "--server-optimizer", "sgd", "--server-adam-tau", "0.1")
    )
    assert "--server-adam-tau" in error and "--server-optimizer sgd" in error, error


def test_a_typed_sgd_over_a_fedadam_file_clears_its_tau(tmp_path: Path) -> None:
    """A FedAdam run folder's config.toml (which records its tau) replayed with
    ``--server-optimizer sgd``, the FedAvg control: the typed optimizer clears the file's
    tau, as a typed epsilon clears the file's noise multiplier (it was refused as a tau
    beside sgd, so the control needed an edited copy of the file)."""
    from secagg.apps.simulation.cli import build_config

    path = tmp_path / "config.toml"
    path.write_text(
        '[training]\nserver_optimizer = "adam"\nserver_adam_tau = 0.1\n'
        "server_learning_rate = 0.03\n"
    )
    config = build_config(str(path), {"server_optimizer": "sgd", "server_learning_rate": 2.0})
    assert (config.server_optimizer, config.server_adam_tau) == ("sgd", None)
    assert config.server_learning_rate == 2.0
    # the file alone still runs FedAdam with its tau
    alone = build_config(str(path), {})
    assert (alone.server_optimizer, alone.server_adam_tau) == ("adam", 0.1)


@pytest.mark.usefixtures("nothing_runs")
def test_momentum_beside_adam_is_refused_naming_both(tmp_path: Path) -> None:
    error = one_line_error(
        simulate(*SHORT, "--server-optimizer", "adam", "--server-momentum", "0.9")
    )
    assert "--server-momentum 0.9 with --server-optimizer adam" in error, error
    assert "FedAdam has its own momentum" in error
    path = tmp_path / "c.toml"
    path.write_text('[training]\nserver_optimizer = "adam"\nserver_momentum = 0.5\n')
    error = one_line_error(simulate("--config", str(path), *SHORT))
    assert f"--config {path}: training.server_momentum = 0.5 with " in error, error
    assert "training.server_optimizer = 'adam'" in error


@pytest.mark.usefixtures("nothing_runs")
def test_an_unknown_optimizer_flag_is_a_usage_error() -> None:
    result = simulate(*SHORT, "--server-optimizer", "adagrad")
    assert result.exit_code == 2 and "'sgd'" in result.output and "'adam'" in result.output


def test_a_misspelt_key_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[training]\nserver_optimiser = "adam"\n')
    with pytest.raises(ConfigurationError, match=r"did you mean training\.server_optimizer\?"):
        build_config(str(path), {})
    path.write_text("[privacy]\nserver_adam_tau = 0.1\n")
    with pytest.raises(ConfigurationError, match=r"belongs in \[training\]"):
        build_config(str(path), {})


_BAD_TAUS = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),  # zero, negative, -inf
    st.floats(min_value=0.0, max_value=MIN_SERVER_ADAM_TAU, exclude_min=True, exclude_max=True),
    st.floats(min_value=MAX_SERVER_ADAM_TAU, exclude_min=True),  # above the cap, inf
    st.just(math.nan),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tau=_BAD_TAUS)
def test_a_tau_out_of_the_runtimes_range_is_refused_naming_the_key(tau: float) -> None:
    with pytest.raises(ConfigurationError, match=r"^training\.server_adam_tau must ") as caught:
        SimulationConfig(server_optimizer="adam", server_adam_tau=tau)
    assert "federation." not in str(caught.value).split(":")[0]  # this file's key, first
    with pytest.raises(ConfigurationError, match=r"^--server-adam-tau must "):
        build_config(None, {"server_optimizer": "adam", "server_adam_tau": tau})


@settings(max_examples=40, deadline=None)
@given(
    tau=st.floats(min_value=MIN_SERVER_ADAM_TAU, max_value=MAX_SERVER_ADAM_TAU),
    lr=st.floats(min_value=1e-6, max_value=100.0),
)
def test_every_tau_the_runtime_takes_is_taken(tau: float, lr: float) -> None:
    config = build_config(
        None, {"server_optimizer": "adam", "server_adam_tau": tau, "server_learning_rate": lr}
    )
    assert config.server_adam_tau == tau
    FederationConfig(  # and the federation's server takes what the simulation passed
        name="check", clients=("a", "b", "c"), dimension=2, rounds=1,
        server_optimizer="adam", server_adam_tau=tau, server_learning_rate=lr,
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    momentum=st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True),
    tau=st.one_of(st.none(), st.floats(min_value=MIN_SERVER_ADAM_TAU, max_value=1.0)),
)
def test_any_momentum_beside_adam_is_refused(momentum: float, tau: float | None) -> None:
    with pytest.raises(ConfigurationError, match=r"^--server-momentum .* with --server-optimizer"):
        build_config(
            None,
            {"server_optimizer": "adam", "server_momentum": momentum, "server_adam_tau": tau},
        )


@settings(max_examples=40, deadline=None)
@given(name=st.text(min_size=1, max_size=12).filter(lambda s: s not in ("sgd", "adam")))
def test_any_other_optimizer_name_is_refused_from_a_library_call(name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"server_optimizer must be one of 'sgd', 'adam'"):
        SimulationConfig(server_optimizer=name)
