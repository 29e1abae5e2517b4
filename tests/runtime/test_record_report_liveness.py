"""One branch's DP-SGD report must not stop a record-level federation.

The server checked each contributor's report only after the round's phases, once the sum
was unmasked, and refused the round for a report it could not sign; nothing stopped the
branch sending such a report again, so one enrolled branch aborted every round it was
sampled into (2026-12-07). Now every check that needs no replay runs as the report
arrives, and the branch is a dropout of that round; the others' rounds complete.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import MAX_REPLAYED_RUNS
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(6)]
MALLORY = NAMES[5]
D = 4
ROUNDS = 3
DELTA = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _accountant_loaded() -> None:
    """Opacus's accountant imported once before the branches' threads ask it (six first
    imports at once in the branches' threads outlasted the first phase's deadline)."""
    RecordLevelAccountant("rdp", DELTA, [(1.0, 0.01, 1)]).epsilon()


def _honest(history: list[tuple[float, float, int]]) -> dict[str, object]:
    return {
        "accountant": "rdp",
        "delta": DELTA,
        "history": [list(h) for h in history],
        "epsilon": RecordLevelAccountant("rdp", DELTA, history).epsilon(),
    }


def _reporter(bad: Callable[[int], dict[str, object]] | None) -> Callable[[], dict]:
    """A branch's privacy_report: each round 100 more steps; ``bad``: what it sends instead."""
    calls = {"n": 0}

    def report() -> dict[str, object]:
        calls["n"] += 1
        if bad is not None:
            return bad(calls["n"])
        return _honest([(1.0, 0.01, 100 * calls["n"])])

    return report


def _run(tmp_path: Path, bad: Callable[[int], dict[str, object]]) -> list[RoundResult]:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "reports", "clients": NAMES, "dimension": D, "rounds": ROUNDS},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA},
            "deadlines": {"phase_seconds": 20.0},
        }
    )
    hub = InProcessHub()
    threads = []
    for name in NAMES:
        client = FederationClient(
            name,
            lambda m: np.full_like(m, 0.1),
            hub.connect(name),
            privacy_report=_reporter(bad if name == MALLORY else None),
        )
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": ROUNDS}, daemon=True
        )
        thread.start()
        threads.append(thread)
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"), ledger=ledger)
    results = server.run(wait_for_clients=60, max_attempts=ROUNDS)
    ledger.close()
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    return results


def _past_caps(_: int) -> dict[str, object]:
    """More runs than the server replays (each its own noise multiplier)."""
    return _honest([(1.0 + i / 100, 0.01, 1) for i in range(MAX_REPLAYED_RUNS + 1)])


def _wrong_delta(n: int) -> dict[str, object]:
    return {**_honest([(1.0, 0.01, 100 * n)]), "delta": DELTA * 10}


def _no_noise(n: int) -> dict[str, object]:
    return {"accountant": "rdp", "delta": DELTA, "history": [[0.0, 0.01, 100 * n]], "epsilon": 1.0}


def _rewinds(n: int) -> dict[str, object]:
    """An honest first report, then a history that restarts every round."""
    return _honest([(1.0, 0.01, 100 if n == 1 else 50)])


@pytest.mark.parametrize("bad", [_past_caps, _wrong_delta, _no_noise, _rewinds])
def test_a_branch_with_a_report_refused_on_arrival_drops_out_and_the_rounds_complete(
    tmp_path: Path, bad: Callable[[int], dict[str, object]]
) -> None:
    results = _run(tmp_path, bad)
    assert [r.status for r in results] == ["complete"] * ROUNDS, [r.reason for r in results]
    later = results if bad is not _rewinds else results[1:]
    assert all(MALLORY not in r.contributed for r in later), [r.contributed for r in results]
    assert all(set(NAMES) - {MALLORY} <= set(r.contributed) for r in results)


def _silent_federation(
    tmp_path: Path, hub: InProcessHub, rounds: int, attempts: int
) -> tuple[FederationServer, list[RoundResult]]:
    """Six branches, MALLORY sending no report at all: only the sum's check finds it."""
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "reports", "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA},
            "deadlines": {"phase_seconds": 20.0},
        }
    )
    for name in NAMES:
        client = FederationClient(
            name,
            lambda m: np.full_like(m, 0.1),
            hub.connect(name),
            privacy_report=None if name == MALLORY else _reporter(None),
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": None}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"))
    return server, server.run(wait_for_clients=60, max_attempts=attempts)


def test_a_branch_refused_after_the_sum_aborts_one_round_and_is_excluded(
    tmp_path: Path,
) -> None:
    hub = InProcessHub()
    server, results = _silent_federation(tmp_path, hub, rounds=2, attempts=3)
    assert [r.status for r in results] == ["aborted", "complete", "complete"], [
        r.reason for r in results
    ]
    assert "not accounted" in (results[0].reason or "")
    assert all(MALLORY not in r.participants for r in results[1:])
    assert MALLORY in server.excluded()
    # kept across a restart: the exclusion is stored with the aborted round
    restarted = FederationServer(server.config, hub, ServerStore(tmp_path / "state.sqlite"))
    assert MALLORY in restarted.excluded()
