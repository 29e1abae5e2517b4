"""The CKKS key holder answers a request exactly when its own policy allows it.

Hypothesis draws a random :class:`~secagg.aggregation.keyholder_policy.KeyHolderPolicy`
(its noise, its floor of contributions, its lifetime cap, its length, its federation), a
random past (the rounds it decrypted and its count, in its state file; the round its last
key request opened, in ``<state>.opened``) and a random request (a key request or a
decryption request: its round number, its federation, its length, the noise the server
asks for, how many contributions its aggregate sums), and compares what the key holder
does with an **oracle written here from the documented rules** (docs/backends.md, "The key
holder's own policy", and the module docstring of
:mod:`secagg.aggregation.keyholder_policy`), never from the code's branches. A refusal
must be of the type that names the rule, one line, and leave the key holder's memory and
files as they were; an answer must carry the noise the rules give, and be recorded.

Then the monotonicity that needs no oracle: a decryption answered is answered when the
server asks for more noise or its aggregate sums more contributions, a key request
answered is answered for any later round number, and a refusal stays a refusal when the
request asks for less noise or sums fewer contributions.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, decode_spec
from secagg.aggregation.ckks import (
    _DECRYPT_FIELDS,
    _HELPER_HEAD,
    CKKSBackend,
    KeyHolderSession,
    federation_field,
)
from secagg.aggregation.keyholder_policy import (
    NOISE_CAP_PER_RANGE,
    DecryptionCapReached,
    KeyHolderPolicy,
    NoiseRequestTooLarge,
    RoundAlreadyServed,
    RoundSuperseded,
    WrongDimension,
    WrongFederation,
    noise_floor,
    opened_path,
)
from secagg.errors import MalformedMessage, SecAggError, UnexpectedMessage
from secagg.he.errors import TooFewContributions

N = 4  # the federation's largest round: what the key is made for
#: the value bound of the federation's design point (CKKSBackend's default)
BOUND = 1.0
LENGTHS = (4, 6)  # two round lengths of one chunk each: a request's size fits either
FED, OTHER_FED = "fed-a", "fed-b"
PROPERTY = settings(
    max_examples=int(os.environ.get("POLICY_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: each example of these asks twice
MONOTONE = settings(PROPERTY, max_examples=max(1, PROPERTY.max_examples // 3))


@dataclass(frozen=True)
class Past:
    """What the key holder served before the request: its state file and ``.opened``."""

    rounds: tuple[int, ...]
    count: int
    opened: tuple[int, int] | None  # (round, length) of the last key request


@dataclass(frozen=True)
class Request:
    kind: str  # "key" or "decrypt"
    round: int
    federation: str  # "" for none
    dimension: int
    requested: float  # decrypt: the noise std the server asks for
    contributions: int  # decrypt: the summands its aggregate claims
    design_clients: int  # key: the design point's clients (N: the key's own)


@pytest.fixture(scope="module")
def key_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kh.key"
        CKKSBackend(max_clients=N).make_helper_key(path)
        yield path


def _holder(key: Path, folder: Path, policy: KeyHolderPolicy, past: Past) -> KeyHolderSession:
    """A key holder of ``policy`` over ``key`` whose state says ``past``."""
    state = folder / "kh.state"
    record = {
        "version": 2,
        "federation": policy.federation,
        "decryptions": past.count,
        "rounds": list(past.rounds),
    }
    state.write_text(json.dumps(record), encoding="utf-8")
    policy = replace(policy, state_path=state)
    if past.opened is not None:
        number, length = past.opened
        opened = {
            "version": 2,
            "federation": policy.federation,
            "round": number,
            "dimension": length,
            "fingerprint": _fingerprint(key, policy).hex(),
        }
        opened_path(state).write_text(json.dumps(opened), encoding="utf-8")
    return CKKSBackend(max_clients=N).helper({"key": str(key)} | _settings(policy))


#: the key's fingerprint by key file: a key holder loaded only to read it cost as much as
#: the one under test (a key load), for a value that is the same for every example
_FINGERPRINTS: dict[Path, bytes] = {}


def _fingerprint(key: Path, policy: KeyHolderPolicy) -> bytes:
    """The fingerprint a key holder over ``key`` writes into its ``.opened`` file, read
    from a key holder of ``policy`` once per key file (the state file it leaves behind is
    rewritten by :func:`_holder` before the key holder under test reads it)."""
    if key not in _FINGERPRINTS:
        helper = CKKSBackend(max_clients=N).helper({"key": str(key)} | _settings(policy))
        _FINGERPRINTS[key] = helper.fingerprint  # type: ignore[union-attr]
    return _FINGERPRINTS[key]


def _settings(policy: KeyHolderPolicy) -> dict[str, object]:
    """``policy`` as its ``[key_holder]`` table."""
    table: dict[str, object] = {
        "noise_stddev": policy.noise_stddev,
        "min_contributions": policy.min_contributions,
        "state": str(policy.state_path),
    }
    for name in ("max_decryptions", "dimension", "federation"):
        if getattr(policy, name) is not None:
            table[name] = getattr(policy, name)
    return table


def _key_request(request: Request) -> bytes:
    backend = CKKSBackend(max_clients=request.design_clients)
    server = backend.server(backend.plan(request.design_clients, request.dimension))
    if request.federation:
        server.bind_federation(request.federation)
    (message,) = server.start()
    return message.payload


@pytest.fixture(scope="module")
def answering(key_file: Path) -> KeyHolderSession:
    """A key holder of the same key, with no policy of note and no state: it answers the
    honest server's key request, so that the server can build a decryption request."""
    from secagg.he.keys import KeyHolder

    backend = CKKSBackend(max_clients=N)
    key = KeyHolder.load(key_file, backend.design_point().parameters(), min_contributions=2)
    return KeyHolderSession(KeyHolderPolicy(), key=key)


#: an honest round's decryption request by (answering key holder, length, contributions):
#: the noise asked and the federation are written over it per request, so a round of
#: CKKS encryptions (half an example's time) is run once per shape, not per example
_HONEST_DECRYPTIONS: dict[tuple[int, int, int], bytes] = {}


def _honest_decryption(answering: KeyHolderSession, dimension: int, contributions: int) -> bytes:
    """An honest round's decryption request under the key: ``contributions`` uploads of
    0.25 each to a round of length ``dimension`` (made once per shape, then reused)."""
    shape = (id(answering), dimension, contributions)
    if shape in _HONEST_DECRYPTIONS:
        return _HONEST_DECRYPTIONS[shape]
    backend = CKKSBackend(max_clients=N)
    server = backend.server(backend.plan(N, dimension))
    (start,) = server.start()
    answering.opened = None  # it opens "round 0" for every request it helps build
    (announce,) = server.handle(HELPER, answering.handle(start.payload, round_number=0))
    assert isinstance(announce, Announce)
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party in range(contributions):
        upload = backend.client(spec, party).set_input(np.full(dimension, 0.25))[0]
        outgoing = server.handle(party, upload)
    if contributions < N:
        outgoing = server.close_phase()
    (decrypt,) = outgoing
    _HONEST_DECRYPTIONS[shape] = decrypt.payload
    return decrypt.payload


def _decryption_request(answering: KeyHolderSession, request: Request) -> bytes:
    """An honest round's decryption request under the key (:func:`_honest_decryption`),
    then the noise asked and the federation written over the honest ones, as a server may
    (the length is the round's: the aggregate's chunks carry it too)."""
    honest = _honest_decryption(answering, request.dimension, request.contributions)
    fields = _HELPER_HEAD.size
    _, _, length = _DECRYPT_FIELDS.unpack_from(honest, fields)
    head = _DECRYPT_FIELDS.pack(request.dimension, request.requested, length)
    aggregate = honest[fields + _DECRYPT_FIELDS.size : fields + _DECRYPT_FIELDS.size + length]
    return honest[:fields] + head + aggregate + federation_field(request.federation)


# --- the oracle ---------------------------------------------------------------------------


def refusals(policy: KeyHolderPolicy, past: Past, request: Request) -> set[type[Exception]]:
    """The refusals ``request`` earns, by the documented rules (docs/backends.md's table):

    * federation: a request naming another federation than the key holder's own (none:
      only requests naming none) is ``WrongFederation``;
    * length: another length than its ``dimension`` is ``WrongDimension``, and so is a
      decryption of another length than its round was opened with;
    * one decryption per round: a round number at or below the last decrypted is
      ``RoundAlreadyServed``, already at its key request;
    * lifetime cap: ``max_decryptions`` served is ``DecryptionCapReached``, already at
      the key request;
    * rounds open in increasing order: a key request below the round last opened is
      ``RoundSuperseded``; a decryption of a round no key request opened (or not the
      last one opened) is unexpected;
    * the key's own design point only (a persistent key), and one whose clients can
      reach ``min_contributions``: any other is a key-holder refusal;
    * contributions: an aggregate claiming fewer than ``min_contributions`` is
      ``TooFewContributions``;
    * noise: a requested std that is no std (NaN, infinite, negative) is a malformed
      request; one above the key holder's cap (``NOISE_CAP_PER_RANGE`` x clients x value
      bound, at least its own noise) is ``NoiseRequestTooLarge`` (review of 2026-12-06:
      any std a float64 sum held was honoured).
    """
    from secagg.aggregation.keyholder_policy import KeyHolderRefusal

    bad: set[type[Exception]] = set()
    if request.federation != (policy.federation or ""):
        bad.add(WrongFederation)
    if policy.dimension is not None and request.dimension != policy.dimension:
        bad.add(WrongDimension)
    if past.rounds and request.round <= max(past.rounds):
        bad.add(RoundAlreadyServed)
    if policy.max_decryptions is not None and past.count >= policy.max_decryptions:
        bad.add(DecryptionCapReached)
    if request.kind == "key":
        if past.opened is not None and request.round < past.opened[0]:
            bad.add(RoundSuperseded)
        if request.design_clients != N or request.design_clients < policy.min_contributions:
            bad.add(KeyHolderRefusal)
        return bad
    if past.opened is None or past.opened[0] != request.round:
        bad.add(UnexpectedMessage)
    elif request.dimension != past.opened[1]:
        bad.add(WrongDimension)
    sigma = request.requested
    if not (math.isfinite(sigma) and sigma >= 0):
        bad.add(MalformedMessage)
    elif sigma > _noise_cap(policy):
        bad.add(NoiseRequestTooLarge)
    if request.contributions < policy.min_contributions:
        bad.add(TooFewContributions)
    return bad


def _noise_cap(policy: KeyHolderPolicy) -> float:
    """The most noise the key holder adds at a server's request (the oracle's own sum)."""
    return max(NOISE_CAP_PER_RANGE * N * BOUND, policy.noise_stddev)


# --- the key holder under test -------------------------------------------------------------


def _state(helper: KeyHolderSession, folder: Path) -> tuple[object, ...]:
    """What a later request's answer depends on: the record, the round opened, and every
    file beside the key holder's state (a lock by its name: its bytes are nobody's)."""
    record = helper.record
    files = tuple(
        sorted((p.name, b"" if p.suffix == ".lock" else p.read_bytes()) for p in folder.iterdir())
    )
    return (
        tuple(record.rounds),
        record.decryptions,
        record.federation,
        record.stale,
        helper.opened,
        files,
    )


@dataclass
class Answer:
    """What the key holder did with one request, and its state after."""

    error: BaseException | None
    sigma: float | None  # a decryption's reported noise std
    floor: float  # noise_floor of the key's parameters
    opened: tuple[int, int] | None
    rounds: tuple[int, ...]
    decryptions: int
    recorded: dict[str, object]  # the state file after


def ask(
    key: Path, answering: KeyHolderSession, policy: KeyHolderPolicy, past: Past, request: Request
) -> Answer:
    """A fresh key holder of ``policy`` with ``past`` answers ``request``; a refusal must
    leave it, and its files, as they were."""
    payload = (
        _key_request(request) if request.kind == "key" else _decryption_request(answering, request)
    )
    with tempfile.TemporaryDirectory(prefix="kh-props-") as name:
        folder = Path(name)
        helper = _holder(key, folder, policy, past)
        before = _state(helper, folder)
        error: BaseException | None = None
        sigma = None
        try:
            reply = helper.handle(payload, round_number=request.round)
        except SecAggError as exc:
            assert _state(helper, folder) == before, f"{type(exc).__name__} changed the state"
            assert "\n" not in str(exc), exc
            error = exc
        else:
            if request.kind == "decrypt":
                (sigma,) = struct.unpack_from("<d", reply, _HELPER_HEAD.size)
        return Answer(
            error,
            sigma,
            noise_floor(helper._holder.params),
            helper.opened,
            tuple(helper.record.rounds),
            helper.record.decryptions,
            json.loads((folder / "kh.state").read_text(encoding="utf-8")),
        )


# --- strategies ----------------------------------------------------------------------------


@st.composite
def policies(draw: st.DrawFn) -> KeyHolderPolicy:
    noise = draw(st.sampled_from([0.0, 0.0, 0.5, 3.0]))
    cap = draw(st.integers(1, 5) if noise > 0 else st.none() | st.integers(1, 5))
    return KeyHolderPolicy(
        noise_stddev=noise,
        min_contributions=draw(st.integers(2, N)),
        max_decryptions=cap,
        dimension=draw(st.sampled_from([None, None, *LENGTHS])),
        federation=draw(st.sampled_from([None, FED, FED])),
    )


@st.composite
def pasts(draw: st.DrawFn) -> Past:
    rounds = tuple(sorted(draw(st.sets(st.integers(0, 12), max_size=4))))
    count = len(rounds) + draw(st.integers(0, 2))
    opened = draw(st.none() | st.tuples(st.integers(0, 14), st.sampled_from(LENGTHS)))
    return Past(rounds, count, opened)


def _near(*values: int) -> st.SearchStrategy[int]:
    near = {max(0, v + step) for v in values for step in (-1, 0, 1)}
    return st.sampled_from(sorted(near)) | st.integers(0, 20)


@st.composite
def requests(draw: st.DrawFn, policy: KeyHolderPolicy, past: Past) -> Request:
    last = max(past.rounds, default=0)
    opened = past.opened[0] if past.opened else last + 1
    served = policy.federation or ""
    return Request(
        kind=draw(st.sampled_from(["key", "decrypt", "decrypt"])),
        round=draw(_near(last, opened)),
        federation=draw(st.sampled_from([served, served, served, OTHER_FED, ""])),
        dimension=draw(st.sampled_from([*LENGTHS, 7])),
        requested=draw(
            st.sampled_from([0.0, 0.5, 4.0, math.nan, math.inf, -1.0, 1e308, 5e-324])
            | st.floats(0.0, 10.0)
        ),
        contributions=draw(st.integers(2, N)),
        design_clients=draw(st.sampled_from([N, N, N, 2, 6])),
    )


@st.composite
def honest_cases(
    draw: st.DrawFn, policy: KeyHolderPolicy, kind: str | None = None
) -> tuple[Past, Request]:
    """A past and a request meant to meet every rule, then up to two of the request's
    fields replaced by a hostile draw (:func:`requests`)."""
    rounds = tuple(sorted(draw(st.sets(st.integers(0, 8), max_size=3))))
    room = (policy.max_decryptions or 9) - len(rounds) - 1
    count = len(rounds) + draw(st.integers(0, max(0, room)))
    length = policy.dimension or draw(st.sampled_from(LENGTHS))
    number = max(rounds, default=-1) + draw(st.integers(1, 3))
    kind = kind or draw(st.sampled_from(["key", "decrypt"]))
    # a key request: the round opened before it, if any
    before = st.none() | st.just((number - 1, length)) if number > 0 else st.none()
    opened = (number, length) if kind == "decrypt" else draw(before)
    past = Past(rounds, count, opened)
    honest = Request(
        kind=kind,
        round=number,
        federation=policy.federation or "",
        dimension=length,
        requested=draw(st.floats(0.0, 10.0)),
        contributions=draw(st.integers(policy.min_contributions, N)),
        design_clients=N,
    )
    hostile = draw(requests(policy, past))
    changed = draw(st.lists(st.sampled_from(list(Request.__dataclass_fields__)), max_size=2))
    changes = {name: getattr(hostile, name) for name in changed if name != "kind"}
    return past, replace(honest, **changes)


def _check(policy: KeyHolderPolicy, past: Past, request: Request, answer: Answer) -> None:
    bad = refusals(policy, past, request)
    if bad:
        assert answer.error is not None, f"answered although {sorted(b.__name__ for b in bad)}"
        assert isinstance(answer.error, tuple(bad)), (
            f"{type(answer.error).__name__}: {answer.error}; the rules: "
            f"{sorted(b.__name__ for b in bad)}"
        )
        return
    assert answer.error is None, f"refused a request the rules allow: {answer.error!r}"
    if request.kind == "key":
        assert answer.opened == (request.round, request.dimension)
        return
    assert answer.sigma == max(policy.noise_stddev, request.requested, answer.floor)
    # the record keeps the last round served (a past file's whole list is read as its
    # last): the rules refuse every round at or below it, so no earlier one is consulted
    assert answer.rounds == (request.round,)
    assert answer.decryptions == past.count + 1
    assert answer.recorded["rounds"] == list(answer.rounds)  # on disk before it left
    assert answer.recorded["decryptions"] == answer.decryptions


@given(policy=policies(), past=pasts(), data=st.data())
@PROPERTY
def test_the_key_holder_answers_exactly_when_its_rules_allow(
    key_file: Path,
    answering: KeyHolderSession,
    policy: KeyHolderPolicy,
    past: Past,
    data: st.DataObject,
) -> None:
    if data.draw(st.booleans()):
        past, request = data.draw(honest_cases(policy))
    else:
        request = data.draw(requests(policy, past))
    answer = ask(key_file, answering, policy, past, request)
    event("answered" if answer.error is None else type(answer.error).__name__)
    _check(policy, past, request, answer)


# --- monotonicity: no oracle ------------------------------------------------------------


@given(policy=policies(), data=st.data())
@MONOTONE
def test_a_request_answered_is_answered_when_made_stronger(
    key_file: Path, answering: KeyHolderSession, policy: KeyHolderPolicy, data: st.DataObject
) -> None:
    """Stronger, by field: more noise asked (up to the key holder's cap on it), more
    contributions summed, and for a key request a later round number.

    Not monotone, so not here: a decryption's round number (only the round last opened
    is decrypted: a later one was never opened, an earlier one is spent or superseded),
    the length and the federation (equalities), the design point (the key's own only)."""
    past, request = data.draw(honest_cases(policy))
    assume(ask(key_file, answering, policy, past, request).error is None)
    if request.kind == "key":
        stronger = replace(request, round=request.round + data.draw(st.integers(1, 5)))
    elif data.draw(st.booleans()):
        more_noise = request.requested * data.draw(st.floats(1, 1e6))
        stronger = replace(request, requested=min(more_noise, _noise_cap(policy)))
    else:
        more = data.draw(st.integers(request.contributions, N))
        stronger = replace(request, contributions=more)
    answer = ask(key_file, answering, policy, past, stronger)
    assert answer.error is None, f"{stronger} refused: {answer.error!r}"


@given(policy=policies(), data=st.data())
@MONOTONE
def test_a_decryption_refused_stays_refused_when_made_weaker(
    key_file: Path, answering: KeyHolderSession, policy: KeyHolderPolicy, data: st.DataObject
) -> None:
    """Weaker: less noise asked, fewer contributions (at least the 2 a server sends)."""
    past, request = data.draw(honest_cases(policy, "decrypt"))
    refused = ask(key_file, answering, policy, past, request).error
    # a refusal by a rule: a std above the key holder's cap (or no std) is refused, and
    # less of it is a request that can be answered (the one bound that is not a floor)
    assume(refused is not None and not isinstance(refused, MalformedMessage | NoiseRequestTooLarge))
    asked = request.requested
    # less of a std (a negative or NaN is no std at all, refused as malformed: scaling it
    # makes no weaker request)
    if data.draw(st.booleans()) and math.isfinite(asked) and asked >= 0:
        weaker = replace(request, requested=request.requested * data.draw(st.floats(0, 1)))
    else:
        weaker = replace(request, contributions=data.draw(st.integers(2, request.contributions)))
    assert ask(key_file, answering, policy, past, weaker).error is not None, weaker


# --- a sequence of requests: the oracle as a model ----------------------------------------


@dataclass
class Model:
    """What the rules say the key holder holds: the federation it serves ("" for none;
    None while a key holder of no federation and no state file has yet to join one), the
    rounds decrypted and the count, and the round last opened."""

    serves: str | None
    rounds: tuple[int, ...] = ()
    count: int = 0
    opened: tuple[int, int] | None = None

    def judge(self, policy: KeyHolderPolicy, request: Request) -> set[type[Exception]]:
        # one that has yet to join takes the federation the request names
        serves = request.federation if self.serves is None else self.serves
        bound = replace(policy, federation=serves or None)
        return refusals(bound, Past(self.rounds, self.count, self.opened), request)

    def take(self, request: Request) -> None:
        if request.kind == "key":
            self.opened = (request.round, request.dimension)
            if self.serves is None:  # the first round opened names the federation served
                self.serves = request.federation
        else:
            self.rounds, self.count = (request.round,), self.count + 1  # the last served


@given(policy=policies(), memory=st.booleans(), data=st.data())
@MONOTONE
def test_the_key_holder_follows_its_rules_over_a_sequence_of_requests(
    key_file: Path,
    answering: KeyHolderSession,
    policy: KeyHolderPolicy,
    memory: bool,
    data: st.DataObject,
) -> None:
    """``memory``: a key holder with no state file (in-memory runs; with no federation of
    its own it serves the one the first round it opens names, docs/backends.md), else one
    over a fresh state file. Each request is judged by the model and applied to the one
    key holder; a refusal must change nothing of it."""
    from secagg.he.keys import KeyHolder

    with tempfile.TemporaryDirectory(prefix="kh-seq-") as name:
        folder = Path(name)
        if memory:
            params = CKKSBackend(max_clients=N).design_point().parameters()
            key = KeyHolder.load(key_file, params, min_contributions=policy.min_contributions)
            helper = KeyHolderSession(policy, key=key)
            model = Model(None if policy.federation is None else policy.federation)
        else:
            helper = _holder(key_file, folder, policy, Past((), 0, None))
            model = Model(policy.federation or "")
        for _ in range(data.draw(st.integers(1, 6))):
            last = max(model.rounds, default=0)
            opened = model.opened[0] if model.opened else last
            kind = data.draw(st.sampled_from(["key", "decrypt"]))
            served = model.serves if model.serves is not None else FED
            request = Request(
                kind=kind,
                round=data.draw(_near(last, opened, opened + 1)),
                federation=data.draw(st.sampled_from([served, served, served, OTHER_FED, ""])),
                dimension=data.draw(st.sampled_from([policy.dimension or LENGTHS[0], *LENGTHS])),
                requested=data.draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 5)),
                contributions=data.draw(st.integers(2, N)),
                design_clients=data.draw(st.sampled_from([N, N, N, 2])),
            )
            if kind == "decrypt" and model.opened is not None and data.draw(st.booleans()):
                # the round opened, as an honest server asks (its federation may still
                # differ, its noise and contributions vary)
                number, length = model.opened
                request = replace(request, round=number, dimension=length)
            payload = (
                _key_request(request) if kind == "key" else _decryption_request(answering, request)
            )
            bad = model.judge(policy, request)
            before = _state(helper, folder)
            try:
                helper.handle(payload, round_number=request.round)
            except SecAggError as exc:
                assert bad, f"{request} refused by {exc!r}; the model: {model}"
                assert isinstance(exc, tuple(bad)), f"{exc!r}; the rules: {bad}"
                assert _state(helper, folder) == before
            else:
                assert not bad, f"{request} answered; the rules: {bad}; the model: {model}"
                model.take(request)
                event(f"answered a {kind} request")
            assert (tuple(helper.record.rounds), helper.record.decryptions) == (
                model.rounds,
                model.count,
            )
            assert helper.opened == model.opened
