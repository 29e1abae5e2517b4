"""A party the round dropped may answer late once; anything more it sends in the round
is out of phase, and is logged as a refusal (WARNING), not as late (INFO).

Why one: an honest branch has at most one payload in flight (it waits for the server's
next message after each), and a branch the round dropped is sent nothing of the
phases after: after its late answer to the phase it missed, it has nothing left to
send. Before: every payload of the round in flight from a dropped party that the
session refused as out of phase was logged "a late payload ... (a slow branch or
link)", at INFO, so a dropped party sending well-formed messages of LATER phases (here:
its unmasking shares while the round collects keys' shares) looked like a slow link.

The slow link is made by the server's side of the hub, without clocks (as in
test_late_payload_log.py): it holds the slow branch's key advertisement and hides the
branch, so the key phase closes without it; when the next phase goes out the held
payload arrives, followed by a well-formed unmasking message from the same party.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from _threads import BOUND, Party

from secagg.protocol.messages import UnmaskingShares
from secagg.protocol.messages import decode as decode_protocol
from secagg.protocol.messages import encode as encode_protocol
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
SLOW = NAMES[-1]


class _LateThenOutOfPhase(InProcessHub):
    """Holds :data:`SLOW`'s first payload of round 1 (its keys) and hides :data:`SLOW`;
    as the next phase's first message goes out, delivers the held payload and then an
    unmasking message of round 1 from the same party (a phase still to come)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: tuple[str, bytes] | None = None
        self.released = False

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None and item[0] == SLOW and self.held is None:
            message = decode_message(item[1])
            if isinstance(message, Relay) and message.round == 1:
                self.held = item
                self.wake_server()
                return None
        return item

    def connected(self) -> set[str]:
        stalled = self.held is not None and not self.released
        return super().connected() - ({SLOW} if stalled else set())

    def _release(self, payload: bytes) -> None:
        if self.held is None or self.released or not isinstance(decode_message(payload), Relay):
            return
        self.released = True
        self._to_server.put(self.held)
        keys = decode_protocol(decode_message(self.held[1]).payload)  # type: ignore[union-attr]
        later = UnmaskingShares(keys.round_id, keys.sender, (), ())  # type: ignore[attr-defined]
        self._to_server.put((SLOW, encode_message(Relay(1, encode_protocol(later)))))
        self.sessions_changed()

    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        self._release(payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        super().send_to_session(name, session, parts)
        self._release(b"".join(parts))


def test_a_dropped_partys_later_phase_payload_is_a_refusal_not_late(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "phase", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = _LateThenOutOfPhase()
    parties = []
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.01), hub.connect(name))
        parties.append(Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=1)))
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    with caplog.at_level(logging.INFO, logger="secagg.server"):
        (result,) = server.run(wait_for_clients=BOUND, max_attempts=1)
    assert hub.released, "the slow branch's keys were never held"
    assert result.status == "complete" and result.contributed == tuple(NAMES[:-1])
    for party in parties:
        assert party.done.wait(BOUND)
    about_slow = [r for r in caplog.records if f"from {SLOW}" in r.getMessage()]
    assert [r.levelno for r in about_slow] == [logging.INFO, logging.WARNING], [
        r.getMessage() for r in about_slow
    ]
    assert "late payload" in about_slow[0].getMessage()
    assert "out of phase" in about_slow[1].getMessage()
    assert "UnmaskingShares" in about_slow[1].getMessage()
    assert server.refused_messages == 2
