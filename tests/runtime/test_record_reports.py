"""Record-level DP-SGD in a federation: every contributor's update is accounted.

DP audit (2026-12-04): a branch that sent no DP-SGD privacy report still had its update
summed and released, and the ledger claimed the others' epsilon. Now the server matches
reports to contributors by identity and refuses to release a round with one missing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(4)]
D = 8


def _report(steps: int) -> dict[str, object]:
    history = [(1.0, 0.01, steps)]
    accountant = RecordLevelAccountant("rdp", 1e-5, history)
    return {
        "unit": "customer",
        "mechanism": "dpsgd",
        "accountant": "rdp",
        "delta": 1e-5,
        "history": [list(h) for h in history],
        "epsilon": accountant.epsilon(),
        "max_grad_norm": 1.0,
    }


def _federation(tmp_path: Path, silent: set[str]) -> tuple[list, FederationServer, Path, bytes]:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "records", "clients": NAMES, "dimension": D, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": 1e-5},
            "deadlines": {"phase_seconds": 20.0},
        }
    )
    hub = InProcessHub()
    threads = []
    for name in NAMES:
        steps = {"n": 0}

        def report(steps: dict[str, int] = steps) -> dict[str, object]:
            steps["n"] += 100
            return _report(steps["n"])

        client = FederationClient(
            name,
            lambda m: np.full_like(m, 0.1),
            hub.connect(name),
            privacy_report=None if name in silent else report,
        )
        thread = threading.Thread(target=client.run, kwargs={"idle_timeout": 60, "rounds": 2})
        thread.daemon = True
        thread.start()
        threads.append(thread)
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"), ledger=ledger)
    results = server.run(wait_for_clients=60, max_attempts=2)
    ledger.close()
    for thread in threads:
        thread.join(timeout=120)
    return results, server, path, key.public_key


def test_a_contributor_without_a_report_stops_the_release(tmp_path: Path) -> None:
    results, server, path, public_key = _federation(tmp_path, silent={NAMES[3]})
    assert [r.status for r in results] == ["aborted", "complete"], [r.reason for r in results]
    assert "not accounted" in (results[0].reason or ""), results[0].reason
    # that round released nothing; the branch is then excluded from later rounds (it
    # aborted every round before: tests/runtime/test_record_report_liveness.py)
    assert NAMES[3] not in results[1].participants
    assert NAMES[3] in server.excluded()
    assert verify_ledger(path, public_key).ok


def test_when_every_contributor_reports_the_rounds_complete_and_verify(tmp_path: Path) -> None:
    results, _server, path, public_key = _federation(tmp_path, silent=set())
    assert [r.status for r in results] == ["complete", "complete"]
    audit = verify_ledger(path, public_key)
    assert audit.ok and audit.private, audit.first_failure
