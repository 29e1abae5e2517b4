"""Every session that reads another party's bytes is total (security review H1, L3).

Hypothesis feeds the server sessions of every backend, the clients' sessions and
the CKKS key holder random bytes and mutations of valid payloads: each either
accepts a payload or raises a :class:`~secagg.errors.SecAggError` subtype, and a
refused payload changes nothing the round depends on.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import struct
from collections.abc import Callable
from pathlib import Path

import hypothesis
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.aggregation import HELPER, Announce, ToParty, decode_spec, get_backend
from secagg.aggregation.keyholder_policy import plausible_range
from secagg.errors import ConfigurationError, ProtocolError, SecAggError

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


def _helper_requests(
    key: Path, settings: dict[str, object] | None = None
) -> tuple[Callable[[], object], bytes, bytes]:
    """A key holder with its persistent key (and ``settings``: the rest of its
    [key_holder] table), a valid key request and a valid decryption request of the round."""
    backend = get_backend("ckks", max_clients=N)
    backend.make_helper_key(key)
    spec = backend.plan(N, D)
    server = backend.server(spec)
    (request,) = server.start()
    assert isinstance(request, ToParty) and request.party == HELPER
    helper = backend.helper({"key": str(key), **(settings or {})})
    # these tests open a round per example, hundreds a second with no decryption: what
    # the key holder's pace refuses (tests/aggregation/test_keyholder_opening_pace.py);
    # here the requests' parsing is under test, so the pace is lifted
    from secagg.aggregation.keyholder_policy import OpeningAllowance

    helper.openings = OpeningAllowance(burst=10**9)  # type: ignore[attr-defined]
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
    helper.handle(key_request, round_number=2)  # type: ignore[attr-defined]
    helper.handle(decrypt, round_number=2)  # type: ignore[attr-defined]
    assert helper.decryptions == counted + spent + 1  # type: ignore[attr-defined]


# --- CKKS: the server at each phase, and the key holder ----------------------------


@functools.cache
def _ckks_stages() -> dict[str, tuple[object, bytes, tuple[int, ...]]]:
    """A CKKS server at each phase that reads bytes, the valid payload of that phase, and
    the parties that payload is tried from: the key holder's public context (phase
    ``key``), a client's upload (phase ``contribution``, before and after a first
    upload) and the key holder's decrypted sum (phase ``decrypt``)."""
    backend = get_backend("ckks")
    helper = backend.helper()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    stages: dict[str, tuple[object, bytes, tuple[int, ...]]] = {}
    key_reply = helper.handle(request.payload, round_number=1)
    stages["key"] = (copy.deepcopy(server), key_reply, (HELPER, 0))
    (announce,) = server.handle(HELPER, key_reply)
    spec = decode_spec(announce.spec)
    uploads = [backend.client(spec, p).set_input(np.full(D, 0.1 * p))[0] for p in range(N)]
    stages["contribution"] = (copy.deepcopy(server), uploads[0], (0, 1, N, -1, HELPER))
    server.handle(0, uploads[0])
    stages["contribution-after-one"] = (copy.deepcopy(server), uploads[1], (1, 0, N, -1, HELPER))
    events: list = []
    for party in range(1, N):
        events = server.handle(party, uploads[party])
    (decrypt,) = events
    decrypted = helper.handle(decrypt.payload, round_number=1)
    stages["decrypt"] = (copy.deepcopy(server), decrypted, (HELPER, 0))
    return stages


def _ckks_state(server: object) -> tuple[object, ...]:
    """Everything a CKKS server's round depends on: phase, who it waits for, the spec
    (with the announced context), the running sum's count and residues, the result."""
    total = server._sum  # type: ignore[attr-defined]
    residues = None
    if total is not None and total._sum is not None:
        residues = hashlib.sha256(total._sum.tobytes()).hexdigest()
    return (
        *_fingerprint(server),
        server.spec,  # type: ignore[attr-defined]
        None if total is None else total.contributions,
        residues,
        server.noise_added,  # type: ignore[attr-defined]
        server._total is None,  # type: ignore[attr-defined]
        server.dropouts(),  # type: ignore[attr-defined]
    )


def refused(state: Callable[[], object], call: Callable[[], object]) -> bool:
    """Run ``call``: True if it raised a typed refusal (a SecAggError) that left
    ``state()`` as it was; False if it was accepted. Anything else fails the test."""
    before = state()
    try:
        call()
    except SecAggError:
        assert state() == before, "a refused message changed the session's state"
        return True
    return False


@pytest.mark.parametrize("stage", ["key", "contribution", "contribution-after-one", "decrypt"])
def test_ckks_server_refuses_any_bytes_at_each_phase_without_changing_state(stage: str) -> None:
    """Random, truncated, extended and bit-flipped payloads from the key holder and the
    clients at each phase of a CKKS round: a typed refusal that changes nothing, or an
    accepted payload (a flipped residue is a valid ciphertext of another value: CKKS is
    malleable, see secagg/he/envelope.py)."""
    template, valid, parties = _ckks_stages()[stage]

    @FUZZ
    @given(payload=_mutations(valid), party=st.sampled_from(parties))
    def check(payload: bytes, party: int) -> None:
        server = copy.deepcopy(template)  # fresh: an accepted payload counts
        refused(lambda: _ckks_state(server), lambda: server.handle(party, payload))  # type: ignore[attr-defined]

    check()
    # and the valid payload itself is still taken, from the party it is for
    server = copy.deepcopy(template)
    assert not refused(lambda: _ckks_state(server), lambda: server.handle(parties[0], valid))  # type: ignore[attr-defined]
    assert _ckks_state(server) != _ckks_state(template)


def _holder_state(helper: object) -> tuple[object, ...]:
    """What a key holder's answers depend on: its key, its lifetime count, its rounds."""
    return (helper.fingerprint, helper.decryptions, tuple(helper.record.rounds))  # type: ignore[attr-defined]


def test_key_holder_without_a_key_refuses_any_decryption_request_bytes(tmp_path: Path) -> None:
    """Before any key request, every (mutated) decryption request is refused: no key is
    made, nothing is counted."""
    _, _, decrypt = _helper_requests(tmp_path / "holder.key")
    helper = get_backend("ckks").helper()

    @FUZZ
    @given(payload=_mutations(decrypt))
    def check(payload: bytes) -> None:
        assert refused(
            lambda: _holder_state(helper), lambda: helper.handle(payload, round_number=1)
        )

    check()
    assert _holder_state(helper) == (None, 0, ())


def test_key_holder_after_answering_a_round_refuses_every_request_of_it(tmp_path: Path) -> None:
    """Once round 1 is decrypted, no bytes at all get round 1 (or an older round)
    decrypted again; key requests are answered with the same pinned key or refused."""
    get_helper, key_request, decrypt = _helper_requests(tmp_path / "holder.key")
    helper = get_helper()
    helper.handle(decrypt, round_number=1)  # type: ignore[attr-defined]
    answered = _holder_state(helper)
    assert answered[1:] == (1, (1,))

    @FUZZ
    @given(
        payload=st.one_of(_mutations(key_request), _mutations(decrypt)),
        number=st.sampled_from([0, 1]),
    )
    def check(payload: bytes, number: int) -> None:
        def call() -> object:
            return helper.handle(payload, round_number=number)  # type: ignore[attr-defined]

        if not refused(lambda: _holder_state(helper), call):
            assert payload[5] == 1  # only a key request may be answered: the same key
        assert _holder_state(helper) == answered

    check()


# --- what a peer's bytes may raise: a message error, never a configuration error ------

#: the packed envelope's big-endian u32 fields (secagg/he/envelope.py): vector length,
#: chunk index, contributions
_ENVELOPE_FIELDS = (14, 18, 22)


def _envelope_offsets(framed_at: int, data: bytes) -> list[tuple[int, str]]:
    """(offset, struct format) of every header field of every chunk of the frame that
    starts at ``framed_at`` in ``data``: the frame's chunk count, each chunk's length
    and each envelope's vector length, index and contributions."""
    offsets = [(framed_at + 5, "<I")]
    at = framed_at + 9
    while at + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, at)
        offsets.append((at, "<I"))
        offsets += [(at + 4 + field, ">I") for field in _ENVELOPE_FIELDS]
        at += 4 + length
    return offsets


def _rewrites(valid: bytes, offsets: list[tuple[int, str]]) -> st.SearchStrategy[bytes]:
    """``valid`` with some of its header fields set to any value of their width: the
    structured mutations random bit flips rarely reach (a count of 2^32 - 1, a length
    of 0, an index past the count)."""
    values = st.one_of(
        st.integers(0, 8), st.integers(2**32 - 8, 2**32 - 1), st.integers(0, 2**32 - 1)
    )

    def apply(changes: list[tuple[tuple[int, str], int]]) -> bytes:
        out = bytearray(valid)
        for (offset, fmt), value in changes:
            struct.pack_into(fmt, out, offset, value)
        return bytes(out)

    return st.lists(st.tuples(st.sampled_from(offsets), values), min_size=1, max_size=3).map(apply)


def _refusal(state: Callable[[], object], call: Callable[[], object]) -> SecAggError | None:
    """The typed refusal ``call`` raised (the state checked unchanged), or None."""
    before = state()
    try:
        call()
    except SecAggError as exc:
        assert state() == before, "a refused message changed the session's state"
        return exc
    return None


def _message_error(error: SecAggError | None) -> None:
    """A peer's bytes are refused as a message (which a transport refuses and carries on
    from), never as the receiver's own configuration mistake: an aggregate claiming more
    contributions than the parameters raised BoundExceeded, a ConfigurationError."""
    if error is not None:
        assert not isinstance(error, ConfigurationError), repr(error)


@pytest.mark.parametrize("stage", ["contribution", "contribution-after-one", "decrypt", "key"])
def test_ckks_server_refuses_a_peers_bytes_as_a_message_never_as_a_configuration(
    stage: str,
) -> None:
    """The CKKS server at each phase, fed random and structured mutations of the valid
    payload (every header field of every chunk of an upload rewritten): each refusal is
    a message error that changes nothing."""
    template, valid, parties = _ckks_stages()[stage]
    # an upload's every chunk header; the key holder's replies: the field after the header
    fields = _envelope_offsets(0, valid) if stage.startswith("contribution") else [(6, "<d")]

    @FUZZ
    @given(
        payload=st.one_of(_mutations(valid), _rewrites(valid, fields)),
        party=st.sampled_from(parties),
    )
    def check(payload: bytes, party: int) -> None:
        server = copy.deepcopy(template)

        def call() -> object:
            return server.handle(party, payload)  # type: ignore[attr-defined]

        _message_error(_refusal(lambda: _ckks_state(server), call))

    check()


def test_key_holder_under_its_own_policy_answers_or_refuses_as_a_message(tmp_path: Path) -> None:
    """A key holder with its own noise, cap and dimension, fed decryption requests whose
    fields (dimension, noise std, the aggregate's length, every chunk's header) are
    rewritten, under a fresh round number each: a request is either answered (a sum of
    its own dimension, noised at least by its own std, one decryption counted; a sum
    beyond what its contributions can add up to is clamped and answered too, since
    2026-12-06) or refused as a message with nothing spent."""
    own = {"noise_stddev": 0.5, "max_decryptions": 10**6, "dimension": D}
    get_helper, key_request, decrypt = _helper_requests(tmp_path / "holder.key", own)
    helper = get_helper()
    fields = [(6, "<I"), (10, "<d"), (18, "<I"), *_envelope_offsets(22, decrypt)[1:]]
    numbers = iter(range(2, 10**6))

    def opened() -> int:
        """The next round number, opened for D values (a decryption is taken only for
        the round a key request opened)."""
        number = next(numbers)
        helper.handle(key_request, round_number=number)  # type: ignore[attr-defined]
        return number

    @FUZZ
    @given(payload=st.one_of(_rewrites(decrypt, fields), _mutations(decrypt)))
    def check(payload: bytes) -> None:
        number = opened()
        before = _holder_state(helper)
        try:
            answer = helper.handle(payload, round_number=number)  # type: ignore[attr-defined]
        except SecAggError as exc:
            hypothesis.event(f"refused: {type(exc).__name__}")
            _message_error(exc)
            assert isinstance(exc, ProtocolError) and _holder_state(helper) == before
            return
        hypothesis.event("answered")
        assert struct.unpack_from("<I", payload, 6)[0] == D  # its own dimension only
        std = struct.unpack_from("<d", answer, 6)[0]
        assert std >= 0.5  # its own noise at least
        assert len(answer) == 6 + 8 + 8 * D
        assert _holder_state(helper)[1:] == (before[1] + 1, (number,))
        # whatever the mutation decrypts to, what leaves is clamped before its noise
        reach = plausible_range(helper._holder.params, std)  # type: ignore[attr-defined]
        assert np.all(np.abs(np.frombuffer(answer[14:], "<f8")) <= reach)

    check()
    # and the valid request itself is still answered, under the next round number
    spent = helper.decryptions  # type: ignore[attr-defined]
    helper.handle(decrypt, round_number=opened())  # type: ignore[attr-defined]
    assert helper.decryptions == spent + 1  # type: ignore[attr-defined]


# --- the key request's dimension (key-holder messages, version 3) ---------------------

#: where a key request's dimension sits: after the header (6 bytes) and the design point
#: (clients u32, value bound f64, precision f64)
_KEY_DIMENSION_AT = 6 + 20


def _opened_state(helper: object) -> tuple[object, ...]:
    """:func:`_holder_state` and the round the last key request opened."""
    return (*_holder_state(helper), helper.opened)  # type: ignore[attr-defined]


def test_key_holder_opens_a_round_only_for_its_own_dimension(tmp_path: Path) -> None:
    """The key request's dimension field, set to any u32 or mutated around it, sent to a
    key holder bound to the federation's D values: only a request for D is answered (the
    pinned key, the round opened for D); any other is a typed refusal that leaves the
    key, the count, the rounds served and the round opened as they were, so no round of
    another length is ever opened and no branch encrypts for one."""
    get_helper, key_request, _ = _helper_requests(tmp_path / "holder.key", {"dimension": D})
    helper = get_helper()
    assert len(key_request) == _KEY_DIMENSION_AT + 4 + 1  # and the federation's name: none
    assert struct.unpack_from("<I", key_request, _KEY_DIMENSION_AT)[0] == D
    field = [(_KEY_DIMENSION_AT, "<I")]
    numbers = iter(range(2, 10**6))

    @FUZZ
    @given(payload=st.one_of(_rewrites(key_request, field), _mutations(key_request)))
    def check(payload: bytes) -> None:
        number = next(numbers)
        if refused(
            lambda: _opened_state(helper),
            lambda: helper.handle(payload, round_number=number),  # type: ignore[attr-defined]
        ):
            return
        assert struct.unpack_from("<I", payload, _KEY_DIMENSION_AT)[0] == D
        assert helper.opened == (number, D)  # type: ignore[attr-defined]

    check()
    assert _opened_state(helper)[1:3] == (0, ())  # nothing was decrypted


def test_key_holder_decrypts_only_the_length_its_round_was_opened_with(tmp_path: Path) -> None:
    """A key holder without a dimension of its own (in-memory runs) opens a round at any
    length the key request names; the valid decryption request of D values is then
    refused, typed and with nothing changed, for a round opened for any other length
    (before, the key request named none and the aggregate was decrypted)."""
    get_helper, key_request, decrypt = _helper_requests(tmp_path / "holder.key")
    helper = get_helper()

    @FUZZ
    @given(dimension=st.integers(1, 2**32 - 1).filter(lambda value: value != D))
    def check(dimension: int) -> None:
        request = bytearray(key_request)
        struct.pack_into("<I", request, _KEY_DIMENSION_AT, dimension)
        helper.handle(bytes(request), round_number=1)  # type: ignore[attr-defined]
        assert helper.opened == (1, dimension)  # type: ignore[attr-defined]
        assert refused(
            lambda: _opened_state(helper),
            lambda: helper.handle(decrypt, round_number=1),  # type: ignore[attr-defined]
        )

    check()
    helper.handle(key_request, round_number=1)  # type: ignore[attr-defined]
    helper.handle(decrypt, round_number=1)  # type: ignore[attr-defined]
    assert _opened_state(helper)[1:] == (1, (1,), (1, D))


@pytest.mark.parametrize("stage", ["key", "decrypt"])
def test_ckks_server_takes_a_key_holders_refusal_or_refuses_it_unchanged(stage: str) -> None:
    """A key holder's refusal (kind 5) and any mutation of it, with any code and any
    bytes of text: a typed message refusal that changes nothing, or the round aborted
    with a reason that is one printable line whose key-holder part is at most the
    refusal's 200 bytes (the text is another party's: control and format characters,
    newlines, escapes and bidi overrides never reach the abort reason or the log)."""
    pytest.importorskip("tenseal")
    from secagg.aggregation.ckks import MAX_REFUSAL_TEXT, refusal_reply
    from secagg.aggregation.spec import Writer
    from secagg.errors import RoundAborted

    template = _ckks_stages()[stage][0]
    valid = refusal_reply(RoundAborted("the key holder's reason"))
    head = valid[:6]

    def any_refusal(code: int, text: bytes) -> bytes:
        return head + Writer().u8(code).blob(text).bytes()

    @FUZZ
    @given(
        payload=st.one_of(
            _mutations(valid),
            st.builds(any_refusal, st.integers(0, 255), st.binary(max_size=MAX_REFUSAL_TEXT + 8)),
            st.builds(
                any_refusal,
                st.integers(1, 9),
                st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
            ),
        )
    )
    def check(payload: bytes) -> None:
        server = copy.deepcopy(template)
        error = _refusal(lambda: _ckks_state(server), lambda: server.handle(HELPER, payload))  # type: ignore[attr-defined]
        _message_error(error)
        if error is None:
            assert server.done and server.phase == "aborted"  # type: ignore[attr-defined]
            reason = server._abort_reason  # type: ignore[attr-defined]
            assert reason.isprintable() and reason.startswith("the key holder refused the ")
            said = reason.split("): ", 1)[1]
            assert len(said.encode("utf-8")) <= max(MAX_REFUSAL_TEXT, len("no reason given"))

    check()
