"""A named pipe at the server's state, its ledger or its ledger key is refused as what it
is (:class:`~secagg.errors.NotARegularFile`) before SQLite opens it, and nothing is
created or locked.

Why: SQLite opened a named pipe at the state and failed as "the state ... cannot be
opened: disk I/O error", as if the state were damaged; being 0 bytes, the pipe read as
"empty" to ``ServerStore(create=False)``, and ``open_server_state`` created a fresh
state beside a pipe at the ledger's path before failing on it. ``secagg server`` checks
its config's paths first; these are the library's own entry points.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _fifo import in_thread, needs_fifos

from secagg.errors import NotARegularFile
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state
from secagg.runtime.store import ServerStore

pytestmark = needs_fifos


def _config(directory: Path) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "pipe", "clients": ["a", "b", "c"], "dimension": 4},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(directory / "state.sqlite")},
        }
    )


@pytest.mark.parametrize("create", [True, False])
def test_a_store_on_a_named_pipe_is_refused_by_kind(tmp_path: Path, create: bool) -> None:
    fifo = tmp_path / "state.sqlite"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: ServerStore(fifo, create=create), fifo)
    assert isinstance(outcome, NotARegularFile), outcome
    assert str(outcome) == f"{fifo} is a named pipe, not a server state"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.sqlite"]


@pytest.mark.parametrize(
    ("suffix", "what"),
    [("", "a server state"), (".ledger", "a ledger"), (".ledger-key", "a ledger key")],
)
@pytest.mark.parametrize("init", [None, True, False])
def test_a_server_start_refuses_a_named_pipe_before_opening_anything(
    tmp_path: Path, suffix: str, what: str, init: bool | None
) -> None:
    config = _config(tmp_path)
    fifo = Path(config.server.state + suffix)
    os.mkfifo(fifo)
    outcome = in_thread(lambda: open_server_state(config, init=init), fifo)
    assert isinstance(outcome, NotARegularFile), outcome
    assert str(outcome) == f"{fifo} is a named pipe, not {what}"
    # no state, ledger, key or lock made beside it: the start touched nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == [fifo.name]
