"""Every session that reads another party's bytes is total (security review H1, L3).

Hypothesis feeds the server sessions of every backend, the clients' sessions and
the CKKS key holder random bytes and mutations of valid payloads: each either
accepts a payload or raises a :class:`~secagg.errors.SecAggError` subtype, and a
refused payload changes nothing the round depends on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.aggregation import HELPER, Announce, ToParty, get_backend
from secagg.errors import SecAggError

N, D = 4, 6
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, and valid bytes truncated, extended or with bits flipped."""

    def flip(data: bytes, spots: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for index, bit in spots:
            if out:
                out[index % len(out)] ^= 1 << bit
        return bytes(out)

    return st.one_of(
        st.binary(max_size=256),
        st.integers(0, max(0, len(valid) - 1)).map(lambda k: valid[:k]),
        st.binary(min_size=1, max_size=64).map(lambda tail: valid + tail),
        st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=6).map(
            lambda spots: flip(valid, spots)
        ),
        st.binary(min_size=4, max_size=4).map(lambda head: head + valid[4:]),
    )


def _server_with_first_payload(name: str) -> tuple[object, bytes]:
    """A started server session of ``name`` and one valid payload client 0 would send."""
    backend = get_backend(name)
    spec = backend.plan(N, D)
    server = backend.server(spec)
    events = server.start()
    client = backend.client(spec, 0)
    payloads = client.set_input(np.zeros(D))
    for event in events:
        if isinstance(event, ToParty) and event.party == 0:
            payloads = payloads + client.handle(event.payload)
    assert payloads, name
    return server, payloads[0]


def _fingerprint(server: object) -> tuple[object, ...]:
    return (server.phase, server.waiting_for, server.done)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["plain", "secagg", "secagg+"])
def test_server_sessions_refuse_any_bytes_without_changing_state(name: str) -> None:
    _, valid = _server_with_first_payload(name)

    @FUZZ
    @given(payload=_mutations(valid), party=st.sampled_from([0, 1, N, -1, HELPER]))
    def check(payload: bytes, party: int) -> None:
        server, _ = _server_with_first_payload(name)  # fresh: an accepted payload counts
        before = _fingerprint(server)
        try:
            server.handle(party, payload)  # type: ignore[attr-defined]
        except SecAggError:
            assert _fingerprint(server) == before

    check()


@pytest.mark.parametrize("name", ["secagg", "secagg+"])
def test_client_sessions_refuse_any_server_bytes(name: str) -> None:
    backend = get_backend(name)
    spec = backend.plan(N, D)
    server = backend.server(spec)
    first = next(e for e in server.start() if isinstance(e, ToParty) and e.party == 0)

    @FUZZ
    @given(payload=_mutations(first.payload))
    def check(payload: bytes) -> None:
        client = backend.client(spec, 0)
        client.set_input(np.zeros(D))
        try:
            client.handle(payload)
        except SecAggError:
            pass

    check()


def _helper_requests(key: Path) -> tuple[Callable[[], object], bytes, bytes]:
    """A key holder with its persistent key, a valid key request and a valid decryption
    request of the round."""
    backend = get_backend("ckks", max_clients=N)
    backend.make_helper_key(key)
    spec = backend.plan(N, D)
    server = backend.server(spec)
    (request,) = server.start()
    assert isinstance(request, ToParty) and request.party == HELPER
    helper = backend.helper({"key": str(key)})
    events = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    announce = next(e for e in events if isinstance(e, Announce))
    from secagg.aggregation import decode_spec

    announced = decode_spec(announce.spec)
    decrypt: bytes | None = None
    for party in range(N):
        (upload,) = backend.client(announced, party).set_input(np.full(D, 0.1))
        for event in server.handle(party, upload):
            if isinstance(event, ToParty) and event.party == HELPER:
                decrypt = event.payload
    assert decrypt is not None
    return (lambda: helper), request.payload, decrypt


def test_key_holder_refuses_any_request_bytes_and_spends_nothing(tmp_path: Path) -> None:
    """H3/L3: malformed requests never decrypt, never count, never crash the key holder."""
    get_helper, key_request, decrypt = _helper_requests(tmp_path / "holder.key")
    helper = get_helper()
    counted = helper.decryptions  # type: ignore[attr-defined]

    @FUZZ
    @given(payload=st.one_of(_mutations(key_request), _mutations(decrypt)))
    def check(payload: bytes) -> None:
        try:
            helper.handle(payload, round_number=1)  # type: ignore[attr-defined]
        except SecAggError:
            pass
        # a mutated key request for another design point is refused (the key is
        # pinned); a mutated decryption request may still be a valid one (a flipped
        # ciphertext bit), but round 1 is decrypted at most once, whatever the bytes
        assert helper.decryptions <= counted + 1  # type: ignore[attr-defined]

    check()
    spent = helper.decryptions - counted  # type: ignore[attr-defined]
    if spent:
        with pytest.raises(SecAggError):
            helper.handle(decrypt, round_number=1)  # type: ignore[attr-defined]
    helper.handle(decrypt, round_number=2)  # type: ignore[attr-defined]
    assert helper.decryptions == counted + spent + 1  # type: ignore[attr-defined]
