"""A payload of a completed round from a party that answered every phase of it is a
replay, refused as such (WARNING), never logged as a slow branch's late answer (INFO).

Found by the runtime review of 2026-12-07 (secagg/runtime/server.py, ``_late``): every
payload of a past round from one of its parties was taken as late, logged "a late
payload from branch-4 of round 1, whose phase has closed without it (a slow branch or
link)". A branch that sent its last answer of a round twice (the last to answer, so the
copy is read by the next round's loop) was reported as a slow link, though its phase
closed with its answer in. A party a phase closed without is still late (INFO):
tests/runtime/test_late_payload_log.py.

Over :class:`~_lockstep_hub.LockstepHub`: the branches answer inside the server's sends,
so which round's loop reads the copy is fixed, with no thread or clock.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _lockstep_hub import LockstepHub

from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore

NAMES = [f"branch-{i}" for i in range(5)]
REPLAYER = NAMES[-1]  # the last of the cohort: its last answer ends each round


def _train(model: np.ndarray) -> np.ndarray:
    return np.full_like(model, 0.01)


class _SendsTwice:
    """A branch's endpoint that sends every payload twice."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def send(self, payload: bytes) -> None:
        self._inner.send(payload)  # type: ignore[attr-defined]
        self._inner.send(payload)  # type: ignore[attr-defined]

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]


def test_a_replayed_last_answer_of_a_completed_round_is_a_refusal_not_late(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "replay", "clients": NAMES, "dimension": 8, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.3},
            "deadlines": {"phase_seconds": 3600.0, "round_seconds": 10800.0},
        }
    )
    hub = LockstepHub()
    for name in NAMES[:-1]:
        hub.join(name, _train)
    endpoint = hub.connect(REPLAYER)
    hub.adopt(FederationClient(REPLAYER, _train, _SendsTwice(endpoint)), endpoint)
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock)
    with caplog.at_level(logging.INFO, logger="secagg.server"):
        first, second = server.run_round(), server.run_round()
    assert first.status == second.status == "complete"
    assert first.contributed == second.contributed == tuple(NAMES)
    of_round_1 = [
        r
        for r in caplog.records
        if r.getMessage().startswith("round 2:")
        and f"from {REPLAYER}" in r.getMessage()
        and ("of round 1" in r.getMessage() or "expected a payload of round 2" in r.getMessage())
    ]
    assert [(r.levelno, "late" in r.getMessage()) for r in of_round_1] == [
        (logging.WARNING, False)
    ], [r.getMessage() for r in of_round_1]
