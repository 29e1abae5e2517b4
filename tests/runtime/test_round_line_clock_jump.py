"""The round line's duration is measured on the monotonic clock, so a wall clock stepped
back mid-round (NTP, an operator's ``date -s``) does not make it negative.

Before: ``_log_round`` printed ``time.time() - started``, so a server whose wall clock
was stepped back an hour during a round logged "round 1 complete: ..., -3599.98 s". The
ledger row's ``started_at``/``finished_at`` stay wall-clock times (what an auditor reads
against a calendar); only the elapsed time the line shows is the monotonic one.

The jump is made by replacing the server module's ``time`` with one whose ``time()``
goes back an hour after its first reading (the round's start); its ``monotonic`` and
``sleep`` are the real ones. SecAgg+, three branches over the in-process hub.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _threads import BOUND, Party

import secagg.runtime.server as server_module
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = ["b1", "b2", "b3"]
JUMP_SECONDS = 3600.0


class _SteppedBack:
    """A wall clock that reads true once, then an hour behind."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return time.time() - (JUMP_SECONDS if self.readings > 1 else 0.0)


def test_a_wall_clock_stepped_back_mid_round_does_not_make_the_duration_negative(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "clock", "clients": NAMES, "dimension": 4, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = InProcessHub()
    parties = []
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        parties.append(Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=1)))
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    server._wait_for(set(NAMES), BOUND)  # everyone connected before the clock is touched
    wall = _SteppedBack()
    fake = SimpleNamespace(time=wall, monotonic=time.monotonic, sleep=time.sleep)
    monkeypatch.setattr(server_module, "time", fake)
    with caplog.at_level(logging.INFO, logger="secagg.server"):
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert result.status == "complete", result.reason
    assert wall.readings >= 1, "the round never read the stepped wall clock"
    for party in parties:
        assert party.done.wait(BOUND)
    (line,) = [r.getMessage() for r in caplog.records if "round 1 complete" in r.getMessage()]
    seconds = re.search(r", (-?[0-9.]+) s$", line)
    assert seconds is not None, line
    assert 0.0 <= float(seconds.group(1)) < BOUND, line
