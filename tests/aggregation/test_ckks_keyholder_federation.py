"""The CKKS key holder serves one federation: its requests name it, its record records it.

A key request and a decryption request carried the round number only, so the key holder
of federation B answered federation A's round 5 as its own (a server splicing A's
aggregate into B's decryption request, or one key serving two federations), and its
record counted the rounds of both in one sequence. Now both requests name the federation
(helper version 4), a request of another one is refused before any work (code 10, the
state unchanged), the record and the ``.opened`` file name the federation (version 2),
and a version-1 record is read and rewritten as the key holder's federation's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, ToParty, decode_spec
from secagg.aggregation.ckks import (
    REFUSAL_REASONS,
    CKKSBackend,
    CKKSServer,
    KeyHolderSession,
    federation_field,
    opened_path,
    refusal_reply,
)
from secagg.aggregation.keyholder_policy import (
    KeyHolderPolicy,
    RoundAlreadyServed,
    StateChanged,
    WrongDimension,
    WrongFederation,
)
from secagg.errors import (
    ConfigurationError,
    MalformedMessage,
    RoundAborted,
    UnexpectedMessage,
)

N, D = 3, 40
A, B = "fed-a", "fed-b"


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _server(federation: str) -> CKKSServer:
    """A server's round of ``federation`` ("": none, in memory)."""
    backend = _backend()
    server = backend.server(backend.plan(N, D))
    if federation:
        server.bind_federation(federation)
    return server


def _key_request(federation: str) -> bytes:
    (request,) = _server(federation).start()
    assert isinstance(request, ToParty) and request.party == HELPER
    return request.payload


def _decryption(helper: KeyHolderSession, federation: str, number: int) -> bytes:
    """``federation``'s round ``number`` up to its decryption request (its key request
    answered by ``helper``)."""
    backend = _backend()
    server = _server(federation)
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=number))
    assert isinstance(announce, Announce)
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party in range(N):
        outgoing = server.handle(party, backend.client(spec, party).set_input(np.full(D, 0.25))[0])
    (decrypt,) = outgoing
    assert isinstance(decrypt, ToParty) and decrypt.party == HELPER
    return decrypt.payload


def _holder(tmp_path: Path, federation: str | None, state: str = "kh.state") -> KeyHolderSession:
    """A key holder with the persistent key ``tmp_path/kh.key`` (one key: the one a key
    holder serving two federations would use) and its record ``state``."""
    key = tmp_path / "kh.key"
    if not key.exists():
        _backend().make_helper_key(key)
    settings = {"key": str(key), "state": str(tmp_path / state)}
    if federation is not None:
        settings["federation"] = federation
    return _backend().helper(settings)


def _state(helper: KeyHolderSession) -> tuple[object, ...]:
    """Everything a refusal must leave as it was: the record, the opened round, the files."""
    state = helper.policy.state_path
    assert state is not None
    files = tuple(p.read_bytes() if p.exists() else None for p in (state, opened_path(state)))
    return (helper.decryptions, tuple(helper.record.rounds), helper.opened, files)


# --- item 1: every request names the federation, another's is refused ----------------


def test_a_splice_of_federation_a_into_the_key_holder_of_b_is_refused_state_unchanged(
    tmp_path: Path,
) -> None:
    """Federation A's round 5 aggregate (encrypted under the same key: a key serving two
    federations) sent to B's key holder, whose round 5 is open, was decrypted as B's round
    5. Now it is refused (WrongFederation, reason code 10, both names in the text the
    server hears, no local path), B's record, opened round and files unchanged, and B's
    own round 5 is still decrypted once."""
    of_a = _holder(tmp_path, A, state="a.state")
    of_b = _holder(tmp_path, B, state="b.state")
    spliced = _decryption(of_a, A, 5)  # A's aggregate, in A's request
    own = _decryption(of_b, B, 5)  # B's round 5 is open at B
    before = _state(of_b)
    with pytest.raises(WrongFederation) as refused:
        of_b.handle(spliced, round_number=5)
    said = str(refused.value)
    assert said == (
        "a decryption of round 5 for federation 'fed-a' refused: this key holder serves "
        "federation 'fed-b' only (its [federation] name)"
    )
    assert str(tmp_path) not in said
    assert _state(of_b) == before
    reply = refusal_reply(refused.value)
    assert reply[6] == 10 and REFUSAL_REASONS[10] == "wrong federation"
    # the server hears the reason and aborts at once
    server = _server(A)
    server._phase = "decrypt"  # a server of A awaiting its decryption
    assert server.handle(HELPER, reply) == [] and server.done
    with pytest.raises(RoundAborted, match=r"\(wrong federation\): a decryption of round 5"):
        server.finish()
    of_b.handle(own, round_number=5)
    assert of_b.record.rounds == [5] and of_b.decryptions == 1
    assert of_a.decryptions == 0  # A's round 5 was spent nowhere


@pytest.mark.parametrize(
    ("serves", "named", "says"),
    [
        (B, A, "for federation 'fed-a' refused: this key holder serves federation 'fed-b'"),
        (B, "", "for no federation refused: this key holder serves federation 'fed-b'"),
        (None, A, "for federation 'fed-a' refused: this key holder serves no federation"),
    ],
)
def test_a_key_request_of_another_federation_opens_nothing(
    tmp_path: Path, serves: str | None, named: str, says: str
) -> None:
    """The key request names the round's federation; one of another (or none to a key
    holder of one, or one to a key holder of none) is refused before any key work:
    nothing opened, made, recorded or written."""
    helper = KeyHolderSession(KeyHolderPolicy(state_path=tmp_path / "kh.state", federation=serves))
    before = (helper.fingerprint, *_state(helper))
    with pytest.raises(WrongFederation, match=f"^a key request of round 2 {says}"):
        helper.handle(_key_request(named), round_number=2)
    assert (helper.fingerprint, *_state(helper)) == before
    helper.handle(_key_request(serves or ""), round_number=2)  # its own is answered
    assert helper.opened == (2, D)


def test_a_decryption_request_of_another_federation_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    """The name is read in place from the end of the request; a request whose aggregate
    is B's but whose name is rewritten to A (or removed, or no federation's name) is
    refused with nothing spent."""
    helper = _holder(tmp_path, B)
    honest = _decryption(helper, B, 1)
    assert honest.endswith(federation_field(B))
    body = honest[: -len(federation_field(B))]
    before = _state(helper)
    with pytest.raises(WrongFederation, match="for federation 'fed-a' refused"):
        helper.handle(body + federation_field(A), round_number=1)
    for malformed in (body, body + b"\x06fed-b", body + b"\x03a b", body + b"\x41" + b"a" * 65):
        with pytest.raises(MalformedMessage):
            helper.handle(malformed, round_number=1)
    assert _state(helper) == before
    helper.handle(honest, round_number=1)
    assert helper.decryptions == 1


def test_a_server_names_only_a_federations_name_and_before_its_round_starts() -> None:
    server = _server("")
    for bad in ("a b", "x" * 65, "-lead", "é"):
        with pytest.raises(ConfigurationError, match="a federation's name is"):
            server.bind_federation(bad)
    assert server.federation == ""
    server.start()
    with pytest.raises(UnexpectedMessage, match="before it starts"):
        server.bind_federation(A)


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, 7, True])
def test_a_key_holder_federation_must_be_a_federations_name(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] federation: must be a fed"):
        KeyHolderPolicy.from_dict({"federation": bad})


# --- item 2: the record and the .opened file record the federation -------------------


def test_the_record_and_the_opened_round_name_the_federation(tmp_path: Path) -> None:
    helper = _holder(tmp_path, B)
    payload = _decryption(helper, B, 3)
    opened = json.loads(opened_path(tmp_path / "kh.state").read_text())
    assert opened["version"] == 2 and opened["federation"] == B and opened["round"] == 3
    helper.handle(payload, round_number=3)
    record = json.loads((tmp_path / "kh.state").read_text())
    assert record == {"version": 2, "federation": B, "decryptions": 1, "rounds": [3]}


def test_a_version_1_record_is_read_and_upgraded_to_the_key_holders_federation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A record written before it named the federation is this key's: its rounds stay
    served (refusing more, never less), and it is rewritten at once as version 2 naming
    the federation the key holder serves; the next decryption follows on from it."""
    state = tmp_path / "kh.state"
    state.write_text(json.dumps({"version": 1, "decryptions": 2, "rounds": [1, 4]}))
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        helper = _holder(tmp_path, B)
    assert json.loads(state.read_text()) == {
        "version": 2,
        "federation": B,
        "decryptions": 2,
        "rounds": [4],  # the last round served: all the refusal rules need
    }
    assert "upgraded to version 2" in caplog.text
    assert helper.record.rounds == [4] and helper.decryptions == 2
    with pytest.raises(RoundAlreadyServed):
        helper.handle(_key_request(B), round_number=4)
    helper.handle(_decryption(helper, B, 5), round_number=5)
    assert json.loads(state.read_text())["rounds"] == [5]
    # a key holder of no federation (in memory) reads a version-1 record and leaves it
    old = tmp_path / "old.state"
    old.write_text(json.dumps({"version": 1, "decryptions": 1, "rounds": [2]}))
    KeyHolderSession(KeyHolderPolicy(state_path=old))
    assert json.loads(old.read_text())["version"] == 1


def test_a_record_of_another_federation_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    state = tmp_path / "kh.state"
    state.write_text(json.dumps({"version": 2, "federation": A, "decryptions": 1, "rounds": [7]}))
    before = state.read_bytes()
    with pytest.raises(ConfigurationError) as refused:
        _holder(tmp_path, B)
    said = str(refused.value)
    assert "\n" not in said and said.startswith("[key_holder] state: ")
    assert "records the rounds of federation 'fed-a'" in said
    assert "serves federation 'fed-b'" in said and "its own state file" in said
    assert state.read_bytes() == before


@pytest.mark.parametrize(
    "record",
    [
        {"version": 2, "decryptions": 1, "rounds": [1]},  # no federation
        {"version": 2, "federation": 7, "decryptions": 1, "rounds": [1]},
        {"version": 2, "federation": "a b", "decryptions": 1, "rounds": [1]},
        {"version": 2, "federation": B, "decryptions": 1, "rounds": [1], "extra": 1},
        {"version": 1, "federation": B, "decryptions": 1, "rounds": [1]},
        {"version": 3, "federation": B, "decryptions": 1, "rounds": [1]},
        {"version": True, "decryptions": 1, "rounds": [1]},
        {"version": 2.0, "federation": B, "decryptions": 1, "rounds": [1]},
    ],
)
def test_a_record_with_anything_unexpected_fails_closed(
    tmp_path: Path, record: dict[str, object]
) -> None:
    state = tmp_path / "kh.state"
    state.write_text(json.dumps(record))
    before = state.read_bytes()
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] state: cannot read .*; refus"):
        KeyHolderSession(KeyHolderPolicy(state_path=state, federation=B))
    assert state.read_bytes() == before


def test_a_record_replaced_by_another_federations_makes_the_key_holder_stale(
    tmp_path: Path,
) -> None:
    """The same rounds and count, but another federation's: not this process's record."""
    state = tmp_path / "kh.state"
    helper = KeyHolderSession(KeyHolderPolicy(state_path=state, federation=B))
    helper.handle(_decryption(helper, B, 1), round_number=1)
    record = json.loads(state.read_text())
    state.write_text(json.dumps(record | {"federation": A}))
    with pytest.raises(StateChanged, match="round 2 refused"):
        helper.handle(_key_request(B), round_number=2)


def test_an_opened_round_of_version_1_is_read_and_one_of_another_federation_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restarted key holder still decrypts the round it opened: a version-1 ``.opened``
    (no federation) was written under this key for the federation its record serves; one
    naming another federation is set aside (no round open: that round's decryption is
    refused, nothing is decrypted twice)."""
    helper = _holder(tmp_path, B)
    payload = _decryption(helper, B, 3)
    opened = opened_path(tmp_path / "kh.state")
    data = json.loads(opened.read_text())
    assert _holder(tmp_path, B).opened == (3, D)
    del data["federation"]
    opened.write_text(json.dumps(data | {"version": 1}))
    assert _holder(tmp_path, B).opened == (3, D)
    opened.write_text(json.dumps(data | {"version": 2, "federation": A}))
    with caplog.at_level(logging.WARNING, logger="secagg.keyholder"):
        restarted = _holder(tmp_path, B)
    assert restarted.opened is None and "of federation 'fed-a'" in caplog.text
    with pytest.raises(UnexpectedMessage, match="which no key request opened"):
        restarted.handle(payload, round_number=3)
    assert restarted.decryptions == 0


def test_a_key_holder_of_no_federation_and_no_record_joins_the_first_one_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key holder whose record dies with it (no state file: the config-less ``secagg
    keyholder``, in-memory runs) serves the federation of the first round it opens, as a
    branch without a pin joins its server's (logged once), and refuses any other from
    then on; a refused first request joins nothing."""
    helper = KeyHolderSession(KeyHolderPolicy(dimension=D + 1))
    with pytest.raises(WrongDimension):
        helper.handle(_key_request(A), round_number=1)  # refused: joins nothing
    assert helper.record.federation is None and helper.opened is None
    helper = KeyHolderSession()
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        helper.handle(_decryption(helper, A, 1), round_number=1)
    assert "serves federation 'fed-a' (its server's)" in caplog.text
    assert helper.record.federation == A
    for other in (B, ""):
        with pytest.raises(WrongFederation, match="this key holder serves federation 'fed-a'"):
            helper.handle(_key_request(other), round_number=2)
    in_memory = KeyHolderSession()  # an in-memory run's rounds name none
    in_memory.handle(_key_request(""), round_number=1)
    with pytest.raises(WrongFederation, match="serves no federation"):
        in_memory.handle(_key_request(A), round_number=2)
