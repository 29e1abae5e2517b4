"""After a restart, the round's log line under record-level DP states the ledger's claim.

Runtime review, 2026-12-05: under record-level DP-SGD the server stores no epsilon of
its own (each branch accounts and reports it), so a restarted server's per-round line
said "epsilon -" until a round completed, while the ledger row of the same round
claimed the worst branch's reported figure (restored from the ledger). The line now
states that claim, as it does after a completed round. A real federation (three
branches over the in-process transport, SecAgg+, dimension 8), restarted on its
state and ledger.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _record_replays import dpsgd_report, record_config, run_first_round

from secagg.dp.display import shown
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = ["b1", "b2", "b3"]
D = 8
STEPS = 100
#: generous: the branches only wait this long when a round never comes
IDLE = 60.0


def _report(name: str) -> dict[str, object]:
    """Each branch's DP-SGD accounting: more steps for a later branch (b3 the worst)."""
    return dpsgd_report([(1.0, 0.01, STEPS * (NAMES.index(name) + 1))], delta=1e-5)


def _config(rounds: int) -> FederationConfig:
    return record_config(
        NAMES, name="records", rounds=rounds, dimension=D, phase_seconds=20.0, delta=1e-5
    )


def test_the_round_line_after_a_restart_states_the_worst_branchs_reported_epsilon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = LedgerKey.generate()
    results = run_first_round(tmp_path, key, _config(1), _report, idle=IDLE)
    assert [r.status for r in results] == ["complete"]
    worst = shown(float(_report("b3")["epsilon"]), 4, significant=True)  # type: ignore[arg-type]
    # restarted: a round nobody is connected for aborts, and its line states the claim
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:
        server = FederationServer(_config(2), InProcessHub(), store, ledger=ledger)
        with caplog.at_level(logging.WARNING, logger="secagg.server"):
            assert server.run_round().status == "aborted"
    finally:
        ledger.close()
        store.close()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round 2 ")]
    assert f"epsilon {worst} (per record, worst branch)," in line, line
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.failure
    # the line's figure is the aborted round's ledger claim
    assert shown(audit.chain.rows[-1].entry["privacy"]["epsilon"], 4, significant=True) == worst
