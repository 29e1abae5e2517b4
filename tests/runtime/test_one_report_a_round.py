"""One DP-SGD report a branch and round is checked by the server.

A hostile branch attached a new report (new noise and rate pairs) to every message of a
round, and the server checked each as it arrived: sizing a report's PRV replay costs up
to about 0.6 s of CPU, spent in the message handler for every such message (review,
2026-12-07). An honest branch attaches its report to its first payload of the round
only; now a later message of the round carrying a report (a different one, or the same
again) is refused unchecked and its sender is a dropout of the round, and the others'
round completes. A federation-level variant of test_record_report_flood.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import RecordReport
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, encode_message
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(6)]
MALLORY = NAMES[5]
ROUNDS = 2
DELTA = 1e-5


def _report(steps: int, extra: int = 0) -> dict[str, Any]:
    """A history of ``steps`` at z 1, then ``extra`` one-step runs of new noise
    multipliers: each report with more ``extra`` extends the one before (a valid report
    the server takes), and each costs a check of its own."""
    history = [(1.0, 0.01, steps)] + [(1.0 + j / 1000, 0.01, 1) for j in range(1, extra + 1)]
    return {
        "accountant": "rdp",
        "delta": DELTA,
        "history": [list(h) for h in history],
        "epsilon": RecordLevelAccountant("rdp", DELTA, history).epsilon(),
    }


class _ReportOnEveryPayload(FederationClient):
    """Attaches a report to every payload: a new one each time (``same``: one per round)."""

    def __init__(self, *args: Any, same: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.same = same
        self.sent = 0

    def _send(self, round_number: int, payloads: list[bytes]) -> None:
        assert self._transport is not None
        for payload in payloads:
            self.sent += 1
            report = _report(100 * round_number) if self.same else _report(100, self.sent)
            privacy = RecordReport.from_dict(report)
            self._transport.send(encode_message(Relay(round_number, payload, privacy)))


@pytest.fixture(autouse=True, scope="module")
def _accountant_loaded() -> None:
    RecordLevelAccountant("rdp", DELTA, [(1.0, 0.01, 1)]).epsilon()


@pytest.mark.parametrize("same", [False, True], ids=["new-report-each-message", "same-report"])
def test_one_report_a_branch_and_round_is_checked(tmp_path: Path, same: bool) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "one", "clients": NAMES, "dimension": 4, "rounds": ROUNDS},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA},
            "deadlines": {"phase_seconds": 30.0},
        }
    )
    hub = InProcessHub()
    mallory: _ReportOnEveryPayload | None = None
    for name in NAMES:
        counts = {"n": 0}

        def honest(counts: dict[str, int] = counts) -> dict[str, Any]:
            counts["n"] += 1
            return _report(100 * counts["n"])

        if name == MALLORY:
            mallory = _ReportOnEveryPayload(
                name, lambda m: np.full_like(m, 0.1), hub.connect(name), same=same
            )
            client: FederationClient = mallory
        else:
            client = FederationClient(
                name, lambda m: np.full_like(m, 0.1), hub.connect(name), privacy_report=honest
            )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": ROUNDS}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"))
    checked: list[tuple[str, Any]] = []  # (identity, report) of every check asked
    real = server.mechanism.report_problem

    def counted(identity: str, report: Any) -> str | None:
        checked.append((identity, report))
        return real(identity, report)

    server.mechanism.report_problem = counted  # type: ignore[method-assign]
    results = server.run(wait_for_clients=60, max_attempts=ROUNDS)
    assert [r.status for r in results] == ["complete"] * ROUNDS, [r.reason for r in results]
    assert mallory is not None and mallory.sent >= 2 * ROUNDS  # it did send several a round
    # the reports of MALLORY's the server checked (take_report asks again: memoised)
    mallorys = len({report for identity, report in checked if MALLORY in identity})
    # one check a round, then a dropout of the round (the same report again too: an
    # honest branch sends its report once, with its first payload of the round)
    assert mallorys == ROUNDS, (mallorys, mallory.sent)
    assert all(MALLORY not in r.contributed for r in results)
    assert all(set(NAMES) - {MALLORY} <= set(r.contributed) for r in results)
