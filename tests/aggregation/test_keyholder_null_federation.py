"""A record of no federation (``"federation": null``) under a key holder given one.

A key holder run without a federation (no ``--config``: in-memory runs, a policy file
alone) writes its record naming none; started again with the federation's name, it
refused to start ("records the rounds of no federation ... or serve the federation the
record names", a federation the record does not name). Now a record of no federation that
served nothing is adopted (rewritten naming the federation, under its lock, logged), and
one that served decryptions under no federation is refused with one line saying how many,
why, and what to do.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _keyholder_rounds import decryption_request

from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, opened_path
from secagg.aggregation.keyholder_policy import KeyHolderPolicy, lock_path
from secagg.errors import ConfigurationError

N, D = 3, 40
FED = "fed-a"


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _start(tmp_path: Path, federation: str | None) -> KeyHolderSession:
    """A key holder over the key ``tmp_path/kh.key`` and its record ``kh.key.state``."""
    key = tmp_path / "kh.key"
    if not key.exists():
        _backend().make_helper_key(key)
    settings: dict[str, object] = {"key": str(key)}
    if federation is not None:
        settings["federation"] = federation
    return _backend().helper(settings)


def _decryption(helper: KeyHolderSession, number: int, federation: str) -> bytes:
    """``federation``'s round ``number`` ("": none) up to its decryption request."""
    return decryption_request(
        _backend(), helper, number, clients=N, dimension=D, federation=federation
    )


def test_a_record_of_no_federation_that_served_nothing_is_adopted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Run without a federation, the key holder opened round 1 (its record made, naming
    none, nothing decrypted). Started with the federation: the record is rewritten as the
    federation's (logged), the round opened under no federation is set aside (warned), and
    the federation's rounds are served. Before: it refused to start."""
    state = tmp_path / "kh.key.state"
    _decryption(_start(tmp_path, None), 1, "")
    assert json.loads(state.read_text())["federation"] is None
    assert json.loads(opened_path(state).read_text())["federation"] is None
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        helper = _start(tmp_path, FED)
    assert json.loads(state.read_text()) == {
        "version": 2,
        "federation": FED,
        "decryptions": 0,
        "rounds": [],
    }
    assert "(version 2, no federation) adopted: its 0 decryptions are federation" in caplog.text
    assert helper.opened is None and "set aside" in caplog.text
    helper.handle(_decryption(helper, 1, FED), round_number=1)
    assert helper.decryptions == 1
    assert _start(tmp_path, FED).record.rounds == [1]


def test_a_hand_written_empty_record_of_no_federation_is_adopted_too(tmp_path: Path) -> None:
    state = tmp_path / "kh.key.state"
    state.write_text(json.dumps({"version": 2, "federation": None, "decryptions": 0, "rounds": []}))
    helper = _start(tmp_path, FED)
    assert helper.record.federation == FED
    assert json.loads(state.read_text())["federation"] == FED


def test_a_record_of_no_federation_with_decryptions_refuses_to_start_in_one_line(
    tmp_path: Path,
) -> None:
    """Decryptions served to no federation cannot be told to be this federation's: the key
    holder refuses to start, saying how many, and what to do; the file is unchanged."""
    state = tmp_path / "kh.key.state"
    first = _start(tmp_path, None)
    first.handle(_decryption(first, 2, ""), round_number=2)
    before = state.read_bytes()
    with pytest.raises(ConfigurationError) as refused:
        _start(tmp_path, FED)
    assert str(refused.value) == (
        f"[key_holder] state: {state} records 1 decryption(s) served to no federation (last "
        "round 2), and this key holder serves federation 'fed-a'; refusing to start, since "
        "which federation's data those releases were of is not known (give this key holder "
        "its own state file, its max_decryptions lowered by those 1 if they were this "
        "federation's)"
    )
    assert state.read_bytes() == before
    # the way out it names: its own state file (nothing beside it yet) starts
    own = KeyHolderSession(KeyHolderPolicy(state_path=tmp_path / "fed-a.state", federation=FED))
    assert own.decryptions == 0


def test_the_other_pairings_are_as_before(tmp_path: Path) -> None:
    """A key holder of no federation keeps a record of none as it is (no rewrite, no
    lock taken); a record of a federation still stops a key holder of none, or of another,
    even with nothing served."""
    state = tmp_path / "none.state"
    state.write_text(json.dumps({"version": 2, "federation": None, "decryptions": 0, "rounds": []}))
    before = state.read_bytes()
    KeyHolderSession(KeyHolderPolicy(state_path=state))
    assert state.read_bytes() == before and not lock_path(state).exists()
    named = tmp_path / "a.state"
    named.write_text(json.dumps({"version": 2, "federation": FED, "decryptions": 0, "rounds": []}))
    for serves in (None, "fed-b"):
        with pytest.raises(ConfigurationError, match="records the rounds of federation 'fed-a'"):
            KeyHolderSession(KeyHolderPolicy(state_path=named, federation=serves))
