"""The key holder's refusal of an implausible sum: one bit of the exact sum, not charged.

Question (review of 2026-12-06): the key holder tests the *exact* decrypted sum against
what the contributions the aggregate claims can add up to (``c·B`` plus the error
bound) and refuses beyond it (``ImplausibleSum``); the runtime then aborts the round
uncharged (``reveal_refused``). Is that refusal a release?

Shown here: yes, it can be one bit of honest data. With every upload within the bound
the sum is always in range (the bit is constant but for the CKKS error's tail), but a
malicious branch's out-of-bound upload (a branch holds the public key) turns it into a
threshold on the others' sum: with its 2.5 against a range of 3, the round is refused
exactly when an honest branch's coordinate is above 0.25 (given the third's 0.25), and
every branch hears the refusal's reason.

Decided (CKKSServer.reveal_refused, ImplausibleSum, docs/backends.md): not charged. The
honest charge of an un-noised bit is an infinite epsilon, and a refusal any one branch
can provoke at will would then exhaust every branch's budget: one branch would stop the
federation. The bit is recorded instead (the round's abort reason names "implausible
sum", in its ledger row), so an auditor counts them. What would remove it is releasing
the sum clamped to the range (clamping is 1-Lipschitz: the planned charge covers it)
instead of refusing: a protocol change, not made here. This test pins the behaviour.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, frame_chunks
from secagg.aggregation.keyholder_policy import ImplausibleSum
from secagg.he.vectors import EncryptedSum, encrypt_vector

D = 2
HONEST_OTHER = 0.25
#: the malicious branch's first coordinate: 2.5 value bounds, as one "contribution"
INFLATED = (1.0, 1.0, 0.5)


def _inflated_upload(public: object) -> bytes:
    """Encryptions of values within the bound, summed and relabelled as one upload (a
    branch holds the public key, so it can; as test_ckks_keyholder.py's)."""
    inflated = EncryptedSum(public, D)
    for part in INFLATED:
        inflated.add(encrypt_vector(public, np.array([part, 0.0])))
    relabelled = [
        c[:5] + b"\x01" + c[6:22] + (1).to_bytes(4, "big") + c[26:] for c in inflated.to_chunks()
    ]
    return frame_chunks(relabelled)


def _round(honest: float) -> tuple[bool, object]:
    """One round of three: a malicious upload, ``honest`` and :data:`HONEST_OTHER`;
    whether the key holder refused, and the server session after its reply."""
    backend = CKKSBackend()
    holder = KeyHolderSession()
    server = backend.server(backend.plan(3, D))
    (request,) = server.start()
    server.handle(HELPER, holder.handle(request.payload, round_number=1))
    spec = server.spec
    uploads = [
        _inflated_upload(backend.client(spec, 0)._context),
        backend.client(spec, 1).set_input(np.array([honest, 0.0]))[0],
        backend.client(spec, 2).set_input(np.array([HONEST_OTHER, 0.0]))[0],
    ]
    outgoing: list = []
    for party, upload in enumerate(uploads):
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    try:
        reply = holder.handle(decrypt.payload, round_number=1)
    except ImplausibleSum as refusal:
        server.handle(HELPER, holder.refusal(refusal))
        return True, server
    server.handle(HELPER, reply)
    return False, server


def test_the_refusal_is_a_bit_of_an_honest_branchs_value_and_is_not_charged() -> None:
    refused_low, low = _round(0.2)  # 2.5 + 0.2 + 0.25 = 2.95: within 3
    refused_high, high = _round(0.3)  # 2.5 + 0.3 + 0.25 = 3.05: beyond
    assert (refused_low, refused_high) == (False, True)  # the bit: honest > 0.25
    assert low.done and not low.reveal_refused()  # a release, charged as planned
    assert high.done and high.reveal_refused()  # the runtime aborts it uncharged ...
    assert "implausible sum" in str(high._abort_reason)  # ... with the bit on record
