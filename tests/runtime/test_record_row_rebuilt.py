"""Record-level DP: a round's ledger row rebuilt after a crash holds its DP-SGD reports.

Second review of the DP-budget path (2026-12-07): a server that stops between the
state's commit of a released round and the ledger's append rebuilds the row from the
state on its restart (``_backfill_ledger``). Under record-level DP the round's reports
(each branch's DP-SGD history, whose worst figure is the row's claim) lived only in the
mechanism until the row took them, and the state kept none: the rebuilt row claimed
``epsilon: null`` and held no report beside a sum of every branch's DP-SGD update, so
``audit verify`` failed the ledger for good ("holds DP-SGD reports of only 0"), and
the restarted server's claims left those reports out. Now the state keeps the round's
reports as held (replayed) with the round, and the rebuilt row holds them and claims
the worst of them, as the row the crash lost would have.

The crash between the two commits is made as the other restart tests make it: a first
server without a ledger completes a round (its state commits it; no row is written),
and a second one opens the ledger on the same state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _record_replays import DELTA, dpsgd_report, record_config, start_branches

from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger import Ledger, LedgerKey, verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(4)]
#: each branch's sample rate: its own figure, so the worst branch is one of them
RATES = {name: 0.01 * (i + 1) for i, name in enumerate(NAMES)}


def _report(rate: float, steps: int) -> dict[str, Any]:
    return dpsgd_report([(1.0, rate, steps)])


def _epsilon(rate: float, steps: int) -> float:
    return RecordLevelAccountant("rdp", DELTA, [(1.0, rate, steps)]).epsilon()


def _config(rounds: int) -> FederationConfig:
    return record_config(NAMES, name="rebuilt", rounds=rounds, phase_seconds=90.0)


def _start_clients(hub: InProcessHub, steps: dict[str, Iterator[int]]) -> None:
    """A branch process for each name, its DP-SGD steps drawn from ``steps`` (kept across
    processes: each round's report extends the last)."""
    start_branches(
        hub,
        NAMES,
        lambda name: _report(RATES[name], next(steps[name])),
        idle=90,
        rounds=None,
    )


def test_a_rebuilt_record_level_row_holds_its_reports_and_claims_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 1's append fails (the disk full: the server stops, its state has the round)
    and the next process, with the same ledger and key, rebuilds its row, then runs
    round 2; the ledger verifies, each row claiming the worst branch's figure."""
    append = Ledger.append
    failed: list[int] = []

    def full_disk_at_round_1(ledger: Ledger, entry: dict[str, object]) -> int:
        if entry.get("round") == 1 and not failed:
            failed.append(1)
            raise OSError(28, "No space left on device")
        return append(ledger, entry)

    monkeypatch.setattr(Ledger, "append", full_disk_at_round_1)
    steps = {name: iter(range(100, 10_000, 100)) for name in NAMES}
    hub = InProcessHub()
    _start_clients(hub, steps)
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "s.sqlite")
    first = FederationServer(_config(rounds=2), hub, store, ledger=ledger)
    with pytest.raises(OSError, match="No space left"):
        first.run(wait_for_clients=90)
    assert failed == [1] and [r["status"] for r in store.rounds()] == ["complete"]
    ledger.close()
    store.close()
    # the branches were told the federation stopped: the next processes, as after a restart
    hub = InProcessHub()
    _start_clients(hub, steps)
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    second = FederationServer(
        _config(rounds=2), hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger
    )
    results = second.run(wait_for_clients=90)
    ledger.close()
    assert [r.status for r in results] == ["complete"], [(r.status, r.reason) for r in results]
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    rows = [row.entry for row in audit.chain.rows]
    assert [(e["round"], e.get("reconstructed")) for e in rows] == [(1, True), (2, None)]
    rebuilt = rows[0]
    reports = rebuilt["dp"]["client_reports"]
    assert len(reports) == len(NAMES)
    # the worst branch's figure of round 1 (100 steps each), as the lost row would claim
    worst = max(_epsilon(rate, 100) for rate in RATES.values())
    assert rebuilt["privacy"]["epsilon"] == pytest.approx(worst, rel=1e-9)
    assert rows[1]["privacy"]["epsilon"] == pytest.approx(
        max(_epsilon(rate, 200) for rate in RATES.values()), rel=1e-9
    )
