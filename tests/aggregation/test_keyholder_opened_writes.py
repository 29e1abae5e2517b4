"""A key request writes the opened round to disk only when the round is new.

Every key request wrote ``<state>.opened`` (a durable atomic write: the file's fsync and
the folder's) before its key left, so a server (or anything that could reach the key
holder) repeating one key request, or alternating two round numbers, made the key holder
fsync twice per request without bound: 88 requests/s, 2.00 fsyncs each, on this VM. The
file exists so that a restarted key holder still decrypts the round it opened; the round
already on disk needs no second write, and rounds are opened in increasing order, so a
request for the round opened (at its length) writes nothing and one for an older round is
refused before any write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _keyholder_rounds import decryption_request

import secagg.aggregation.ckks as ckks
from secagg.aggregation import HELPER, ToParty
from secagg.aggregation.ckks import REFUSAL_REASONS, CKKSBackend, KeyHolderSession, opened_path
from secagg.aggregation.keyholder_policy import (
    KeyHolderRefusal,
    RoundAlreadyServed,
    RoundSuperseded,
)
from secagg.errors import WrongRound

N, D = 3, 40
FED = "fed-a"
REPEATS = 25


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _key_request(d: int = D) -> bytes:
    backend = _backend()
    server = backend.server(backend.plan(N, d))
    server.bind_federation(FED)
    (request,) = server.start()
    assert isinstance(request, ToParty) and request.party == HELPER
    return request.payload


def _holder(tmp_path: Path) -> KeyHolderSession:
    """A key holder with a persistent key (so a persistent record and ``.opened``)."""
    key = tmp_path / "kh.key"
    if not key.exists():
        _backend().make_helper_key(key)
    return _backend().helper({"key": str(key), "federation": FED})


def _decryption(helper: KeyHolderSession, number: int) -> bytes:
    """Round ``number`` of an honest server up to its decryption request."""
    return decryption_request(_backend(), helper, number, clients=N, dimension=D, federation=FED)


class _Writes:
    """Counts the opened-round writes and every fsync while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = 0
        self.fsyncs = 0
        write, fsync = ckks.write_json_atomically, os.fsync

        def counted_write(path: Path, data: object, **kwargs: object) -> None:
            if path.name.endswith(".opened"):
                self.opened += 1
            write(path, data, **kwargs)  # type: ignore[arg-type]

        def counted_fsync(fd: int) -> None:
            self.fsyncs += 1
            fsync(fd)

        monkeypatch.setattr(ckks, "write_json_atomically", counted_write)
        monkeypatch.setattr(os, "fsync", counted_fsync)


def _files(tmp_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file()}


def test_a_repeated_key_request_writes_the_opened_round_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same key request, REPEATS times: one write of ``.opened`` (two fsyncs: the
    file's and the folder's), then every repeat is answered with the same key and writes
    nothing. Before: REPEATS writes, 2 * REPEATS fsyncs."""
    helper = _holder(tmp_path)
    helper.handle(_key_request(), round_number=1)  # the first round also creates the record
    writes = _Writes(monkeypatch)
    request = _key_request()
    answers = {helper.handle(request, round_number=4) for _ in range(REPEATS)}
    assert len(answers) == 1  # the same key every time
    assert (writes.opened, writes.fsyncs) == (1, 2)
    assert helper.opened == (4, D)
    assert json.loads(opened_path(tmp_path / "kh.key.state").read_text())["round"] == 4


def test_a_key_request_for_an_older_round_than_the_one_opened_is_refused_before_any_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server alternating two rounds made every request a new opening (a write each).
    Now a round below the one opened is refused (RoundSuperseded, a WrongRound, reason
    "key holder policy" on the wire), nothing written or changed; the opened round stays
    decryptable, and a later round is a new opening (one write)."""
    helper = _holder(tmp_path)
    payload = _decryption(helper, 6)  # round 6 opened: one write
    writes = _Writes(monkeypatch)
    before = (_files(tmp_path), helper.opened, helper.decryptions)
    for number in [5, 6, 5, 6, 0, 6] * 4:
        if number == 6:
            helper.handle(_key_request(), round_number=6)
            continue
        with pytest.raises(RoundSuperseded) as refused:
            helper.handle(_key_request(), round_number=number)
        assert isinstance(refused.value, WrongRound | KeyHolderRefusal)
        assert str(refused.value) == (
            f"a key request of round {number} refused: this key holder opened round 6 "
            "already and opens rounds in increasing order"
        )
    assert (_files(tmp_path), helper.opened, helper.decryptions) == before
    assert (writes.opened, writes.fsyncs) == (0, 0)
    assert ckks.refusal_reply(RoundSuperseded("x"))[6] == 5
    assert REFUSAL_REASONS[5] == "key holder policy"
    helper.handle(payload, round_number=6)  # the opened round is still decrypted
    assert helper.decryptions == 1
    with pytest.raises(RoundAlreadyServed):  # and then never opened again
        helper.handle(_key_request(), round_number=6)
    helper.handle(_key_request(), round_number=9)
    assert helper.opened == (9, D) and writes.opened == 1


def test_a_restarted_key_holder_writes_nothing_for_the_round_it_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round restored from ``.opened`` is on disk already: the server's repeated key
    request after the restart writes nothing, refuses an older one, and the round is
    decrypted once."""
    payload = _decryption(_holder(tmp_path), 3)
    restarted = _holder(tmp_path)
    assert restarted.opened == (3, D)
    writes = _Writes(monkeypatch)
    restarted.handle(_key_request(), round_number=3)
    with pytest.raises(RoundSuperseded):
        restarted.handle(_key_request(), round_number=2)
    assert writes.opened == 0
    restarted.handle(payload, round_number=3)
    assert restarted.decryptions == 1 and restarted.record.rounds == [3]


def test_the_same_round_at_another_length_is_a_new_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a dimension of its own (the runtime always binds one), the same round
    number asked at another length is another opening and is written (its length is what
    a restart must decrypt); only the round and length already on disk write nothing."""
    helper = _holder(tmp_path)
    assert helper.policy.dimension is None
    writes = _Writes(monkeypatch)
    helper.handle(_key_request(), round_number=1)
    helper.handle(_key_request(D + 1), round_number=1)
    helper.handle(_key_request(D + 1), round_number=1)
    assert writes.opened == 2 and helper.opened == (1, D + 1)
    assert json.loads(opened_path(tmp_path / "kh.key.state").read_text())["dimension"] == D + 1
