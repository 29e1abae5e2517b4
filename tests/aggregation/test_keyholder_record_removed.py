"""A key holder whose record was removed refuses to start afresh.

The record (``<key>.state``) is what keeps each round decrypted once and the lifetime
count (``max_decryptions``, the bound on the DP releases of one federation's data) across
restarts. A missing record was read as "nothing served yet", so deleting it (an
operator's clean-up, or anyone with write access to the folder but not the key) and
restarting reset the count: a key holder capped at one decryption decrypted another
round, and a round already decrypted could be opened and decrypted again. Now the record
is created when the first round is opened (before ``<state>.opened``), and a record
missing beside ``<state>.opened`` or ``<state>.lock`` stops the key holder at start with
one line naming the file and what to do; a first start (no file at all) still works.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tenseal")

from _keyholder_rounds import decryption_request, key_request

import secagg.aggregation.keyholder_policy as kp
from secagg.aggregation import HELPER, decode_spec
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, opened_path
from secagg.aggregation.keyholder_policy import (
    DecryptionCapReached,
    KeyHolderPolicy,
    KeyHolderRefusal,
    lock_path,
)
from secagg.errors import ConfigurationError

N, D = 3, 40
FED = "fed-a"


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _settings(tmp_path: Path, **extra: object) -> dict[str, object]:
    key = tmp_path / "kh.key"
    if not key.exists():
        _backend().make_helper_key(key)
    return {"key": str(key), "federation": FED, **extra}


def _start(tmp_path: Path, **extra: object) -> KeyHolderSession:
    """A key holder process over ``tmp_path/kh.key`` and its record ``kh.key.state``."""
    return _backend().helper(_settings(tmp_path, **extra))


def _key_request() -> bytes:
    return key_request(_backend(), N, D, FED)


def _decryption(helper: KeyHolderSession, number: int) -> bytes:
    """Round ``number`` of an honest server up to its decryption request."""
    return decryption_request(_backend(), helper, number, clients=N, dimension=D, federation=FED)


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("left", ["both", "opened", "lock"])
def test_a_removed_record_stops_the_key_holder_instead_of_resetting_its_cap(
    tmp_path: Path, left: str
) -> None:
    """A key holder capped at one decryption decrypts round 1; its record is deleted and
    it is restarted. Before, it started afresh (count 0) and decrypted round 2 past its
    cap; now it refuses to start, in one line naming the file, what is beside it and what
    to do, and the refused start changes no file."""
    state = tmp_path / "kh.key.state"
    first = _start(tmp_path, max_decryptions=1)
    first.handle(_decryption(first, 1), round_number=1)
    with pytest.raises(DecryptionCapReached):
        first.handle(_key_request(), round_number=2)
    state.unlink()
    if left == "opened":
        lock_path(state).unlink()
    elif left == "lock":
        opened_path(state).unlink()
    before = _listing(tmp_path)
    with pytest.raises(ConfigurationError) as refused:
        _start(tmp_path, max_decryptions=1)
    said = str(refused.value)
    names = {
        "both": "kh.key.state.opened and kh.key.state.lock",
        "opened": "kh.key.state.opened",
        "lock": "kh.key.state.lock",
    }[left]
    assert said == (
        f"[key_holder] state: {state} is missing, but {names} beside it show that a key "
        "holder opened or decrypted rounds over it; refusing to start afresh, which would "
        "forget the rounds it decrypted and its count (restore kh.key.state from a backup; "
        "only if no round was ever decrypted under it, remove those files to start afresh)"
    )
    assert "\n" not in said
    assert _listing(tmp_path) == before


def test_a_record_removed_mid_round_is_refused_and_restoring_it_resumes(
    tmp_path: Path,
) -> None:
    """The record is created when the first round is opened, so a restart mid-round finds
    it; removed, the restart is refused; put back, the opened round is decrypted once."""
    state = tmp_path / "kh.key.state"
    first = _start(tmp_path)
    payload = _decryption(first, 5)
    assert json.loads(state.read_text()) == {
        "version": 2,
        "federation": FED,
        "decryptions": 0,
        "rounds": [],
    }
    kept = state.read_bytes()
    state.unlink()
    with pytest.raises(ConfigurationError, match=r"kh\.key\.state is missing, but"):
        _start(tmp_path)
    state.write_bytes(kept)  # restored from a backup
    restarted = _start(tmp_path)
    assert restarted.opened == (5, D)
    restarted.handle(payload, round_number=5)
    assert restarted.decryptions == 1 and restarted.record.rounds == [5]


def test_a_first_start_with_no_files_still_starts_and_removing_them_all_starts_afresh(
    tmp_path: Path,
) -> None:
    """No record, no ``.opened``, no lock: a first start, as before. The refusal's remedy
    (remove the files beside it) is a fresh start, the operator's explicit choice."""
    helper = _start(tmp_path)
    assert helper.decryptions == 0 and helper.opened is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kh.key"]  # a start writes nothing
    helper.handle(_decryption(helper, 1), round_number=1)
    state = tmp_path / "kh.key.state"
    for path in (state, opened_path(state), lock_path(state)):
        path.unlink()
    fresh = _start(tmp_path)
    assert fresh.decryptions == 0 and fresh.record.rounds == []


def test_a_record_with_an_in_memory_key_is_guarded_by_its_lock(tmp_path: Path) -> None:
    """A key holder with a state file and a key made per process writes no ``.opened``;
    the lock its first decryption took is then the evidence of a removed record."""
    state = tmp_path / "kh.state"
    helper = KeyHolderSession(KeyHolderPolicy(state_path=state, max_decryptions=1))
    helper.handle(_decryption_in_memory(helper, 1), round_number=1)
    assert not opened_path(state).exists() and lock_path(state).exists()
    state.unlink()
    with pytest.raises(ConfigurationError, match=r"missing, but kh\.state\.lock beside it"):
        KeyHolderSession(KeyHolderPolicy(state_path=state, max_decryptions=1))


def _decryption_in_memory(helper: KeyHolderSession, number: int) -> bytes:
    """Round ``number`` of an in-memory server (no federation) up to its decryption."""
    backend = CKKSBackend()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=number))
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party in range(N):
        outgoing = server.handle(party, backend.client(spec, party).set_input(np.full(D, 0.25))[0])
    return outgoing[0].payload


def test_a_record_that_cannot_be_created_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating the record at the first opening can fail (a full disk): the key request is
    refused (typed, no local path on the wire), no ``.opened`` is written, nothing is
    opened, and the next request tries again."""
    helper = _start(tmp_path)
    create = kp.create_json_atomically  # the record is made without a lock (durable)

    def full(path: Path, data: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kp, "create_json_atomically", full)
    with pytest.raises(KeyHolderRefusal) as refused:
        helper.handle(_key_request(), round_number=1)
    assert str(refused.value) == (
        "round 1 not opened: the key holder cannot create its state file (No space left on device)"
    )
    assert str(tmp_path) not in str(refused.value)
    assert helper.opened is None
    assert not opened_path(tmp_path / "kh.key.state").exists()
    monkeypatch.setattr(kp, "create_json_atomically", create)
    helper.handle(_key_request(), round_number=1)
    assert helper.opened == (1, D) and (tmp_path / "kh.key.state").exists()


def test_secagg_keyholder_says_the_removed_record_in_one_line(tmp_path: Path) -> None:
    """The command refuses before it dials, exit status 2, one line naming the file and
    what to do (no traceback)."""
    from click.testing import CliRunner

    from secagg.apps.cli import main

    policy = tmp_path / "kh.toml"
    policy.write_text('[key_holder]\nstate = "kh.state"\n')
    (tmp_path / "kh.state.lock").touch()  # a decryption's lock; the record itself removed
    common = ["keyholder", "--server", "127.0.0.1:50999", "--name", "kh", "--certs", "x"]
    result = CliRunner().invoke(main, [*common, "--backend", "ckks", "--policy", str(policy)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    # the policy file is named (since 2026-12-07: a mistake in a file names the file)
    assert lines[0].startswith(f"secagg keyholder: kh: --policy {policy}: "), lines[0]
    assert "[key_holder] state: " in lines[0]
    assert f"{tmp_path / 'kh.state'} is missing, but kh.state.lock beside it" in lines[0]
    assert "restore kh.state from a backup" in lines[0]
