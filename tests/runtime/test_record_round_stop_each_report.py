"""A stop recorded while the server's own thread reads a round's record-level replays
leaves nothing half written, whichever report it comes at, and the next start settles
the round.

Second review of e638f464 (2026-12-07): the look between replays
(``Mechanism.look_between_replays``, the server's ``raise_if_stop_asked``) now runs in
every round's release path (``require_reports``), not only in a restart's rebuild. A
stop it raises must end the round before the state or the ledger holds any of it, so
the next start aborts the round (one row, verified), and the claims after it count
each branch's report once. Shown for the stop at each of the round's reports.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from _record_replays import RecordBranches, opened_state, start_branches, wrap_replays
from _threads import BOUND

from secagg.dp.release import RecordReport
from secagg.ledger import LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.server import FederationServer
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

BRANCHES = RecordBranches.numbered(4)


def _rows(folder: Path, key: LedgerKey) -> list[dict[str, Any]]:
    """The verified ledger's rows (the test fails on a chain that does not verify)."""
    audit = verify_ledger(folder / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    return [row.entry for row in audit.chain.rows]


@pytest.mark.parametrize("stop_at", range(1, len(BRANCHES.names) + 1))
def test_a_stop_at_any_report_of_the_release_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int
) -> None:
    """Round 1's replays all read by the server's thread (its background stopped), the
    ``stop_at``-th of them recording a SIGTERM that nothing raises. Before the last
    report, the look before the next one ends the round: no row, the state's round
    still in flight; at the last, the round is released whole and the stop ends the
    next turn. Either way the restart runs the federation to its end, the chain
    verifies, and the last claim is the worst branch's replay: no report counted
    twice, none lost."""
    key = LedgerKey.generate()
    config = BRANCHES.config(rounds=2)
    replays: list[int] = []

    def recording_a_stop(report: RecordReport, real: Any) -> float:
        replays.append(threading.get_ident())
        if len(replays) == stop_at:
            ask_stop(signal.SIGTERM)  # the handler's record; its exception swallowed
        return float(real(report))

    hub = InProcessHub()
    start_branches(hub, config.clients, BRANCHES.report, idle=BOUND)
    try:
        with opened_state(tmp_path, key) as (ledger, store), monkeypatch.context() as patched:
            wrap_replays(patched, recording_a_stop)
            server = FederationServer(config, hub, store, ledger=ledger)
            server.mechanism.stop_replays()  # every replay is the server's thread's
            with pytest.raises(StopAsked):
                server.run(wait_for_clients=BOUND)
            statuses = [row["status"] for row in store.rounds()]
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
    assert set(replays) == {threading.get_ident()}
    assert len(replays) == stop_at, f"{len(replays) - stop_at} replays after the stop"
    finished = stop_at == len(BRANCHES.names)
    assert [row["round"] for row in _rows(tmp_path, key)] == ([1] if finished else [])
    assert statuses == ["complete" if finished else "running"]

    hub = InProcessHub()
    start_branches(hub, config.clients, BRANCHES.report, idle=BOUND, rounds=None)
    with opened_state(tmp_path, key) as (ledger, store):
        results = FederationServer(config, hub, store, ledger=ledger).run(wait_for_clients=BOUND)
    # the federation's two complete rounds: round 1 and 2, or (round 1 aborted at the
    # restart, as after a Ctrl-C in it) rounds 2 and 3
    expected = [(1, "complete"), (2, "complete")]
    if not finished:
        expected = [(1, "aborted"), (2, "complete"), (3, "complete")]
    assert [r.status for r in results] == ["complete"] * (len(expected) - 1)
    rows = _rows(tmp_path, key)
    assert [(row["round"], row["status"]) for row in rows] == expected
    claim = rows[-1]["privacy"]["epsilon"]
    assert claim == pytest.approx(BRANCHES.worst_replay(), rel=1e-9)
