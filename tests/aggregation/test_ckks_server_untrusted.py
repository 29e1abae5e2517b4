"""The CKKS server parses none of the bytes it receives with TenSEAL or SEAL.

The key holder is a separate party (docs/backends.md): its public context is as
untrusted to the server as a client's ciphertexts. The server derives what it needs
(ring, primes, scale) from the round's own design point, checks the key holder's blob
by size and by the fingerprint binding only, and forwards it; the clients parse it and
do every check that needs the parsed context (tests below, each at the round level).
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

ts = pytest.importorskip("tenseal")

import tenseal.sealapi as sealapi  # noqa: E402

from secagg.aggregation import HELPER, Announce, ToParty, decode_spec  # noqa: E402
from secagg.aggregation.ckks import (  # noqa: E402
    _KEY_PUBLIC,
    _LENGTH,
    CKKSBackend,
    CKKSServer,
    KeyHolderSession,
    _helper_message,
    frame_chunks,
)
from secagg.aggregation.policy import BranchPolicy  # noqa: E402
from secagg.aggregation.spec import Writer  # noqa: E402
from secagg.errors import (  # noqa: E402
    ConfigurationError,
    InvalidMessage,
    MalformedMessage,
    PolicyRefused,
    RoundAborted,
)
from secagg.he.errors import ContextMismatch, InvalidContext, SecretKeyPresent  # noqa: E402
from secagg.he.keys import KeyHolder  # noqa: E402
from secagg.he.params import choose_parameters  # noqa: E402

N, D = 4, 3000  # three chunks of N = 1024 values at the default design point

#: every TenSEAL and SEAL entry point that builds an object from serialized bytes
_TENSEAL_LOADERS = (
    "context_from",
    "ckks_vector_from",
    "lazy_ckks_vector_from",
    "ckks_tensor_from",
    "lazy_ckks_tensor_from",
    "bfv_vector_from",
    "lazy_bfv_vector_from",
    "bfv_tensor_from",
    "lazy_bfv_tensor_from",
    "plain_tensor_from",
)
_SEAL_LOADABLE = (
    "Ciphertext",
    "DynArray",
    "EncryptionParameters",
    "GaloisKeys",
    "Modulus",
    "Plaintext",
    "PublicKey",
    "RelinKeys",
    "SecretKey",
    "UniformRandomGeneratorInfo",
)
#: TenSEAL's C++ classes, whose constructors take serialized bytes too
_TENSEAL_CPP = ("CKKSVector", "CKKSTensor", "BFVVector", "BFVTensor", "PlainTensorDouble")


def _forbidden(*_: object, **__: object) -> None:
    raise AssertionError("the server handed received bytes to TenSEAL or SEAL")


@contextmanager
def _nothing_parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: every TenSEAL and SEAL deserializer raises (the server's side of a round)."""
    with monkeypatch.context() as patch:
        for name in _TENSEAL_LOADERS:
            patch.setattr(ts, name, _forbidden)
        patch.setattr(ts.enc_context.Context, "load", _forbidden)
        patch.setattr(ts._ts_cpp.TenSEALContext, "deserialize", _forbidden)
        for name in _TENSEAL_CPP:
            patch.setattr(ts._ts_cpp, name, _forbidden)
        for name in _SEAL_LOADABLE:
            patch.setattr(getattr(sealapi, name), "load", _forbidden)
        yield


def _rows(n: int = N, d: int = D) -> np.ndarray:
    return np.random.default_rng(5).uniform(-1, 1, (n, d))  # test data only


def test_a_whole_round_with_no_deserializer_on_the_server(monkeypatch) -> None:
    """TenSEAL and SEAL cannot parse anything during the server's calls (its key-holder
    reply, the uploads, the decrypted sum), and the round still sums correctly."""
    rows = _rows()
    backend, helper = CKKSBackend(), KeyHolderSession()
    spec = backend.plan(N, D)
    with _nothing_parses(monkeypatch):
        server = backend.server(spec)
        (request,) = server.start()
    key = helper.handle(request.payload, round_number=1)
    with _nothing_parses(monkeypatch):
        (announce,) = server.handle(HELPER, key)
    assert isinstance(announce, Announce)
    announced = decode_spec(announce.spec)
    uploads = [backend.client(announced, p).set_input(row)[0] for p, row in enumerate(rows)]
    with _nothing_parses(monkeypatch):
        for party, upload in enumerate(uploads):
            outgoing = server.handle(party, upload)
    (decrypt,) = outgoing
    assert isinstance(decrypt, ToParty) and decrypt.party == HELPER
    answer = helper.handle(decrypt.payload, round_number=1)
    with _nothing_parses(monkeypatch):
        assert server.handle(HELPER, answer) == []
        result = server.finish()
    error = np.max(np.abs(result.total - rows.sum(axis=0)))
    assert error <= result.report.error_bound
    assert result.report.contributed == tuple(range(N))


def _key_reply(fingerprint: bytes, public: bytes) -> bytes:
    return _helper_message(_KEY_PUBLIC, Writer().blob(fingerprint).blob(public).bytes())


def _started(n: int = N, d: int = D) -> CKKSServer:
    backend = CKKSBackend()
    server = backend.server(backend.plan(n, d))
    server.start()
    return server


def test_the_server_binds_the_context_to_its_fingerprint(monkeypatch) -> None:
    """The one check the protocol needs of the server: the fingerprint it announces is
    the hash of the context it announces (so the clients' pinned check covers both)."""
    helper, backend = KeyHolderSession(), CKKSBackend()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    payload = helper.handle(request.payload, round_number=1)
    public = helper._holder.public_context_bytes
    with _nothing_parses(monkeypatch):
        for fingerprint in (b"\x00" * 32, hashlib.sha256(public).digest()[:31], b""):
            with pytest.raises(ContextMismatch):
                server.handle(HELPER, _key_reply(fingerprint, public))
            assert server.phase == "key" and server.context is None  # nothing committed
        (announce,) = server.handle(HELPER, payload)
    spec = decode_spec(announce.spec)
    assert spec.public_context == public and spec.fingerprint == helper.fingerprint


def test_the_server_refuses_a_context_blob_of_impossible_size(monkeypatch) -> None:
    """Size bounds from the round's own parameters, before anything else is done."""
    server = _started()
    params = server.params
    small = b"\x00" * (params.min_public_context_bytes() - 1)
    large = b"\x00" * (params.max_public_context_bytes() + 1)
    with _nothing_parses(monkeypatch):
        for blob in (b"", small, large):
            with pytest.raises(MalformedMessage, match="bytes"):
                server.handle(HELPER, _key_reply(hashlib.sha256(blob).digest(), blob))
            assert server.phase == "key" and server.context is None


def test_honest_public_contexts_lie_within_the_size_bounds() -> None:
    """The bounds never refuse what a key holder publishes, for every ring the chooser uses."""
    for point in [(2, 1.0, 1e-3), (4, 1.0, 1e-6), (100, 1.0, 1e-6), (10**4, 10.0, 1e-4)]:
        params = choose_parameters(*point)
        size = len(KeyHolder(params).public_context_bytes)
        assert params.min_public_context_bytes() < size < params.max_public_context_bytes()


def _announce_with(server: CKKSServer, public: bytes) -> object:
    (announce,) = server.handle(HELPER, _key_reply(hashlib.sha256(public).digest(), public))
    return decode_spec(announce.spec)


def _pinned_client(spec: object, party: int) -> object:
    """A client that pinned the fingerprint of ``spec``'s context: the pinned key holder
    itself published it, so only the checks of the parsed context stand between it and
    the client (an unpinned client refuses a context no key holder of its process
    published before parsing it: test_ckks_keyholder.py)."""
    pin = BranchPolicy(key_holder_fingerprint=spec.fingerprint)  # type: ignore[attr-defined]
    return CKKSBackend().client(spec, party, policy=pin)  # type: ignore[arg-type]


def test_clients_refuse_a_context_of_other_parameters_than_the_spec() -> None:
    """The server can no longer tell (it parses nothing): every client parses the context
    anyway and refuses it, so no upload is encrypted under it and the round aborts."""
    server = _started()
    other = KeyHolder(choose_parameters(N, 1.0, 1e-3))  # a smaller ring than the spec's
    assert other.params != server.params
    spec = _announce_with(server, other.public_context_bytes)
    for party in range(N):
        with pytest.raises(InvalidContext, match="does not match the announced parameters"):
            _pinned_client(spec, party)
    assert server.close_phase() == [] and server.done
    with pytest.raises(RoundAborted, match="at least 2"):
        server.finish()


def test_clients_refuse_a_context_that_carries_the_secret_key() -> None:
    """A key holder that leaks its secret key into the published context: the clients
    refuse it by name (SecretKeyPresent) before encrypting anything under it."""
    server = _started()
    holder = KeyHolder(server.params)
    leaked = holder._ts.serialize(
        save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )
    spec = _announce_with(server, leaked)
    for party in range(N):
        with pytest.raises(SecretKeyPresent):
            _pinned_client(spec, party)


def test_clients_refuse_a_context_of_other_data_primes_before_encrypting() -> None:
    """Ring, number and size of primes and scale as the spec's, another data prime: the
    clients took it and raised HEParameterError (a ConfigurationError, the branch's own
    mistake) only when they encrypted their update. Now each refuses it when it opens
    the round, as a message (InvalidContext), so nothing is encrypted under it."""
    from _ckks import crafted_public_context, other_data_primes

    server = _started()
    hostile = crafted_public_context(
        server.params, other_data_primes(server.params), server.params.scale
    )
    spec = _announce_with(server, hostile)
    for party in range(N):
        with pytest.raises(InvalidContext, match="data primes") as caught:
            _pinned_client(spec, party)
        assert not isinstance(caught.value, ConfigurationError)
    assert server.close_phase() == [] and server.done


def test_clients_refuse_garbage_the_server_forwarded() -> None:
    """Bytes of a plausible size that are no TenSEAL context: a typed error at the client,
    a refused message (InvalidMessage), never the branch's own ConfigurationError."""
    server = _started()
    blob = bytes(server.params.min_public_context_bytes() + 10)
    spec = _announce_with(server, blob)
    with pytest.raises(InvalidContext, match="not a TenSEAL context") as caught:
        _pinned_client(spec, 0)
    assert isinstance(caught.value, InvalidMessage)
    assert not isinstance(caught.value, ConfigurationError)


@pytest.mark.parametrize("kind", ["garbage", "another key"])
def test_an_unpinned_client_parses_no_context_its_process_did_not_publish(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A client with no pinned key holder (``policy=None``: in-memory runs) compared the
    context with the fingerprint announced beside it, which any sender computes, and
    handed the bytes to TenSEAL's parser. Now it parses only a context a key holder of
    its own process published, and refuses any other by the pin it lacks, before any
    TenSEAL or SEAL deserializer runs; an honest in-memory round still opens."""
    server = _started()
    if kind == "garbage":
        blob = bytes(server.params.min_public_context_bytes() + 10)
    else:  # a real key, but made outside any key holder session of this process
        blob = KeyHolder(server.params).public_context_bytes
    spec = _announce_with(server, blob)
    with _nothing_parses(monkeypatch):
        with pytest.raises(PolicyRefused, match=r"branch\.key_holder_fingerprint"):
            CKKSBackend().client(spec, 0)
    helper, backend = KeyHolderSession(), CKKSBackend()
    honest = backend.server(backend.plan(N, D))
    (request,) = honest.start()
    (announce,) = honest.handle(HELPER, helper.handle(request.payload, round_number=1))
    backend.client(decode_spec(announce.spec), 0).set_input(_rows()[0])


# --- oversize uploads are refused by size, before anything is copied or unpacked ---


def _contribution_round() -> tuple[CKKSServer, bytes]:
    backend, helper = CKKSBackend(), KeyHolderSession()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    client = backend.client(decode_spec(announce.spec), 0)
    return server, client.set_input(_rows()[0])[0]


def test_an_upload_of_the_wrong_size_is_refused_before_it_is_copied() -> None:
    """The right chunk count with oversize chunks (30 MB in all): refused by its length,
    which the round's parameters fix exactly, before a byte of it is copied or unpacked.
    Before, every chunk was copied out of the frame (the upload's size again) first."""
    server, valid = _contribution_round()
    chunks = 3
    hostile = frame_chunks([bytes(10_000_000)] * chunks)
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="CKKS contribution of"):
            server.handle(0, hostile)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # not the 30 MB a copy of the chunks takes
    # one byte more or less than an honest upload is refused the same way
    for wrong in (valid + b"\x00", valid[:-1], valid[: len(valid) - _LENGTH.size - 1]):
        with pytest.raises(MalformedMessage):
            server.handle(0, wrong)
    assert server.waiting_for == frozenset(range(N))  # nothing counted
    server.handle(0, valid)
    assert server.waiting_for == frozenset(range(1, N))


def test_the_key_holder_refuses_an_oversize_decryption_request_by_size() -> None:
    """The key holder applies the same exact-size rule to the aggregate it is sent."""
    helper = KeyHolderSession()
    backend = CKKSBackend()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    server.handle(HELPER, helper.handle(request.payload, round_number=1))
    framed = frame_chunks([bytes(5_000_000)] * 3)
    body = Writer().u32(D).f64(0.0).blob(framed).bytes()
    with pytest.raises(MalformedMessage, match="decryption request of"):
        helper.handle(_helper_message(3, body), round_number=1)
    assert helper.decryptions == 0


def _key_holder_with_key() -> tuple[KeyHolderSession, bytes]:
    """A key holder that has published its key for the (N, D) round, and an honest
    decryption request of that round."""
    helper = KeyHolderSession()
    backend = CKKSBackend()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    spec = decode_spec(announce.spec)
    outgoing: list = []
    for party, row in enumerate(_rows()):
        outgoing = server.handle(party, backend.client(spec, party).set_input(row)[0])
    (decrypt,) = outgoing
    return helper, decrypt.payload


@pytest.mark.parametrize(
    "framed",
    [
        pytest.param(lambda: frame_chunks([bytes(5_000_000)] * 3), id="right-count-oversize"),
        pytest.param(lambda: frame_chunks([bytes(20_000_000)]), id="wrong-count"),
        pytest.param(lambda: bytes(20_000_000), id="no-frame"),
    ],
)
def test_the_key_holder_refuses_an_oversize_request_before_copying_it(framed) -> None:
    """The key holder knows what a sum of the requested dimension takes under its own
    parameters, so a request of any other size is refused from its fixed fields, before a
    byte of it is copied or parsed. Before, the request was copied into a Reader and its
    aggregate out of it (and each chunk out of that) under a 2 GiB limit: refusing 15 MB
    peaked at 30 MB (38 ms), 64 MB at 128 MB (92 ms)."""
    helper, honest = _key_holder_with_key()
    hostile = _helper_message(3, Writer().u32(D).f64(0.0).blob(framed()).bytes())
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="decryption request of"):
            helper.handle(hostile, round_number=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # not the megabytes a copy of the request takes
    assert helper.decryptions == 0 and helper.record.rounds == []
    # the honest request of the same dimension is still decrypted, once
    helper.handle(honest, round_number=1)
    assert helper.decryptions == 1


def test_the_key_holder_refuses_a_request_one_byte_off_by_its_size() -> None:
    """One byte more or less, or a length field that disagrees with the bytes: refused by
    size with nothing spent, and the honest request is then decrypted."""
    helper, honest = _key_holder_with_key()
    head = 6 + 4 + 8  # helper header, dimension, noise std; then the aggregate's length
    (length,) = _LENGTH.unpack_from(honest, head)
    wrong_field = honest[:head] + _LENGTH.pack(length - 1) + honest[head + 4 :]
    for wrong in (honest + b"\x00", honest[:-1], wrong_field, honest[: head + 2]):
        with pytest.raises(MalformedMessage):
            helper.handle(wrong, round_number=1)
    assert helper.decryptions == 0
    helper.handle(honest, round_number=1)
    assert helper.decryptions == 1


def test_the_key_holder_refuses_an_oversize_key_request_before_copying_it() -> None:
    """A key request is a design point of fixed size: anything longer is refused first."""
    helper = KeyHolderSession()
    backend = CKKSBackend()
    (request,) = backend.server(backend.plan(N, D)).start()
    hostile = request.payload + bytes(20_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="key request of"):
            helper.handle(hostile, round_number=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000
    assert helper.fingerprint is None  # no key made


def test_any_key_holder_reply_is_refused_typed_or_accepted_unparsed(monkeypatch) -> None:
    """Random and mutated key-holder replies: a SecAggError that changes nothing, or an
    announcement (a flipped context byte with a matching fingerprint is forwarded as it
    came: the clients parse it), and never a TenSEAL or SEAL call on the server."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from secagg.errors import SecAggError

    helper = KeyHolderSession()
    backend = CKKSBackend()
    spec = backend.plan(N, D)
    (request,) = backend.server(spec).start()
    valid = helper.handle(request.payload, round_number=1)
    public = helper._holder.public_context_bytes

    def flipped(spots: list[int]) -> bytes:
        data = bytearray(public)
        for spot in spots:
            data[spot % len(data)] ^= 0x20
        return _key_reply(hashlib.sha256(bytes(data)).digest(), bytes(data))

    payloads = st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(valid) - 1).map(lambda k: valid[:k]),
        st.binary(min_size=1, max_size=64).map(lambda tail: valid + tail),
        st.lists(st.integers(0, 1 << 20), min_size=1, max_size=4).map(flipped),
    )

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=payloads)
    def check(payload: bytes) -> None:
        server = backend.server(spec)
        server.start()
        with _nothing_parses(monkeypatch):
            try:
                events = server.handle(HELPER, payload)
            except SecAggError:
                assert server.phase == "key" and server.context is None
                return
        (announce,) = events
        assert (
            decode_spec(announce.spec).fingerprint
            == hashlib.sha256(server.context.public_context_bytes).digest()
        )

    check()


def test_the_server_refuses_oversize_key_holder_replies_before_copying_them() -> None:
    """The server knows the size of both replies it waits for: a public context of at
    most its parameters' bound, and a noise std and d float64 values exactly. A longer
    reply is refused from its length, before it is copied, and changes nothing. Before,
    each was copied into a Reader (and the decrypted sum sliced out again) first:
    refusing a 20 MB reply peaked at 40 MB."""
    helper = KeyHolderSession()
    backend = CKKSBackend()
    server = backend.server(backend.plan(N, D))
    (request,) = server.start()
    key_reply = helper.handle(request.payload, round_number=1)
    oversize_key = key_reply + bytes(20_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="key holder's reply of"):
            server.handle(HELPER, oversize_key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # (the first key-phase call imports and sizes its parameters: a few hundred kB)
    assert peak < 2_000_000 and server.phase == "key" and server.context is None
    server.handle(HELPER, key_reply)
    spec = server.spec
    events: list = []
    for party, row in enumerate(_rows()):
        events = server.handle(party, backend.client(spec, party).set_input(row)[0])
    (decrypt,) = events
    answer = helper.handle(decrypt.payload, round_number=1)
    oversize_sum = answer + bytes(20_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="key holder's reply of"):
            server.handle(HELPER, oversize_sum)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000 and server.phase == "decrypt"
    for wrong in (answer[:-1], answer + b"\x00"):
        with pytest.raises(MalformedMessage):
            server.handle(HELPER, wrong)
    server.handle(HELPER, answer)
    assert server.phase == "complete"
