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
from pathlib import Path

import pytest
from _stalled_branch import StallingLink, run_secagg_plus
from _threads import BOUND

from secagg.protocol.messages import UnmaskingShares
from secagg.protocol.messages import decode as decode_protocol
from secagg.protocol.messages import encode as encode_protocol
from secagg.runtime.wire import Relay, decode_message, encode_message

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
SLOW = NAMES[-1]


class _LateThenOutOfPhase(StallingLink):
    """Holds :data:`SLOW`'s first payload of round 1 (its keys) and hides :data:`SLOW`;
    as the next phase's first message goes out, delivers the held payload and then an
    unmasking message of round 1 from the same party (a phase still to come)."""

    def on_server_send(self, name: str, payload: bytes) -> None:
        if self.held is None or self.released or not isinstance(decode_message(payload), Relay):
            return
        self.released = True
        self._to_server.put(self.held)
        keys = decode_protocol(decode_message(self.held[1]).payload)  # type: ignore[union-attr]
        later = UnmaskingShares(keys.round_id, keys.sender, (), ())  # type: ignore[attr-defined]
        self._to_server.put((SLOW, encode_message(Relay(1, encode_protocol(later)))))
        self.sessions_changed()


def test_a_dropped_partys_later_phase_payload_is_a_refusal_not_late(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = _LateThenOutOfPhase(SLOW)
    results, server, parties = run_secagg_plus(
        tmp_path, hub, caplog, federation="phase", names=NAMES, dimension=D, rounds=1
    )
    (result,) = results
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
