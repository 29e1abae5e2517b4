"""A dropped party's *first* payload of the phase in flight or of a later phase is a
refusal (WARNING, "out of phase"), not a late answer (INFO).

Why: the server logged a payload of the round in flight from a party that missed a
phase as late ("a slow branch or link") whatever phase it was of, as long as it was the
party's first such payload; only a second one was told apart
(tests/runtime/test_out_of_phase_after_drop.py). So a dropped party that skipped its
late answer and sent a message of a phase still to come (its unmasking shares while the
round collects keys' shares), which no honest party sends, looked like a slow link. The
session now says which phase a payload's header names
(:meth:`~secagg.aggregation.base.ServerSession.phase_of`), and only a payload of a phase
the round has passed is late.

The slow link is the hub's, without clocks (as in test_out_of_phase_after_drop.py): it
swallows the slow branch's key advertisement and hides the branch, so the key phase
closes without it; as the next phase goes out, a well-formed unmasking message of the
round arrives from that branch, its first payload since the drop.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _stalled_branch import StallingLink, run_secagg_plus
from _threads import BOUND
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import HELPER, Phase, get_backend
from secagg.protocol.messages import UnmaskingShares
from secagg.protocol.messages import decode as decode_protocol
from secagg.protocol.messages import encode as encode_protocol
from secagg.runtime.wire import Relay, decode_message, encode_message

D = 8
NAMES = [f"branch-{i}" for i in range(4)]
SLOW = NAMES[-1]


class _SkipsToALaterPhase(StallingLink):
    """Swallows :data:`SLOW`'s first payload of round 1 (its keys) and hides :data:`SLOW`;
    as the next phase's first message goes out, delivers an unmasking message of round 1
    from that party (a phase still to come), and nothing else of it."""

    def on_server_send(self, name: str, payload: bytes) -> None:
        if self.held is None or self.released:
            return
        if not isinstance(decode_message(payload), Relay):
            return
        self.released = True
        keys = decode_protocol(decode_message(self.held[1]).payload)  # type: ignore[union-attr]
        later = UnmaskingShares(keys.round_id, keys.sender, (), ())  # type: ignore[attr-defined]
        self._to_server.put((SLOW, encode_message(Relay(1, encode_protocol(later)))))
        self.sessions_changed()


def test_a_dropped_partys_first_payload_of_a_later_phase_is_out_of_phase(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = _SkipsToALaterPhase(SLOW)
    results, server, parties = run_secagg_plus(
        tmp_path, hub, caplog, federation="phase", names=NAMES, dimension=D, rounds=1
    )
    (result,) = results
    assert hub.released, "the slow branch's keys were never swallowed"
    assert result.status == "complete" and result.contributed == tuple(NAMES[:-1])
    for party in parties:
        assert party.done.wait(BOUND)
    about_slow = [r for r in caplog.records if f"from {SLOW}" in r.getMessage()]
    assert [r.levelno for r in about_slow] == [logging.WARNING], [
        r.getMessage() for r in about_slow
    ]
    line = about_slow[0].getMessage()
    assert "out of phase" in line and "late" not in line, line
    assert "phase unmasking" in line and "UnmaskingShares" in line, line
    assert server.refused_messages == 1


# --- the sessions' own answers ------------------------------------------------------


def _masking_session():  # type: ignore[no-untyped-def]
    backend = get_backend("secagg+", value_bound=1.0)
    session = backend.server(backend.plan(4, D))
    session.start()
    return session


def test_masking_ranks_each_client_message_by_the_protocols_order() -> None:
    """advertise < share keys < masked input < consistency < unmasking, and the round in
    advertise_keys is before every one but its own."""
    from secagg.protocol.messages import VERSION, MessageType

    session = _masking_session()
    now = session.current_phase
    assert now is not None and now.name == "advertise_keys"
    head = b"SA" + bytes([VERSION])
    kinds = [
        MessageType.ADVERTISE_KEYS,
        MessageType.SHARE_KEYS,
        MessageType.MASKED_INPUT,
        MessageType.CONSISTENCY_SIGNATURE,
        MessageType.UNMASKING_SHARES,
    ]
    phases = [session.phase_of(0, head + bytes([kind]) + bytes(20)) for kind in kinds]
    assert all(isinstance(p, Phase) for p in phases)
    assert [p.name for p in phases] == [  # type: ignore[union-attr]
        "advertise_keys",
        "share_keys",
        "masked_input",
        "consistency_check",
        "unmasking",
    ]
    assert phases == sorted(phases)  # type: ignore[type-var]
    assert phases[0] == now and all(now < p for p in phases[1:])  # type: ignore[operator]
    # a server's message (no client sends it), another version, too short: unknown
    assert session.phase_of(0, head + bytes([MessageType.KEY_DIRECTORY])) is None
    assert session.phase_of(0, b"SA" + bytes([VERSION - 1, MessageType.SHARE_KEYS])) is None
    assert session.phase_of(0, b"SA" + bytes([VERSION])) is None


def test_plain_and_ckks_rank_a_clients_payload_as_their_contribution_phase() -> None:
    plain = get_backend("plain", value_bound=1.0)
    session = plain.server(plain.plan(3, D))
    before = session.current_phase
    assert session.phase_of(0, b"anything") == session._ranked("contribution")  # type: ignore[attr-defined]
    session.start()
    assert before is not None and before < session.current_phase  # type: ignore[operator]
    assert session.phase_of(HELPER, b"x") is None
    ckks = get_backend("ckks", value_bound=1.0)
    keyed = ckks.server(ckks.plan(3, D))
    keyed.start()
    assert keyed.current_phase is not None and keyed.current_phase.name == "key"
    contribution = keyed.phase_of(1, b"\x00" * 40)
    assert contribution is not None and contribution.name == "contribution"
    assert keyed.current_phase < contribution
    assert keyed.phase_of(HELPER, b"junk") is None  # no key holder header


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=64), party=st.integers(-1, 5))
def test_phase_of_never_raises_and_changes_nothing(payload: bytes, party: int) -> None:
    session = _masking_session()
    before = (session.phase, session.waiting_for, session.current_phase)
    got = session.phase_of(party, payload)
    assert got is None or isinstance(got, Phase)
    assert (session.phase, session.waiting_for, session.current_phase) == before
