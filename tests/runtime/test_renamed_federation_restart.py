"""A server restarted with another ``federation.name`` than its ledger's rounds carry
says so at start.

Before: it continued the state and the ledger under the new name without a word. The
ledger then names two federations, so ``secagg audit verify --config`` (which holds
every row to the config's one name) fails the old rows for good, and every branch with
a state file of the old name refuses the new rounds (another federation): an operator
who changed the name by mistake learned it from the branches' refusals and the audit.
Continuing is the documented way a federation is renamed (docs/audit.md: one
federation, rows naming two), so the restart goes on, with a WARNING naming both names
and those consequences; an unchanged name says nothing.

A real one-round federation (three branches over the in-process transport, SecAgg+),
restarted the way ``secagg server`` restarts it (open_server_state, build_server).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _delta_federation import delta_config, run_every_round

from secagg.runtime.launch import build_server, open_server_state
from secagg.transport.inprocess import InProcessHub

pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")


@pytest.mark.parametrize("renamed", [True, False], ids=["renamed", "same-name"])
def test_a_restart_under_another_federation_name_is_stated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, renamed: bool
) -> None:
    run_every_round(delta_config(tmp_path, 1, 1e-3, "branches"))
    again = delta_config(tmp_path, 2, 1e-3, "rehearsal" if renamed else "branches")
    state = open_server_state(again)
    try:
        with caplog.at_level(logging.WARNING, logger="secagg.server"):
            build_server(again, InProcessHub(), state.store, ledger=state.ledger)
    finally:
        state.close()
    lines = [r for r in caplog.records if "federation.name" in r.getMessage()]
    if not renamed:
        assert lines == []
        return
    (line,) = lines
    assert line.levelno == logging.WARNING
    text = line.getMessage()
    assert "'rehearsal'" in text and "'branches'" in text and "round 1" in text
    assert "audit verify --config" in text
