"""One DP-SGD report a branch and round is checked as it arrives: a second is refused.

Review (2026-12-07): the server checks a branch's privacy report as it arrives
(:meth:`~secagg.runtime.server.FederationServer._check_report_on_arrival`), before the
protocol session sees the payload that carries it, and that check costs Opacus's RDP
curves of the report's runs: about 0.55 s of CPU for a 'prv' report of 8 fresh runs near
a sample rate of 0.5 (measured on the 2 cores; the memo saves a report sent again, not
one with new rates). An honest branch sends its report once a round, with its first
payload; but the check ran for every message of the round that carried one, and one
whose report passed and whose payload the session then refused (junk, a repeat) left the
branch a party of the round. So one enrolled branch could send a stream of such
messages, each with new rates, and hold the server's collect loop for 0.55 s a message:
the phase deadlines, the round deadline and every other branch's wait ran out while the
server checked its reports. Now a branch's second report of a round is refused unchecked,
and the branch is a dropout of the round (its mask removed as any dropout's), as for a
report refused on arrival; the others' round completes.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.dp.release import RecordRelease, RecordReport
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Leave, Relay, RoundStart, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

HONEST = [f"branch-{i}" for i in range(6)]
FLOODER = "branch-9"
DELTA = 1e-5
#: the reports the flooding branch sends in one round, each on its own message
FLOOD = 40


def _report(z: float, q: float, steps: int) -> dict[str, Any]:
    """A report that passes every arrival check (its stated figure is checked at the
    replay, after the phases, so any finite one passes here)."""
    return {
        "unit": "customer",
        "mechanism": "dpsgd",
        "accountant": "rdp",
        "delta": DELTA,
        "history": [[z, q, steps]],
        "epsilon": 1.0,
        "max_grad_norm": 1.0,
    }


def _flood(hub: InProcessHub, done: threading.Event) -> None:
    """The flooding branch: at its round start, FLOOD messages of the round, each a junk
    payload (refused by the session, after the report's check) with a report of new
    rates (no memo helps), then its leave."""
    endpoint = hub.connect(FLOODER)
    try:
        while not done.is_set():
            payload = endpoint.receive(timeout=0.5)
            if payload is None:
                continue
            start = decode_message(payload)
            if isinstance(start, RoundStart):
                for k in range(FLOOD):
                    report = RecordReport.from_dict(_report(1.0 + k / 100, 0.01 + k / 1000, 100))
                    endpoint.send(encode_message(Relay(start.round, b"junk", report)))
                endpoint.send(encode_message(Leave(start.round, "flooded")))
                return
    finally:
        done.wait(timeout=60)
        endpoint.close()


def test_a_branchs_second_report_in_a_round_is_refused_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: Counter[str] = Counter()  # the arrival checks, by the identity the server passes
    check = RecordRelease.report_problem

    def counted_check(self: RecordRelease, identity: str, report: RecordReport) -> str | None:
        checks[identity] += 1
        return check(self, identity, report)

    monkeypatch.setattr(RecordRelease, "report_problem", counted_check)
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": "flood",
                "clients": [*HONEST, FLOODER],
                "dimension": 4,
                "rounds": 1,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA},
            "deadlines": {"phase_seconds": 30.0},
        }
    )
    hub = InProcessHub()
    done = threading.Event()
    threads = [threading.Thread(target=_flood, args=(hub, done), daemon=True)]
    clients = []
    for index, name in enumerate(HONEST):
        client = FederationClient(
            name,
            lambda model: np.full_like(model, 0.1),
            hub.connect(name),
            privacy_report=lambda index=index: _report(1.0, 0.001 * (index + 1), 500),
        )
        clients.append(client)
        threads.append(
            threading.Thread(
                target=client.run, kwargs={"idle_timeout": 60, "rounds": 1}, daemon=True
            )
        )
    for thread in threads:
        thread.start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"))
    try:
        results = server.run(wait_for_clients=60, max_attempts=1)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)

    assert [r.status for r in results] == ["complete"], [r.reason for r in results]
    assert sorted(results[0].contributed) == HONEST
    flooder = server._identity(FLOODER)
    # one check for its first report; the other FLOOD - 1 refused unchecked
    assert checks[flooder] == 1, f"{checks[flooder]} arrival checks of one branch's reports"
    assert server.refused_messages >= FLOOD - 1
