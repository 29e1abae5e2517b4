"""A stop swallowed during a record-level restart's ledger rebuild ends the rebuild at
the next report, not after every remaining replay.

Finding (review of fd0284ec, 2026-12-07): the stop record makes the background replay
thread cancel its queued replays (``Mechanism.stop_replays_when``), and the server's
thread, reading them for the rebuilt row, computed each cancelled one itself
(``_figure_of``) without ever looking at the record: a SIGTERM that a library swallowed
was noticed only once every remaining report had been replayed, up to seconds of
Opacus each (hundreds of branches: minutes past a service manager's stop timeout). The
server's thread now looks at the record before each report's figure
(``Mechanism.look_between_replays``, given ``raise_if_stop_asked``).
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from _record_replays import crash_mid_round_2, dpsgd_report, record_config, wrap_replays

from secagg.dp.release import RecordReport
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

#: enough branches that the replays left after the stop are more than one
NAMES = [f"b{i}" for i in range(4)]


def _report(name: str) -> dict[str, Any]:
    return dpsgd_report([(1.0, 0.01, 100 * (NAMES.index(name) + 1))])


def _config() -> FederationConfig:
    return record_config(NAMES, name="records", rounds=3)


def _rounds(folder: Path, key: LedgerKey) -> list[int]:
    """The rounds of the verified ledger's rows."""
    audit = verify_ledger(folder / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    return [row.entry["round"] for row in audit.chain.rows]


def test_a_stop_swallowed_in_the_rebuild_ends_it_at_the_next_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first restored report's replay records a SIGTERM that nothing raises (a
    library swallowed it). Before: the background thread cancelled the 3 queued replays
    and the server's thread computed all 3 itself, then rebuilt the row (4 replays, and
    ``backfill_ledger`` returned as if no one had asked). Now: no replay after the
    first, the rebuild ends with the stop, nothing of it is written, and the next start
    rebuilds the row."""
    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, record_config(NAMES, name="records", rounds=1), _report)
    replays: list[int] = []

    def swallowing_a_stop(report: RecordReport, real: Any) -> float:
        replays.append(threading.get_ident())
        if len(replays) == 1:
            ask_stop(signal.SIGTERM)  # the handler's record; its exception swallowed
        return float(real(report))

    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    stopped: StopAsked | None = None
    try:
        with monkeypatch.context() as patched:
            wrap_replays(patched, swallowing_a_stop)
            server = FederationServer(_config(), InProcessHub(), store, ledger=ledger)
            try:
                server.backfill_ledger()
            except StopAsked as exc:
                stopped = exc
        assert len(replays) == 1, f"{len(replays) - 1} replays ran after the stop was recorded"
        assert stopped is not None, "the rebuild ended as if no stop had been asked"
        assert stopped.signum == signal.SIGTERM
        with pytest.raises(ServerStopped, match=re.escape("stopped by SIGTERM while")):
            server.run_round()
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
        ledger.close()
        store.close()
    assert _rounds(tmp_path, key) == [1]  # nothing half written
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:
        FederationServer(_config(), InProcessHub(), store, ledger=ledger).backfill_ledger()
    finally:
        ledger.close()
        store.close()
    assert _rounds(tmp_path, key) == [1, 2]
