"""A server whose DP block lost its sampling record writes no row of it.

Ledger review, 2026-12-05: an entry whose DP block lacked any of ``dp.sampling``'s
fields was written as a version-2 row without a word, and ``audit verify`` checks a
version-2 row's sampling less. The server always records the sampling, so a server
that ever dropped it would quietly have written such rows. Now the entry is refused
(:class:`~secagg.ledger.entry.SamplingUnrecorded`) before the ledger is touched: the
run stops with that one line, the state notes the round's row missing and why, and
the restart rebuilds the row whole. A real federation (three branches over the
in-process transport, SecAgg+, dimension 10).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.ledger import verify_ledger
from secagg.ledger.chain import LedgerKey
from secagg.ledger.entry import ROW_VERSION, SamplingUnrecorded
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.transport.inprocess import InProcessHub

D = 10
NAMES = ["b1", "b2", "b3"]
#: generous: the branches only wait this long when a round never comes
IDLE = 60.0


def _config(tmp_path: Path, rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "unsampled", "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
            "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3},
        }
    )


def _branches(hub: InProcessHub, rounds: int) -> None:
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.01 * (i + 1))
        client = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": IDLE, "rounds": rounds}, daemon=True
        ).start()


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    key = LedgerKey.load(tmp_path / "state.sqlite.ledger-key")
    result = verify_ledger(tmp_path / "state.sqlite.ledger", key.public_key)
    assert result.ok, result.failure
    return [row.entry for row in result.chain.rows]


@pytest.mark.parametrize("dropped", ["seeded", "population", "all"])
def test_a_dp_block_without_its_sampling_record_stops_the_run_before_the_ledger(
    tmp_path: Path, dropped: str
) -> None:
    config = _config(tmp_path, 1)
    hub = InProcessHub()
    _branches(hub, 1)
    state = open_server_state(config)
    try:
        server = build_server(config, hub, state.store, ledger=state.ledger)
        recorded = server._dp_block

        def losing_the_record(stored: dict[str, Any]) -> dict[str, Any] | None:
            block = recorded(stored)
            assert block is not None
            if dropped == "all":
                del block["sampling"]
            else:
                del block["sampling"][dropped]
            return block

        server._dp_block = losing_the_record  # type: ignore[method-assign]
        with pytest.raises(SamplingUnrecorded) as refused:
            server.run(wait_for_clients=IDLE)
        (round_1,) = state.store.rounds()
    finally:
        state.close()
    text = str(refused.value)
    assert text.startswith("round 1: the DP block's dp.sampling lacks "), text
    assert "\n" not in text
    assert _rows(tmp_path) == []  # no row, not a version-2 one: the ledger is whole
    assert round_1["status"] == "complete"  # the state had committed it
    assert "dp.sampling lacks" in round_1["report"]["ledger_row_missing"]
    # the restart (sampling recorded again) rebuilds the round's row whole
    state = open_server_state(_config(tmp_path, 2))
    try:
        build_server(_config(tmp_path, 2), InProcessHub(), state.store, ledger=state.ledger)
    finally:
        state.close()
    (row,) = _rows(tmp_path)
    assert row["version"] == ROW_VERSION and row["reconstructed"] is True
    assert set(row["dp"]["sampling"]) == {"kind", "rate", "population", "seeded"}
