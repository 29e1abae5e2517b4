"""An honest CKKS server's requests to a key holder, for the key holder's own tests.

Import after ``pytest.importorskip("tenseal")``: the CKKS backend needs it."""

from __future__ import annotations

import numpy as np

from secagg.aggregation import HELPER, Announce, decode_spec
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession


def key_request(backend: CKKSBackend, clients: int, dimension: int, federation: str) -> bytes:
    """The key request that opens a round of ``federation`` ("": none named)."""
    server = backend.server(backend.plan(clients, dimension))
    if federation:
        server.bind_federation(federation)
    (request,) = server.start()
    return request.payload


def decryption_request(
    backend: CKKSBackend,
    helper: KeyHolderSession,
    number: int,
    *,
    clients: int,
    dimension: int,
    federation: str,
) -> bytes:
    """Round ``number`` of ``federation`` ("": none named) up to its decryption request:
    ``helper`` answers the key request, every client uploads 0.25s."""
    server = backend.server(backend.plan(clients, dimension))
    if federation:
        server.bind_federation(federation)
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=number))
    assert isinstance(announce, Announce)
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party in range(clients):
        upload = backend.client(spec, party).set_input(np.full(dimension, 0.25))[0]
        outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    return decrypt.payload
