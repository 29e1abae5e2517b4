"""The noise a CKKS key holder's reply reports is what the server's reveal is charged at.

Findings (review of 2026-12-06):

* ``CKKSServer.noise_at_reveal`` was the requested std whatever the reply said, so the
  runtime's charge, noted at it before the request left, stayed at the plan for a sum
  that reached the server with less noise (tests/runtime/test_ckks_short_noise_charge.py
  has the federation). It is now the least of the request and the reply's report.
* A reply reporting a negative noise std is refused as malformed, and counts as no
  noise at the reveal (its sum reached the server all the same); a later reply cannot
  raise it again. So is one reporting NaN or an infinity (they were refused by the
  reply's reader before the report was kept: the reveal kept the plan's std).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER
from secagg.aggregation.ckks import CKKSBackend, CKKSServer, refusal_reply
from secagg.aggregation.keyholder_policy import RANGE_TAIL_Z, KeyHolderRefusal
from secagg.errors import MalformedMessage

D = 8
PLANNED = 0.5
#: where the decrypted reply's noise std lies: after the helper header (magic, version, kind)
NOISE_AT = 6


def _at_decryption() -> tuple[CKKSServer, bytes]:
    """A server whose decryption request is out, and the honest key holder's reply."""
    backend = CKKSBackend()
    helper = backend.helper()
    server = backend.server(backend.plan(3, D), noise_stddev=PLANNED)
    (request,) = server.start()
    server.handle(HELPER, helper.handle(request.payload, round_number=1))
    spec = server.spec
    outgoing: list = []
    for party in range(3):
        upload = backend.client(spec, party).set_input(np.full(D, 0.25))[0]
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    return server, helper.handle(decrypt.payload, round_number=1)


def _reporting(reply: bytes, noise: float) -> bytes:
    return reply[:NOISE_AT] + struct.pack("<d", noise) + reply[NOISE_AT + 8 :]


def test_an_honest_reply_keeps_the_planned_noise_at_the_reveal() -> None:
    server, reply = _at_decryption()
    assert server.noise_at_reveal() == PLANNED  # the request's, until the reply is read
    server.handle(HELPER, reply)
    result = server.finish()
    assert server.noise_at_reveal() == PLANNED and result.report.noise_stddev == PLANNED


def test_a_reply_with_less_noise_aborts_and_the_reveal_carries_its_noise() -> None:
    server, reply = _at_decryption()
    server.handle(HELPER, _reporting(reply, PLANNED / 4))
    assert server.done and "below the 0.5 this round planned" in str(server._abort_reason)
    assert server.noise_at_reveal() == PLANNED / 4


@pytest.mark.parametrize("noise", [-1.0, -1e-300, math.nan, math.inf, -math.inf])
def test_a_reply_reporting_no_noise_std_is_refused_and_vouches_for_none(noise: float) -> None:
    """NaN and the infinities too (test_ckks_reply_vouches_no_noise.py: they were refused
    by the reply's reader before the report was kept, so the reveal kept the plan's std)."""
    server, reply = _at_decryption()
    with pytest.raises(MalformedMessage, match="reports no noise std"):
        server.handle(HELPER, _reporting(reply, noise))
    assert not server.done  # refused: the round waits for its deadline, as for any junk
    assert server.noise_at_reveal() == 0.0
    # a later reply cannot raise what the refused one let through
    server.handle(HELPER, reply)
    assert server.noise_at_reveal() == 0.0


def test_the_reports_error_bound_covers_every_reply_the_server_accepts() -> None:
    """Finding (review of 2026-12-06): the server accepts a reply up to 9 noise deviations
    beyond what the round's contributions can sum to (a Box-Muller deviate reaches 8.6),
    while the report's error bound counted the key holder's noise at 7: a reply 8.9 std off
    the exact sum completed the round with a bound it broke (4.45 off, bound 3.5). One
    constant (``RANGE_TAIL_Z``) is now both the acceptance and the report's tail."""
    server, reply = _at_decryption()
    sent = np.frombuffer(reply[NOISE_AT + 8 :], "<f8").copy()
    sent[:] = 0.75  # the exact sum of three uploads of 0.25 ...
    sent[0] += 8.9 * PLANNED  # ... but one coordinate 8.9 deviations off, as noise can be
    crafted = reply[:NOISE_AT] + struct.pack("<d", PLANNED) + sent.astype("<f8").tobytes()
    server.handle(HELPER, crafted)
    result = server.finish()  # accepted: within the server's range
    assert abs(result.total[0] - 0.75) <= result.report.error_bound
    assert result.report.error_bound >= RANGE_TAIL_Z * PLANNED


def test_a_refused_decryption_revealed_nothing_unless_something_else_came() -> None:
    """The key holder's refusal, all it sent: nothing of the sum reached the server (the
    runtime then drops the charge it noted: tests/runtime/test_ckks_short_noise_charge.py).
    A refusal after another reply (a sum refused as malformed) is not: that reply may
    have carried the sum."""
    refusal = refusal_reply(KeyHolderRefusal("not today"))
    server, _ = _at_decryption()
    assert not server.reveal_refused()
    server.handle(HELPER, refusal)
    assert server.done and server.reveal_refused()
    server, reply = _at_decryption()
    with pytest.raises(MalformedMessage):
        server.handle(HELPER, reply[:-8])  # a sum one value short
    server.handle(HELPER, refusal)
    assert server.done and not server.reveal_refused()
