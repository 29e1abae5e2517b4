"""The key holder's refusal of an implausible sum, one un-noised bit of the exact sum, is gone.

Question (review of 2026-12-06): the key holder tested the *exact* decrypted sum against
what the contributions the aggregate claims can add up to (``c·B`` plus the CKKS error
bound) and refused beyond it (``ImplausibleSum``); the runtime then aborted the round
uncharged. That refusal was one bit of honest data: a malicious branch's out-of-bound
upload (a branch holds the public key) turned it into a threshold on the others' sum.
With its 2.5 against a range of 3, the round was refused exactly when an honest branch's
coordinate was above 0.25 (given the third's 0.25), and every branch heard the reason.

Now (``clamp_to_plausible``, docs/backends.md): the key holder clamps the exact sum into
that range before its noise and releases it as any other sum, charged as planned (the
clamp is a projection onto a box, 1-Lipschitz in L2, so the planned sensitivity holds).
What the server receives for an honest value just inside the threshold and just outside
it is the same kind of message, of the same size, under the same reported noise: a
noised sum, never a refusal; only the key holder's own log says a coordinate was
clamped. The round is an ordinary release: done, not refused, charged at the planned
noise, no "implausible sum" anywhere.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER
from secagg.aggregation.ckks import CKKSBackend, CKKSServer, KeyHolderSession, frame_chunks
from secagg.aggregation.keyholder_policy import plausible_range
from secagg.errors import SecAggError
from secagg.he.vectors import EncryptedSum, encrypt_vector

D = 2
HONEST_OTHER = 0.25
#: the malicious branch's first coordinate: 2.5 value bounds, as one "contribution"
INFLATED = (1.0, 1.0, 0.5)
#: the central noise the server plans (and asks the key holder to add): small enough that
#: a clamped coordinate (near 3) and an unclamped one (3.05) are 5 deviations apart
PLANNED = 0.001
#: the header of a key-holder message: magic, version, kind
HEAD = 6


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


def _round(honest: float) -> tuple[bytes, CKKSServer]:
    """One round of three (a malicious upload, ``honest`` and :data:`HONEST_OTHER`) planned
    at noise :data:`PLANNED`: the key holder's reply to the decryption request (all the
    server receives of the sum) and the server session once it handled it."""
    backend = CKKSBackend()
    holder = KeyHolderSession()
    server = backend.server(backend.plan(3, D), noise_stddev=PLANNED)
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
    except SecAggError as refusal:  # the bit this file is about: never again
        pytest.fail(f"the key holder refused the round ({type(refusal).__name__}: {refusal})")
    holder.after_reply()  # the reply is out: the key holder logs a clamp only now
    server.handle(HELPER, reply)
    return reply, server


def _kind_size_noise(reply: bytes) -> tuple[bytes, int, float]:
    """What the server can tell of a reply apart from the sum's values: its header (magic,
    version, kind), its size and the noise std it reports."""
    return reply[:HEAD], len(reply), float(np.frombuffer(reply[HEAD : HEAD + 8], "<f8")[0])


def test_the_server_gets_a_noised_sum_on_either_side_of_the_threshold() -> None:
    low_reply, low = _round(0.2)  # 2.5 + 0.2 + 0.25 = 2.95: within 3
    high_reply, high = _round(0.3)  # 2.5 + 0.3 + 0.25 = 3.05: beyond, clamped
    assert _kind_size_noise(low_reply) == _kind_size_noise(high_reply)
    assert _kind_size_noise(high_reply)[1:] == (HEAD + 8 + 8 * D, PLANNED)
    for server in (low, high):  # an ordinary release, charged at the planned noise
        assert server.done and not server.reveal_refused()
        assert server.noise_at_reveal() == PLANNED
        assert server.finish().report.noise_stddev == PLANNED
        assert server._abort_reason is None


def test_the_sum_beyond_the_range_is_released_clamped_into_it() -> None:
    """The exact sum's 3.05 leaves as the range's edge (3 plus the CKKS error bound) plus
    the noise, not as 3.05 plus the noise; 2.95, within it, leaves as itself."""
    _, high = _round(0.3)
    _, low = _round(0.2)
    edge = plausible_range(high.params, 0.0, 3)
    tail = 9 * PLANNED
    assert abs(high.finish().total[0] - edge) <= tail and edge + tail < 3.05 - tail
    assert abs(low.finish().total[0] - 2.95) <= tail + high.params.error_bound(3)


def test_only_the_key_holders_own_log_says_a_coordinate_was_clamped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        _round(0.2)
    assert not [r for r in caplog.records if "clamped" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        _round(0.3)
    (warning,) = [r.getMessage() for r in caplog.records if "clamped" in r.getMessage()]
    assert "round 1: 1 of 2 coordinates" in warning and "out-of-range upload" in warning
