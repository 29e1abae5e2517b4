"""New rounds are opened at a bounded pace: a few beyond the last decryption, then one a
second (secagg.aggregation.keyholder_policy.OpeningAllowance).

Each new round is written to disk (``<state>.opened``: the file's fsync and the folder's)
before its key leaves, so that a restarted key holder still decrypts it. A server raising
the round number on every key request made every request a new round: the key holder
fsynced twice per request, at the server's pace, and the server got no decryption for it
(40 requests: 40 writes, 80 fsyncs). Now the first :data:`BURST` openings after a
decryption (or the start) are written, further ones are refused before any write
(``OpeningsOutpaceDecryptions``, a KeyHolderRefusal: "key holder policy" on the wire) until
one is due, one per :data:`INTERVAL` seconds, and a decryption makes all of them
available again. The clock is the test's own (no sleeps).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _keyholder_rounds import decryption_request, key_request

import secagg.aggregation.ckks as ckks
import secagg.aggregation.keyholder_policy as kp
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, refusal_reply
from secagg.aggregation.keyholder_policy import KeyHolderRefusal

N, D = 3, 40
FED = "fed-a"
#: the pace the key holder keeps (its module's figures; asserted below)
BURST, INTERVAL = 8, 1.0
REQUESTS = 40


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _holder(tmp_path: Path, clock: _Clock, monkeypatch: pytest.MonkeyPatch) -> KeyHolderSession:
    """A key holder with a persistent key (a record and ``.opened`` on disk), on ``clock``."""
    monkeypatch.setattr(kp, "monotonic", clock, raising=False)
    key = tmp_path / "kh.key"
    if not key.exists():
        _backend().make_helper_key(key)
    return _backend().helper({"key": str(key), "federation": FED})


def _open(helper: KeyHolderSession, number: int) -> bool:
    """Ask ``helper`` to open round ``number``; whether it did (a refusal of its pace:
    False; any other refusal fails the test)."""
    try:
        helper.handle(key_request(_backend(), N, D, FED), round_number=number)
    except KeyHolderRefusal as refused:
        assert type(refused).__name__ == "OpeningsOutpaceDecryptions", refused
        return False
    return True


def _decrypt(helper: KeyHolderSession, number: int) -> None:
    payload = decryption_request(_backend(), helper, number, clients=N, dimension=D, federation=FED)
    helper.handle(payload, round_number=number)


def _files(tmp_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file()}


def test_a_server_raising_the_round_number_gets_a_bounded_number_of_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS key requests, each for a new round, at one instant: BURST are written (two
    fsyncs each), the rest refused before any write. Before: 40 writes, 80 fsyncs."""
    clock = _Clock()
    helper = _holder(tmp_path, clock, monkeypatch)
    _decrypt(helper, 1)  # the record exists; a decryption: the openings are full
    writes = _Writes(monkeypatch)
    opened = [_open(helper, number) for number in range(2, 2 + REQUESTS)]
    assert (writes.opened, writes.fsyncs) == (BURST, 2 * BURST)
    assert opened == [True] * BURST + [False] * (REQUESTS - BURST)
    assert helper.opened == (1 + BURST, D)  # the last round opened stays open


def test_a_refused_opening_changes_nothing_and_the_opened_round_is_still_decrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the pace: nothing written, the round opened unchanged; the server's resent
    request for that round is still answered (no write needed), and it is decrypted."""
    clock = _Clock()
    helper = _holder(tmp_path, clock, monkeypatch)
    for number in range(1, BURST + 1):
        assert _open(helper, number)
    payload = decryption_request(_backend(), helper, BURST, clients=N, dimension=D, federation=FED)
    before = (_files(tmp_path), helper.opened, helper.decryptions)
    for number in range(BURST + 1, BURST + 6):
        assert not _open(helper, number)
    assert (_files(tmp_path), helper.opened, helper.decryptions) == before
    helper.handle(key_request(_backend(), N, D, FED), round_number=BURST)  # resent: answered
    helper.handle(payload, round_number=BURST)
    assert helper.decryptions == 1 and helper.record.rounds == [BURST]


def test_openings_come_back_one_per_interval_and_all_after_a_decryption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time earns one opening per INTERVAL (never more than BURST, however long the
    wait); a decryption earns them all back at once."""
    clock = _Clock()
    helper = _holder(tmp_path, clock, monkeypatch)
    number = 0

    def run() -> int:
        """Open new rounds until one is refused (at most 2 * BURST); how many were opened."""
        nonlocal number
        for count in range(2 * BURST):
            number += 1
            if not _open(helper, number):
                number -= 1  # refused: that round number was never opened
                return count
        return 2 * BURST

    assert run() == BURST
    clock.now += 0.5 * INTERVAL
    assert run() == 0
    clock.now += 0.5 * INTERVAL
    assert run() == 1
    clock.now += 3 * INTERVAL
    assert run() == 3
    clock.now += 100 * INTERVAL
    assert run() == BURST  # capped: a long quiet spell is no licence for a flood


def test_a_decryption_makes_every_opening_available_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    helper = _holder(tmp_path, clock, monkeypatch)
    for number in range(1, BURST):
        assert _open(helper, number)
    _decrypt(helper, BURST)  # the BURST-th opening, then its decryption
    assert helper.decryptions == 1
    assert all(_open(helper, n) for n in range(BURST + 1, 2 * BURST + 1))
    assert not _open(helper, 2 * BURST + 1)


def test_the_refusal_is_a_key_holder_policy_refusal_in_one_log_line_per_streak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server hears "key holder policy" (reason 5) and when the next opening is due,
    no local path; the key holder's log gets one line per streak of refusals, not one per
    request (the service's refusal log counts the rest)."""
    assert (kp.OPENINGS_WITHOUT_DECRYPTION, kp.OPENING_INTERVAL) == (BURST, INTERVAL)
    clock = _Clock()
    helper = _holder(tmp_path, clock, monkeypatch)
    for number in range(1, BURST + 1):
        assert _open(helper, number)
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        with pytest.raises(kp.OpeningsOutpaceDecryptions) as refused:
            helper.handle(key_request(_backend(), N, D, FED), round_number=BURST + 1)
        for number in range(BURST + 2, BURST + 30):
            assert not _open(helper, number)
    text = str(refused.value)
    assert text == (
        f"round {BURST + 1} not opened: the key holder opens {BURST} rounds beyond its last "
        "decryption, then one every 1 s (the next in 1.0 s)"
    )
    assert str(tmp_path) not in text and len(text.encode()) <= ckks.MAX_REFUSAL_TEXT
    assert refusal_reply(refused.value)[6] == 5 and ckks.REFUSAL_REASONS[5] == "key holder policy"
    paced = [r for r in caplog.records if "faster than decryptions" in r.message]
    assert len(paced) == 1
    clock.now += INTERVAL
    assert _open(helper, BURST + 30)  # a streak ends with an opening
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        assert not _open(helper, BURST + 31)
    paced = [r for r in caplog.records if "faster than decryptions" in r.message]
    assert len(paced) == 2


def test_a_key_holder_that_writes_nothing_is_not_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    """In memory (no key file, no record on disk) an opening costs no write: the pace
    does not apply."""
    clock = _Clock()
    monkeypatch.setattr(kp, "monotonic", clock, raising=False)
    helper = _backend().helper(None)
    assert all(_open(helper, number) for number in range(1, 3 * BURST))
