"""The sans-I/O round sessions of every backend, driven as production drives them.

Random inputs, random dropout schedules (each client goes silent after a random
number of its payloads) and random malformed payloads: the sum is exact for the
clients the report names, or the round aborts; a refused payload changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from _harness import fingerprint
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secagg.aggregation import (
    BACKENDS,
    HELPER,
    Announce,
    ToParty,
    decode_spec,
    get_backend,
    run_local_round,
)
from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError, RoundAborted, SecAggError

#: payloads a client sends in a round of each backend when nobody drops
MESSAGES = {"plain": 1, "ckks": 1, "secagg": 4, "secagg+": 4}


def _updates(n: int, d: int, seed: bytes, bound: float = 1.0) -> np.ndarray:
    return (KeyedStream(seed).uniform(n * d).reshape(n, d) * 2 - 1) * bound


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    backend=st.sampled_from(("plain", "secagg", "secagg+")),
    n=st.integers(3, 12),
    d=st.integers(1, 64),
    seed=st.binary(min_size=16, max_size=16),
    data=st.data(),
)
def test_random_dropout_schedules_give_the_exact_sum_of_who_is_reported_or_abort(
    backend: str, n: int, d: int, seed: bytes, data: st.DataObject
) -> None:
    updates = _updates(n, d, seed)
    schedule = data.draw(
        st.dictionaries(st.integers(0, n - 1), st.integers(0, MESSAGES[backend]), max_size=n)
    )
    try:
        total, report = run_local_round(get_backend(backend), updates, vanish=schedule)
    except RoundAborted:
        return  # below the threshold: no sum at all, never a wrong one
    assert set(report.contributed) | set(report.dropped) == set(range(n))
    for party, sent in schedule.items():
        if sent == 0:  # never said anything: cannot be in the sum
            assert party in report.dropped
    expected = updates[list(report.contributed)].sum(axis=0)
    assert np.max(np.abs(total - expected)) <= report.error_bound
    # a client silent only at unmasking is still in the sum: phases count silences
    assert sum(report.dropouts.values()) >= len(report.dropped)


def test_ckks_sessions_with_a_dropout_and_the_key_holder_in_memory() -> None:
    updates = _updates(5, 300, b"c" * 16)
    total, report = run_local_round(get_backend("ckks"), updates, vanish={3: 0})
    assert report.contributed == (0, 1, 2, 4) and report.dropouts == {"contribution": 1}
    assert np.max(np.abs(total - updates[[0, 1, 2, 4]].sum(axis=0))) <= report.error_bound


def test_ckks_key_holder_adds_the_requested_noise_and_says_so() -> None:
    updates = np.zeros((4, 2000))
    total, report = run_local_round(get_backend("ckks"), updates, noise_stddev=3.0)
    assert report.noise_stddev == 3.0
    assert 2.7 < float(np.std(total)) < 3.3  # 2000 draws: the std is within 10 %


def _started(backend: str, n: int = 4, d: int = 8):
    """A server session after its start, with its clients' first payloads."""
    chosen = get_backend(backend)
    server = chosen.server(chosen.plan(n, d))
    helper = chosen.helper()
    outgoing = server.start()
    while not any(isinstance(e, Announce) for e in outgoing):  # CKKS: fetch the key first
        (event,) = outgoing
        assert isinstance(event, ToParty) and event.party == HELPER and helper is not None
        outgoing = server.handle(HELPER, helper.handle(event.payload, round_number=1))
    spec = decode_spec(next(e.spec for e in outgoing if isinstance(e, Announce)))
    clients = {p: chosen.client(spec, p) for p in range(n)}
    first: dict[int, bytes] = {}
    for party, client in clients.items():
        sent = client.set_input(np.full(d, 0.1))
        for event in outgoing:
            if isinstance(event, ToParty) and event.party == party:
                sent = sent + client.handle(event.payload)
        first[party] = sent[0]
    return server, first


@pytest.mark.parametrize("backend", BACKENDS)
def test_malformed_foreign_and_duplicate_payloads_are_refused_and_change_nothing(
    backend: str,
) -> None:
    server, first = _started(backend)
    good = first[0]
    bad = [
        good[:-3],  # truncated
        good[:6] + bytes([good[6] ^ 0xFF]) + good[7:],  # header garbled
        b"",
        b"\x00" * 64,
    ]
    cases = [(0, payload) for payload in bad] + [(9, good)]  # a party outside the round
    if backend != "ckks":  # CKKS ciphertexts name no sender: the transport authenticates
        cases.append((1, good))  # someone else's payload
    for party, payload in cases:
        before = fingerprint(server)
        with pytest.raises(SecAggError):
            server.handle(party, payload)
        assert fingerprint(server) == before, (party, payload[:16])
    server.handle(0, good)
    before = fingerprint(server)
    with pytest.raises(SecAggError):
        server.handle(0, good)  # a second contribution
    assert fingerprint(server) == before


@settings(max_examples=60, deadline=None)
@given(backend=st.sampled_from(BACKENDS), noise=st.binary(max_size=200), cut=st.integers(0, 400))
@example(backend="plain", noise=bytes(8), cut=73)  # a valid contribution, last float rewritten
def test_random_bytes_are_refused_with_a_typed_error(backend: str, noise: bytes, cut: int) -> None:
    server, first = _started(backend)
    before = fingerprint(server)
    for payload in (noise, first[0][:cut] + noise):
        try:
            server.handle(0, payload)
        except SecAggError:
            assert fingerprint(server) == before
        else:  # only a well-formed payload may be taken: the round's size and header
            # (a plain contribution whose last float was rewritten is still a valid one)
            assert len(payload) == len(first[0]) and payload[:8] == first[0][:8]
            return


def test_a_client_refuses_an_update_beyond_the_round_bound() -> None:
    for backend in BACKENDS:
        chosen = get_backend(backend, value_bound=0.5)
        with pytest.raises(ConfigurationError, match="value bound"):
            run_local_round(chosen, np.full((4, 10), 0.6))


def test_a_backend_refuses_another_backends_spec() -> None:
    spec = get_backend("plain").plan(3, 4)
    with pytest.raises(ConfigurationError):
        get_backend("secagg+").server(spec)
    with pytest.raises(ConfigurationError):
        get_backend("secagg").client(get_backend("secagg+").plan(3, 4), 0)


# --- arguments of the wrong type (hostile-user audit 2026-12-04) ----------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("payload", [None, "text", 5])
def test_a_payload_that_is_not_bytes_is_refused_as_malformed(backend: str, payload: object) -> None:
    # before: bytes(None) and bytes("text") raised TypeError, and bytes(5) read five zeros
    chosen = get_backend(backend)
    server = chosen.server(chosen.plan(3, 2))
    server.start()
    party = HELPER if backend == "ckks" else 0
    with pytest.raises(SecAggError):
        server.handle(party, payload)  # type: ignore[arg-type]
    if backend in ("secagg", "secagg+"):
        with pytest.raises(SecAggError):
            chosen.client(chosen.plan(3, 2), 0).handle(payload)  # type: ignore[arg-type]


@pytest.mark.parametrize("party", ["0", None, 1.5])
def test_a_plain_contribution_from_a_party_that_is_not_an_index_is_refused(party: object) -> None:
    # before: "0" and None raised TypeError in the range check
    chosen = get_backend("plain")
    spec = chosen.plan(3, 2)
    server = chosen.server(spec)
    server.start()
    payload = chosen.client(spec, 0).set_input(np.zeros(2))[0]
    with pytest.raises(SecAggError):
        server.handle(party, payload)  # type: ignore[arg-type]
    assert server.waiting_for == frozenset({0, 1, 2})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("n", "d"), [("4", 3), (4, 3.5), (True, 3), (4, None)])
def test_plan_refuses_a_round_size_that_is_not_integers(backend: str, n: object, d: object) -> None:
    # before: "4" raised TypeError, and d = 3.5 or n = True were planned
    with pytest.raises(ConfigurationError):
        get_backend(backend).plan(n, d)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backend_given_no_spec_says_so(backend: str) -> None:
    # before: AttributeError: 'NoneType' object has no attribute 'name'
    with pytest.raises(ConfigurationError, match="spec"):
        get_backend(backend).server(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["plain", "secagg", "secagg+"])
@pytest.mark.parametrize("party", [1.5, 99, -1, True])
def test_a_client_session_for_a_party_outside_the_round_is_refused(
    backend: str, party: object
) -> None:
    # before: a plain client took 1.5, and a masking client took 99 and -1 (a party that
    # no message of the round would ever address)
    chosen = get_backend(backend)
    with pytest.raises(SecAggError):
        chosen.client(chosen.plan(3, 2), party)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["plain", "secagg", "secagg+"])
@pytest.mark.parametrize("reason", [None, b"deadline", 7])
def test_a_session_abort_without_a_text_reason_is_refused_and_changes_nothing(
    backend: str, reason: object
) -> None:
    """``session.abort(None)`` on a masking session aborted the protocol round and then
    raised AttributeError while encoding the notices (the round lost, no client told);
    a plain one stored the None as its reason. Both now refuse, unchanged."""
    chosen = get_backend(backend)
    session = chosen.server(chosen.plan(4, 2))
    session.start()
    before = fingerprint(session)
    with pytest.raises(ConfigurationError, match="abort reason is text"):
        session.abort(reason)  # type: ignore[arg-type]
    assert fingerprint(session) == before
    session.abort("deadline")
    assert session.done


@pytest.mark.parametrize("backend", ["plain", "secagg", "secagg+"])
def test_an_aborted_session_awaits_nobody(backend: str) -> None:
    """A masking session aborted mid-phase still listed that phase's stragglers in
    ``waiting_for`` (plain said nobody): a finished round awaits nobody, whatever the
    backend."""
    chosen = get_backend(backend)
    session = chosen.server(chosen.plan(4, 2))
    session.start()
    assert session.waiting_for  # everyone, before anyone answered
    session.abort("deadline")
    assert session.done and session.waiting_for == frozenset()
