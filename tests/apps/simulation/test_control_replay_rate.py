"""``secagg simulate --config F --server-optimizer O`` where ``F`` names another optimizer
and its own ``server_learning_rate``: the file's rate was chosen for the file's optimizer,
so a typed optimizer that changes it is refused in one line naming
``--server-learning-rate`` and the file's key, unless ``--server-learning-rate`` is typed
too.

Why: a FedAdam run folder's config.toml (``server_optimizer = "adam"``, its tau and
``server_learning_rate = 0.03``) replayed with ``--server-optimizer sgd`` as the FedAvg
control cleared the file's tau (commit eba7a9aa) but kept its rate, and FedAvg ran with a
step about 70 times smaller than its default 2: a weak control that looked legitimate
(helper brief of 2026-12-07, item 1). The other way round (a FedAvg folder replayed with
``--server-optimizer adam``) ran FedAdam at FedAvg's 2, which
``_adam_needs_a_rate`` refuses when nobody chose it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from _simulate_cli import SHORT, one_line_error, simulate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.report import _write_config
from secagg.errors import ConfigurationError


def _run_folder_config(tmp_path: Path, **fields: Any) -> Path:
    """A run folder's config.toml as the simulator writes it for ``fields``."""
    path = tmp_path / "config.toml"
    _write_config(cast(Any, SimpleNamespace(config=SimulationConfig(**fields))), path)
    return path


def _fedadam_folder(tmp_path: Path, rate: float = 0.03) -> Path:
    return _run_folder_config(
        tmp_path, server_optimizer="adam", server_adam_tau=0.1, server_learning_rate=rate
    )


def test_a_fedadam_folder_replayed_as_fedavg_without_a_rate_is_refused(tmp_path: Path) -> None:
    path = _fedadam_folder(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        build_config(str(path), {"server_optimizer": "sgd"})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--config {path}: --server-optimizer sgd over "), message
    assert "training.server_optimizer = 'adam'" in message
    assert "training.server_learning_rate = 0.03 was chosen for FedAdam" in message
    assert "--server-learning-rate" in message and "FedAvg's default, 2" in message


def test_a_rate_typed_beside_it_runs_the_fedavg_control(tmp_path: Path) -> None:
    path = _fedadam_folder(tmp_path)
    config = build_config(str(path), {"server_optimizer": "sgd", "server_learning_rate": 2.0})
    assert (config.server_optimizer, config.server_learning_rate) == ("sgd", 2.0)
    assert config.server_adam_tau is None
    # the file alone, or with its own optimizer typed again, still runs FedAdam at 0.03
    for typed in ({}, {"server_optimizer": "adam"}):
        same = build_config(str(path), typed)
        assert (same.server_optimizer, same.server_learning_rate) == ("adam", 0.03)


def test_a_fedavg_folder_replayed_as_fedadam_without_a_rate_is_refused(tmp_path: Path) -> None:
    path = _run_folder_config(tmp_path, server_learning_rate=2.0)
    with pytest.raises(ConfigurationError) as info:
        build_config(str(path), {"server_optimizer": "adam"})
    message = str(info.value)
    assert "--server-optimizer adam over training.server_optimizer = 'sgd'" in message, message
    assert "training.server_learning_rate = 2.0 was chosen for FedAvg" in message
    assert "--server-learning-rate" in message
    config = build_config(str(path), {"server_optimizer": "adam", "server_learning_rate": 0.03})
    assert (config.server_optimizer, config.server_learning_rate) == ("adam", 0.03)


def test_a_file_without_its_own_rate_is_not_refused(tmp_path: Path) -> None:
    """No rate in the file: the typed optimizer's default rules (FedAvg's 2 under sgd; under
    adam the refusal of FedAvg's rate nobody chose, unchanged)."""
    path = tmp_path / "c.toml"
    path.write_text('[training]\nserver_optimizer = "adam"\nserver_adam_tau = 0.1\n')
    config = build_config(str(path), {"server_optimizer": "sgd"})
    assert (config.server_optimizer, config.server_learning_rate) == ("sgd", 2.0)


@pytest.mark.usefixtures("nothing_runs")
def test_the_command_line_refuses_in_one_line_before_any_data(tmp_path: Path) -> None:
    path = _fedadam_folder(tmp_path)
    error = one_line_error(simulate("--config", str(path), *SHORT, "--server-optimizer", "sgd"))
    assert error.startswith(f"Error: --config {path}: --server-optimizer sgd over "), error
    assert "--server-learning-rate" in error and "training.server_learning_rate" in error


_RATES = st.floats(min_value=1e-6, max_value=100.0, allow_nan=False)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(file_optimizer=st.sampled_from(["sgd", "adam"]), rate=_RATES, typed_rate=st.none() | _RATES)
def test_a_changed_optimizer_never_keeps_the_files_rate_silently(
    tmp_path: Path, file_optimizer: str, rate: float, typed_rate: float | None
) -> None:
    """Whatever the file's rate: a typed optimizer that changes the file's runs at a rate
    typed beside it, or is refused naming ``--server-learning-rate``."""
    path = tmp_path / "c.toml"
    path.write_text(
        f'[training]\nserver_optimizer = "{file_optimizer}"\nserver_learning_rate = {rate!r}\n'
    )
    other = "adam" if file_optimizer == "sgd" else "sgd"
    typed: dict[str, Any] = {"server_optimizer": other}
    if typed_rate is not None:
        typed["server_learning_rate"] = typed_rate
        config = build_config(str(path), typed)
        assert (config.server_optimizer, config.server_learning_rate) == (other, typed_rate)
        return
    with pytest.raises(ConfigurationError, match="--server-learning-rate") as info:
        build_config(str(path), typed)
    assert "\n" not in str(info.value)
