"""A restarted record-level server is built, and can bind its port, before it replays
the DP-SGD reports it reads back from its ledger.

Review (2026-12-07). On a restart the server reads each branch's latest DP-SGD report
from its ledger and holds it to its replay (Opacus's accountant, up to about 1.7 s of
CPU a report within the caps). The replays ran in the server's constructor, through the
log line's first claim, one after another, and ``serve`` builds the server before it
binds its port: a federation of 400 PRV branches was unreachable for minutes after a
restart, past the 600 s redial window (``--give-up-after``) of its branches and its key
holder, which gave up on a server that was replaying. Now they run in a background
thread, started at the end of the build once every check of it has passed (a refused
build starts none: tests/runtime/test_record_replays_stop.py), and the first figure
that needs them waits for them: a ledger row a crash mid-round left to rebuild
(``FederationServer.backfill_ledger``, once the port is bound:
tests/runtime/test_record_restart_backfill_waits.py), else the first round's release,
row or claim; the figures are the same replays'.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _record_replays import DELTA, dpsgd_report, record_config, run_first_round, wrap_replays
from _threads import BOUND

import secagg.dp.release as release_module
from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import RecordReport
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"b{i}" for i in range(5)]


def _history(name: str) -> list[tuple[float, float, int]]:
    return [(1.0, 0.01, 100 * (NAMES.index(name) + 1))]


def _report(name: str) -> dict[str, Any]:
    history = _history(name)
    # stated below the replay: what a restart holds must be the replay's figure
    stated = RecordLevelAccountant("rdp", DELTA, history).epsilon() * 0.999999
    return dpsgd_report(history, epsilon=stated)


def _config(rounds: int) -> FederationConfig:
    return record_config(NAMES, name="records", rounds=rounds)


def _one_round(tmp_path: Path, key: LedgerKey) -> None:
    results = run_first_round(tmp_path, key, _config(1), _report, idle=BOUND)
    assert [r.status for r in results] == ["complete"], [r.reason for r in results]


def test_a_restart_builds_the_server_before_the_restored_reports_are_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = LedgerKey.generate()
    _one_round(tmp_path, key)
    replayed = {
        name: RecordLevelAccountant("rdp", DELTA, _history(name)).epsilon() for name in NAMES
    }

    built = threading.Event()
    builder = threading.get_ident()
    ended: list[tuple[int, bool]] = []  # each replay's thread, and whether built by then

    def replay_after_the_build(
        report: RecordReport, real: Callable[[RecordReport], float]
    ) -> float:
        if threading.get_ident() != builder:
            built.wait(BOUND)  # a replay as costly as the server's build, at least
        figure = real(report)
        ended.append((threading.get_ident(), built.is_set()))
        return figure

    wrap_replays(monkeypatch, replay_after_the_build)
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:
        began = time.monotonic()
        server = FederationServer(_config(2), InProcessHub(), store, ledger=ledger)
        built_in = time.monotonic() - began
        built.set()
        assert [e for e in ended if not e[1]] == [], (
            f"{len(ended)} restored reports replayed while the server was built "
            f"({built_in:.2f} s), before it could bind its port"
        )
        # the first claim waits for them: every branch's report once, its replayed figure
        claim = server.mechanism.ledger_claim(None)
        assert len(ended) == len(NAMES)
        assert all(thread != builder for thread, _ in ended)
        assert claim == max(replayed.values())
        # a round nobody is connected for aborts; its row claims the replayed figures
        assert server.run_round().status == "aborted"
    finally:
        ledger.close()
        store.close()
    assert len(ended) == len(NAMES), "a restored report was replayed twice"
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    assert audit.chain.rows[-1].entry["privacy"]["epsilon"] == max(replayed.values())


def test_a_restored_branch_reporting_before_its_replay_is_held_to_the_replayed_read_back() -> None:
    """A branch back in the first round after a restart, before its read-back report's
    replay was read: that report is held first (a signed claim), and the new one to it,
    as any later report: one whose replay falls below it (RDP's figure, then PRV's for
    the same steps and more) is refused, never held in its place unchecked."""
    mechanism = release_module.RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    history = [(1.0, 0.01, 1_000)]
    recorded = RecordLevelAccountant("rdp", DELTA, history).epsilon()
    mechanism.restore_reports({"id": dpsgd_report(history, accountant="rdp", epsilon=recorded)})
    mechanism.start_restored_replays()
    assert mechanism.replay_backlog() == 1
    assert mechanism.provisional_claim(None) == recorded
    longer = [(1.0, 0.01, 1_001)]
    switched = RecordReport.from_dict(dpsgd_report(longer, accountant="prv", epsilon=recorded))
    assert mechanism.report_problem("id", switched) is None  # no replay on arrival
    mechanism.take_report("id", switched)
    with pytest.raises(release_module.UnaccountedContribution, match="below the"):
        mechanism.require_reports(["id"])
    assert mechanism.replay_backlog() == 0
    assert mechanism.ledger_claim(None) == recorded
    # an honest next report (the same accountant, more steps) is held at its replay
    honest = RecordReport.from_dict(dpsgd_report(longer, accountant="rdp", epsilon=recorded))
    mechanism.take_report("id", honest)
    mechanism.require_reports(["id"])
    assert mechanism.ledger_claim(None) == RecordLevelAccountant("rdp", DELTA, longer).epsilon()
