"""``secagg server`` refuses a model this machine cannot hold, before anything else.

Config review (2026-12-05): ``federation.dimension`` is bounded by the wire format
(2**31 parameters), not by memory, and the server allocates its model and its
optimizer's two moments (8 bytes a parameter each) when it is built: past the machine's memory that
ended in a MemoryError traceback or the out-of-memory killer, after the state had been
opened and the port bound. The machine's memory is set by the test (the refusal must
not depend on the host), and the sizes are kept small enough that a server that does
start allocates nothing it cannot (numpy's zeros are not touched until used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps import cli_types
from secagg.apps.cli import SERVER_BYTES_PER_PARAMETER, main

GIB = 2**30
NAMES = ["branch-0", "branch-1", "branch-2"]


def _config(folder: Path, dimension: int) -> Path:
    path = folder / "federation.toml"
    path.write_text(
        f'[federation]\nname = "memory"\nclients = {NAMES!r}\ndimension = {dimension}\n'
        "rounds = 1\n"
        '[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{folder / "state.sqlite"}"\nbind = "127.0.0.1:1"\n'
        f'certificates = "{folder / "certs"}"\n'.replace("'", '"')
    )
    return path


@pytest.mark.parametrize(
    ("dimension", "machine_gib", "needs"),
    [
        (2**31, 24, "48.0 GiB"),  # the key's largest value on this kind of host
        (2**27, 1, "3.0 GiB"),
        (GIB // SERVER_BYTES_PER_PARAMETER + 1, 1, "1.0 GiB"),  # one parameter too many
    ],
)
def test_a_model_past_memory_is_one_line_naming_the_key_before_the_state_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dimension: int, machine_gib: int, needs: str
) -> None:
    monkeypatch.setattr(cli_types, "memory_limit", lambda: machine_gib * GIB)
    config = _config(tmp_path, dimension)
    result = CliRunner().invoke(main, ["server", "--config", str(config), "--wait", "1"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"secagg server: --config {config}: federation.dimension = ")
    assert f"need {needs} of memory" in lines[0] and f"the {machine_gib:.1f} GiB" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "state.sqlite").exists()  # refused before the state opened


def test_a_model_that_fits_is_not_refused_for_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exactly at the machine's memory: not this refusal (the missing certificates are
    what stops this server, after its state opened)."""
    monkeypatch.setattr(cli_types, "memory_limit", lambda: GIB)
    config = _config(tmp_path, GIB // SERVER_BYTES_PER_PARAMETER)
    result = CliRunner().invoke(main, ["server", "--config", str(config), "--wait", "1"])
    assert "federation.dimension" not in result.stderr, result.stderr
    assert result.exit_code == 2 and "certificates" in result.stderr, result.stderr


def test_the_bound_is_what_a_built_server_holds_per_parameter(tmp_path: Path) -> None:
    """The server's model and its optimizer's moments, each allocated when it is built:
    FedAdam's second moment (2026-12-07) made it 24 bytes where the refusal counted 16, so
    a model between 2/3 of the machine and all of it passed and then ran out."""
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    dimension = 1000
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "memory", "clients": NAMES, "dimension": dimension},
            "backend": {"name": "plain", "value_bound": 1.0},
        }
    )
    server = FederationServer(config, InProcessHub(), ServerStore(tmp_path / "state.sqlite"))
    held = [a for a in vars(server).values() if isinstance(a, np.ndarray) and a.size == dimension]
    assert len(held) == 3  # the model, the velocity / first moment, the second moment
    assert sum(a.nbytes for a in held) == SERVER_BYTES_PER_PARAMETER * dimension
