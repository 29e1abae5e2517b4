"""The CKKS server's decryption request: the same bytes as before, built without
copying the aggregate (memory review of the server's decrypt phase)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, ToParty, decode_spec
from secagg.aggregation.ckks import (
    _DECRYPT,
    CKKSBackend,
    CKKSServer,
    KeyHolderSession,
    _helper_message,
    decryption_request,
    federation_field,
    frame_chunks,
)
from secagg.aggregation.spec import Writer
from secagg.errors import RoundAborted


def _summed(dimension: int, clients: int = 2) -> tuple[CKKSServer, KeyHolderSession]:
    """A server of a 3-client round holding ``clients`` uploads, still collecting."""
    backend = CKKSBackend()
    server = backend.server(backend.plan(3, dimension), noise_stddev=0.125)
    helper = KeyHolderSession()
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    assert isinstance(announce, Announce)
    spec = decode_spec(announce.spec)
    for party in range(clients):
        server.handle(party, backend.client(spec, party).set_input(np.full(dimension, 0.25))[0])
    return server, helper


def test_the_request_is_the_bytes_the_writer_wrote_and_decrypts() -> None:
    """Same wire format as ``Writer().u32(d).f64(std).blob(frame_chunks(...))`` and the
    federation's name (the key holder reads no other), and the round completes with the
    sum."""
    d = 3 * 4096 + 5  # several chunks, the last one short
    server, helper = _summed(d)
    chunks = server._sum.to_chunks()
    old = Writer().u32(d).f64(0.125).blob(frame_chunks(chunks)).bytes() + federation_field("")
    (out,) = server.close_phase()
    assert isinstance(out, ToParty) and out.party == HELPER
    assert out.payload == _helper_message(_DECRYPT, old)
    assert server.handle(HELPER, helper.handle(out.payload, round_number=1)) == []
    result = server.finish()
    assert np.max(np.abs(result.total - 0.5)) <= result.report.error_bound


def test_building_the_request_holds_the_aggregate_once() -> None:
    """The request was built through five copies of the aggregate (the chunk list, the
    frame, the blob, the body, the message): the peak above the running sum was 4.0
    times the request (39.1 MB for 9.8 MB at d = 10^6; 3.9 MB for 1.0 MB here). Now
    the exact size is allocated once and each chunk written into it as it is packed:
    1.01 times at d = 10^6, 1.06 here."""
    d = 100_000
    server, _ = _summed(d)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        (out,) = server.close_phase()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    size = len(out.payload)
    assert peak <= 1.5 * size, f"peak {peak} bytes for a request of {size}"


def test_a_chunk_list_that_is_not_the_aggregate_is_never_sent() -> None:
    """The builder checks what it frames: a missing, extra or wrong-size chunk aborts
    (RoundAborted) instead of sending a request the key holder must refuse."""
    d = 2 * 4096
    server, _ = _summed(d)
    params, chunks = server.params, server._sum.to_chunks()
    assert len(chunks) >= 2
    assert decryption_request(params, d, 0.0, chunks)  # the right ones are taken
    for wrong in (chunks[:-1], [*chunks, chunks[0]], [chunks[0][:-1], *chunks[1:]]):
        with pytest.raises(RoundAborted, match="chunk"):
            decryption_request(params, d, 0.0, wrong)


def test_the_key_holder_noises_in_place_and_copies_the_sum_once() -> None:
    """The key holder held the exact sum, a whole vector of noise (with its Box-Muller
    temporaries), the noised sum and three copies of the reply: 10.9 MB above its
    baseline for a 2.4 MB reply at d = 3 * 10^5 (36.1 MB at 10^6). It now noises the
    sum in place, 2^16 coordinates at a time, and writes the reply once: 5.2 MB
    (17.1 MB at 10^6). The noise is still the policy's (the reply's std, and its
    spread)."""
    d = 300_000
    server, helper = _summed(d)
    (out,) = server.close_phase()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        answer = helper.handle(out.payload, round_number=1)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    reply = 8 * d
    assert len(answer) == 6 + 8 + reply
    assert peak <= 3 * reply, f"peak {peak} bytes for a reply of {reply}"
    assert server.handle(HELPER, answer) == []
    result = server.finish()
    assert result.report.noise_stddev == 0.125  # the server asked for more than the floor
    assert 0.12 < float(np.std(result.total - 0.5)) < 0.13  # 3 * 10^5 draws: within 4 %
