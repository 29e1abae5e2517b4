"""What one key holder cannot check: a server scaling one branch's ciphertext before the
decryption divides the key holder's noise on that branch's update by the scale.

Pinned here because docs/backends.md said a relabelled single upload reaches the server
"under the key holder's sigma", "with sigma at the central DP level ... a DP release of one
update". The server holds the residues, so it can multiply one branch's ciphertext by an
integer k (modulo each prime: k additions of the ciphertext to itself; an integer
polynomial, a monomial X^j or a rounded slot mask, keeps the scale the same way) and send
it as an aggregate of the cohort's count. The key holder sees a well-formed aggregate,
decrypts k x, clamps it into c B (which k x stays within whenever k <= c B / max|x|), adds
sigma and releases it; dividing by k gives x under sigma / k. At k = 100 (c = 4, B = 1, an
update of max 0.04) the key holder's sigma = 1 becomes 0.01 on that update: the DP release
is of one update at up to k times the sensitivity the noise was planned for, not one of it.
The clamp (c B) bounds k; nothing the key holder can see tells k x from an honest sum.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, decode_spec
from secagg.aggregation.ckks import (
    CKKSBackend,
    KeyHolderSession,
    _chunk_bytes,
    decryption_request,
    unframe_chunks,
)
from secagg.aggregation.keyholder_policy import RANGE_TAIL_Z, KeyHolderPolicy
from secagg.he.chunks import chunk_count, ciphertext_layout, read_chunk
from secagg.he.context import OpaquePublicContext
from secagg.he.envelope import ChunkHeader, ChunkKind, pack_packed_chunk
from secagg.he.packing import pack_coefficients

CLIENTS, DIMENSION, SIGMA, SCALE = 4, 300, 1.0, 100


def _scaled(context: OpaquePublicContext, upload: bytes, times: int, claimed: int) -> list[bytes]:
    """The server's forgery: each chunk of one branch's upload times ``times`` (modulo each
    prime, which is what adding it to itself ``times`` times gives), sent as an aggregate
    of ``claimed`` contributions."""
    params = context.params
    layout = ciphertext_layout(context)
    count = chunk_count(DIMENSION, params.values_per_ciphertext)
    primes = np.array(layout.primes, dtype=object)[None, :, None]
    forged = []
    for index, chunk in enumerate(unframe_chunks(upload, count, chunk_bytes=_chunk_bytes(params))):
        residues = read_chunk(context, chunk, kind=ChunkKind.CONTRIBUTION).residues
        scaled = ((residues.astype(object) * times) % primes).astype(np.uint64)
        header = ChunkHeader(
            ChunkKind.AGGREGATE,
            context.fingerprint,
            DIMENSION,
            index,
            count,
            claimed,
        )
        forged.append(pack_packed_chunk(header, pack_coefficients(scaled, layout)))
    return forged


def test_a_scaled_single_upload_passes_every_check_and_divides_the_noise_by_its_scale() -> None:
    helper = KeyHolderSession(KeyHolderPolicy(noise_stddev=SIGMA, max_decryptions=10))
    backend = CKKSBackend()
    server = backend.server(backend.plan(CLIENTS, DIMENSION))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    spec = decode_spec(announce.spec)
    update = np.linspace(-0.04, 0.04, DIMENSION)  # one branch's (test data): max 0.04
    upload = backend.client(spec, 0).set_input(update)[0]
    assert SCALE * np.max(np.abs(update)) <= CLIENTS * spec.design.value_bound  # within c B
    forged = _scaled(server.context, upload, SCALE, CLIENTS)
    payload = decryption_request(server.params, DIMENSION, 0.0, forged)
    reply = helper.handle(payload, round_number=1)  # every check passes: a "sum of 4"
    std = float(np.frombuffer(reply[6:14], "<f8")[0])
    recovered = np.frombuffer(reply[14:], "<f8") / SCALE
    assert std == SIGMA  # the key holder's noise, as it reports it
    error = recovered - update
    # the branch's update under sigma / 100, not sigma: measured spread about 0.01
    assert np.max(np.abs(error)) <= RANGE_TAIL_Z * SIGMA / SCALE
    assert 0.5 * SIGMA / SCALE < float(np.std(error)) < 1.5 * SIGMA / SCALE


def test_the_published_context_carries_no_keys_to_rotate_or_relinearize() -> None:
    """What the server cannot do: move one branch's coordinate into another slot (a
    rotation needs Galois keys) or multiply two ciphertexts (relinearization keys). The
    published context carries neither, so the scaling above (an integer, or an integer
    polynomial) is what a server can apply; an automorphism without its key switch gives
    a ciphertext under another key, which decrypts to noise: a crafted query, held to the
    clamp's c B like any other (docs/backends.md)."""
    import tenseal as ts

    helper = KeyHolderSession()
    backend = CKKSBackend()
    (request,) = backend.server(backend.plan(CLIENTS, DIMENSION)).start()
    helper.handle(request.payload, round_number=1)
    published = ts.context_from(helper._holder.public_context_bytes)
    assert published.has_public_key() and not published.has_secret_key()
    assert not published.has_galois_keys() and not published.has_relin_keys()
