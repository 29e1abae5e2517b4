"""A refused request changes nothing of a persistent key holder: its memory and its files.

The house rule is that a malformed or out-of-phase message changes no state. The fuzz
tests of tests/aggregation/test_fuzz_sessions.py check the key holder's key, count and
rounds; a persistent key holder also keeps the round it opened, its record's federation,
whether its record went stale, and three files (the record, ``<state>.opened`` and the
lock), each of which a request could write before it is refused (a key request wrote
``.opened`` before the next checks once did, the first opening now creates the record).
Here hypothesis sends mutations of a valid key request and a valid decryption request,
under several round numbers, and every refusal must leave all of that byte for byte (no
refusal spends a decryption: a sum beyond the plausible range, refused after decrypting
until 2026-12-06, is now clamped and answered).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, decode_spec
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession
from secagg.errors import SecAggError

N, D = 3, 6
FED = "fed-a"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, and ``valid`` truncated, extended, with bits flipped or a new head."""

    def flip(data: bytes, spots: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for index, bit in spots:
            out[index % len(out)] ^= 1 << bit
        return bytes(out)

    return st.one_of(
        st.binary(max_size=128),
        st.integers(0, len(valid) - 1).map(lambda k: valid[:k]),
        st.binary(min_size=1, max_size=32).map(lambda tail: valid + tail),
        st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=4).map(
            lambda spots: flip(valid, spots)
        ),
        st.binary(min_size=6, max_size=6).map(lambda head: head + valid[6:]),
    )


def _holder_with_round_open(folder: Path) -> tuple[KeyHolderSession, bytes, bytes]:
    """A persistent key holder of FED with round 3 opened; a valid key request and the
    round's valid decryption request."""
    backend = CKKSBackend(max_clients=N)
    key = folder / "kh.key"
    backend.make_helper_key(key)
    helper = backend.helper({"key": str(key), "federation": FED})
    server = backend.server(backend.plan(N, D))
    server.bind_federation(FED)
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=3))
    assert isinstance(announce, Announce)
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party in range(N):
        outgoing = server.handle(party, backend.client(spec, party).set_input(np.full(D, 0.1))[0])
    return helper, request.payload, outgoing[0].payload


def _state(helper: KeyHolderSession, folder: Path) -> tuple[object, ...]:
    """Everything a later request's answer depends on, and every file beside the key: its
    bytes and its inode (an atomic rewrite of the same bytes is a new inode: a write)."""
    record = helper.record
    files = tuple(
        (p.name, p.read_bytes(), p.stat().st_ino) for p in sorted(folder.iterdir()) if p.is_file()
    )
    return (
        helper.fingerprint,
        helper.opened,
        record.federation,
        record.decryptions,
        tuple(record.rounds),
        record.stale is None,
        helper._joins,
        files,
    )


def test_a_refused_request_changes_neither_the_key_holder_nor_its_files(tmp_path: Path) -> None:
    helper, key_request, decrypt = _holder_with_round_open(tmp_path)
    seen = {"refused": 0, "answered": 0}

    @FUZZ
    @given(
        payload=st.one_of(_mutations(key_request), _mutations(decrypt)),
        number=st.sampled_from([0, 2, 3, 4, 2**40]),
    )
    def check(payload: bytes, number: int) -> None:
        before = _state(helper, tmp_path)
        try:
            helper.handle(payload, round_number=number)
        except SecAggError:
            seen["refused"] += 1
            assert _state(helper, tmp_path) == before, "a refused request changed state"
            return
        seen["answered"] += 1  # an accepted mutation: a valid request of its own

    check()
    assert seen["refused"] > 0


def test_the_opened_rounds_repeated_request_changes_nothing_either(tmp_path: Path) -> None:
    """Answered, not refused: the key request of the round already opened returns the
    same key and leaves every file as it was (no write: the disk-flood fix)."""
    helper, key_request, _ = _holder_with_round_open(tmp_path)
    before = _state(helper, tmp_path)
    for _ in range(5):
        helper.handle(key_request, round_number=3)
    assert _state(helper, tmp_path) == before
