"""Record-level DP on a server without a ledger: each round's DP-SGD reports are its own.

Second review of the DP-budget path (2026-12-07): :class:`~secagg.dp.release.RecordRelease`
kept the round's reports (what :meth:`require_reports` and :meth:`release` match the
contributors against) until the round's ledger row took them (``ledger_block``). A
server run without a ledger (``FederationServer(..., ledger=None)``: the API's default,
tests, embedding programs) never builds that row, so a report of round 1 still counted
as a report of round 2: a branch that reported once could contribute to every later
round without reporting, its updates trained past the figure the server held, and the
rounds were released and their epsilon printed as if every update were accounted for.
Now each round starts with no report (``begin_round``); a contributor without one in
its round aborts that round (:class:`~secagg.dp.release.UnaccountedContribution`) and
is kept out of the later ones, as with a ledger.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger import Ledger, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(4)]
SILENT = NAMES[2]  # reports in its first round only
DELTA = 1e-5


def _report(steps: int) -> dict[str, Any]:
    return {
        "unit": "customer",
        "mechanism": "dpsgd",
        "accountant": "rdp",
        "delta": DELTA,
        "history": [[1.0, 0.01, steps]],
        "epsilon": RecordLevelAccountant("rdp", DELTA, [(1.0, 0.01, steps)]).epsilon(),
        "max_grad_norm": 1.0,
    }


class ReportsOnce:
    """A branch's endpoint that strips the DP-SGD report from every payload after its
    first round's: the branch trains on, and reports nothing more."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._first: int | None = None

    def send(self, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay) and message.privacy is not None:
            if self._first is None:
                self._first = message.round
            elif message.round != self._first:
                payload = encode_message(Relay(message.round, message.payload, None))
        self._inner.send(payload)

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "noledger", "clients": NAMES, "dimension": 4, "rounds": 3},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA},
            "deadlines": {"phase_seconds": 90.0},
        }
    )


@pytest.mark.parametrize("with_ledger", [False, True])
def test_a_report_of_an_earlier_round_does_not_account_for_a_later_one(
    tmp_path: Path, with_ledger: bool
) -> None:
    """A branch reports in round 1 only: round 2 must not be released with its update,
    ledger or none (with a ledger it never was: the control)."""
    hub = InProcessHub()
    threads = []
    for name in NAMES:
        steps = iter(range(100, 10_000, 100))  # each round's report extends the last
        endpoint: Any = hub.connect(name)
        if name == SILENT:
            endpoint = ReportsOnce(endpoint)
        client = FederationClient(
            name,
            lambda model: np.full_like(model, 0.1),
            endpoint,
            privacy_report=lambda steps=steps: _report(next(steps)),
        )
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": 90, "rounds": None}, daemon=True
        )
        thread.start()
        threads.append(thread)
    ledger = Ledger(tmp_path / "ledger.sqlite", LedgerKey.generate()) if with_ledger else None
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger)
    try:
        results = server.run(wait_for_clients=90, max_attempts=3)
    finally:
        if ledger is not None:
            ledger.close()
    statuses = [(r.status, r.reason) for r in results]
    assert [r.status for r in results] == ["complete", "aborted", "complete"], statuses
    assert SILENT in results[0].contributed
    assert "not accounted for" in (results[1].reason or ""), statuses
    assert server.excluded() == {SILENT}
    assert SILENT not in results[2].participants
