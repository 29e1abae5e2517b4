"""A server stopped while it rebuilt its ledger's missing rows names the first stop, the
one the command's line says, also when a second signal's ``KeyboardInterrupt`` is the
exception that ended the rebuild.

Second review of helper-313's ``stop_behind`` (2026-12-07): the round's handler names
the stop by :func:`~secagg.transport.waiting.stop_behind` (the first recorded stop
counts, as in the CLI), but the rebuild's (``_rebuild_ended_early``) named a
``KeyboardInterrupt`` by its own signal. A ``systemctl stop`` (SIGTERM, recorded first)
followed by the operator's Ctrl-C while the rebuild unwound logged "stopped by Ctrl-C
(SIGINT) while it rebuilt" and its ``ServerStopped`` said Ctrl-C, while the command's
line, and the round's handler in the same case, said SIGTERM.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from _record_replays import crash_mid_round_2, dpsgd_report, record_config

from secagg.ledger import Ledger, LedgerKey
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

NAMES = [f"b{i}" for i in range(3)]


def _report(name: str) -> dict[str, Any]:
    return dpsgd_report([(1.0, 0.01, 100 * (NAMES.index(name) + 1))])


def _config(rounds: int) -> FederationConfig:
    return record_config(NAMES, name="records", rounds=rounds)


@pytest.mark.parametrize(
    "second",
    [KeyboardInterrupt, lambda: StopAsked(signal.SIGINT)],
    ids=["plain-ctrl-c", "stop-asked-sigint"],
)
def test_a_second_stop_ending_the_rebuild_is_named_as_the_first(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    second: Any,
) -> None:
    """Before: "stopped by Ctrl-C (SIGINT) while it rebuilt ..." (the WARNING line and
    the ServerStopped) after a SIGTERM recorded first. Now both say SIGTERM."""
    key = LedgerKey.generate()
    crash_mid_round_2(tmp_path, key, _config(1), _report)

    def stopped(ledger: Ledger, entry: dict[str, object]) -> int:
        ask_stop(signal.SIGTERM)  # the first stop, recorded as the CLI's handler does
        ask_stop(signal.SIGINT)  # the second, whose interrupt ends the rebuild
        raise second()

    caplog.set_level(logging.DEBUG, logger="secagg")
    mine = threading.get_ident()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:
        with monkeypatch.context() as patched:
            patched.setattr(Ledger, "append", stopped)
            server = FederationServer(_config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(KeyboardInterrupt):
                server.run(wait_for_clients=0.0)
        forget_stop()  # as the CLI does once the stop is its line
        with pytest.raises(ServerStopped) as after:
            server.run_round()
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
        ledger.close()
        store.close()
    assert re.match(r"this server was stopped by SIGTERM while it rebuilt", str(after.value)), str(
        after.value
    )
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.thread == mine
        and r.levelno == logging.WARNING
        and "while it rebuilt" in r.getMessage()
    ]
    assert warned and all("stopped by SIGTERM" in line for line in warned), warned
