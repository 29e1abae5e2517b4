"""An honest branch's answer that arrives after its round closed is logged as late, at
INFO; a real refusal stays a WARNING.

Before: the server refused it as any payload of another round, with a WARNING "refused
a message from branch-3 (ProtocolError): expected a payload of round 2", so an operator
reading the log saw an attack where a branch had only been slow (review, 2026-12-06).

The slow link is made by the server's side of the hub, without clocks: it holds the
slow branch's first payload of round 1 and hides the branch from ``connected`` (a link
that stalled), so the server closes the phase without it at once; as round 1's end goes
out the link is back and the held payload arrives, with a payload of a round the branch
was never in beside it (a real refusal), both read by round 2's collect loop.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _stalled_branch import StallingLink, run_secagg_plus
from _threads import BOUND

from secagg.runtime.wire import Relay, RoundEnd, decode_message, encode_message

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
SLOW = NAMES[-1]
NEVER_ITS_ROUND = 99


class _ReleasedAtRoundEnd(StallingLink):
    """Holds :data:`SLOW`'s first payload of round 1 and hides :data:`SLOW` until round
    1's end is sent to it; then delivers the held payload, after a payload of round
    :data:`NEVER_ITS_ROUND` from the same branch."""

    def on_server_send(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        if name == SLOW and isinstance(message, RoundEnd) and message.round == 1:
            assert self.held is not None
            self.released = True
            self._to_server.put((SLOW, encode_message(Relay(NEVER_ITS_ROUND, b"junk"))))
            self._to_server.put(self.held)
            self.sessions_changed()


def test_a_late_payload_is_info_and_a_real_refusal_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = _ReleasedAtRoundEnd(SLOW)
    results, server, parties = run_secagg_plus(
        tmp_path, hub, caplog, federation="late", names=NAMES, dimension=D, rounds=2
    )
    first, second = results
    assert hub.released, "the slow branch's payload was never held"
    assert first.status == "complete" and first.contributed == tuple(NAMES[:-1])
    assert second.status == "complete", second.reason
    for party in parties:
        assert party.done.wait(BOUND)
    about_slow = [
        r for r in caplog.records if SLOW in r.getMessage() and "round 2:" in r.getMessage()
    ]
    late = [r for r in about_slow if "late payload" in r.getMessage()]
    assert [r.levelno for r in late] == [logging.INFO], [r.getMessage() for r in about_slow]
    assert "of round 1" in late[0].getMessage()
    refused = [r for r in about_slow if "refused a message" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.WARNING], [r.getMessage() for r in about_slow]
    assert server.refused_messages == 2  # both dropped and counted


class _StallsForOnePhase(StallingLink):
    """As :class:`_ReleasedAtRoundEnd`, but the link is back, and the held payload (the slow
    branch's key advertisement) arrives, as soon as the server sends round 1's next
    phase to another branch: inside round 1, after the phase it answered has closed."""

    def on_server_send(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        if self.held is not None and not self.released and isinstance(message, Relay):
            self.released = True
            self._to_server.put(self.held)
            self.sessions_changed()


def test_a_late_payload_inside_its_round_is_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The slow branch's keys arrive in round 1 after the key phase closed without it.
    Before: a WARNING "refused a message from branch-3 (UnexpectedMessage):
    AdvertiseKeys is not accepted in phase share_keys". Now an INFO late line; the round
    completes with the other three."""
    hub = _StallsForOnePhase(SLOW)
    results, server, parties = run_secagg_plus(
        tmp_path, hub, caplog, federation="late", names=NAMES, dimension=D, rounds=1
    )
    (result,) = results
    assert hub.released, "the slow branch's keys were never held"
    assert result.status == "complete" and result.contributed == tuple(NAMES[:-1])
    for party in parties:
        assert party.done.wait(BOUND)
    about_slow = [r for r in caplog.records if f"from {SLOW}" in r.getMessage()]
    assert [r.levelno for r in about_slow] == [logging.INFO], [r.getMessage() for r in about_slow]
    assert "late payload" in about_slow[0].getMessage()
    assert server.refused_messages == 1
