"""CKKS backend: parameter choice, key roles, chunked vectors, and refusal of bad ciphertexts."""

from __future__ import annotations

import ast
import functools
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ts = pytest.importorskip("tenseal")

from _ckks import encode_chunk, load_any_version  # noqa: E402
from _harness import refused_call  # noqa: E402

from secagg.errors import (  # noqa: E402
    ConfigurationError,
    InvalidMessage,
    ProtocolError,
    SecAggError,
)
from secagg.he import context as he_context  # noqa: E402
from secagg.he import envelope, packing  # noqa: E402
from secagg.he.context import context_fingerprint  # noqa: E402
from secagg.he.errors import (  # noqa: E402
    BoundExceeded,
    ContextMismatch,
    HEParameterError,
    InconsistentUpload,
    InvalidContext,
    MalformedCiphertext,
    SecretKeyPresent,
    SecretKeyUnavailable,
    TooManyContributions,
    UnpinnedContext,
)
from secagg.he.keys import (  # noqa: E402
    KeyHolder,
    KeyMode,
    PublicAggregationContext,
    SharedKeyClient,
)
from secagg.he.paired import decrypt_pairs  # noqa: E402
from secagg.he.params import (  # noqa: E402
    HE_STANDARD_MAX_BITS,
    CKKSParameters,
    choose_parameters,
    coefficient_primes,
)
from secagg.he.vectors import (  # noqa: E402
    EncryptedSum,
    chunk_count,
    decode_chunk,
    decrypt_aggregate,
    encrypt_vector,
)

MAX_CLIENTS = 8
BOUND = 1.0


@functools.cache
def params() -> CKKSParameters:
    return choose_parameters(MAX_CLIENTS, BOUND, 1e-6 * BOUND)


@functools.cache
def holder() -> KeyHolder:
    return KeyHolder(params(), min_contributions=1)


@functools.cache
def public() -> PublicAggregationContext:
    return PublicAggregationContext.from_bytes(
        holder().public_context_bytes, params(), expected_fingerprint=holder().fingerprint
    )


@functools.cache
def stranger() -> KeyHolder:
    """Same parameters, different keys."""
    return KeyHolder(params(), min_contributions=1)


def _limits(p: CKKSParameters | None = None) -> dict[str, int]:
    """What :func:`envelope.unpack_chunk` needs to know of the receiver's parameters."""
    p = p or params()
    return dict(
        values_per_chunk=p.values_per_ciphertext,
        packed_bytes=p.packed_ciphertext_bytes(),
        max_payload=p.max_ciphertext_bytes() + 64,
    )


def _sum_round(vectors: list[np.ndarray]) -> np.ndarray:
    agg = EncryptedSum(public(), len(vectors[0]))
    for v in vectors:
        agg.add(encrypt_vector(public(), v))
    return holder().decrypt_aggregate(agg.to_chunks(), dimension=len(vectors[0]))


# --- parameters ---------------------------------------------------------------


def test_security_table_is_seals():
    seal = pytest.importorskip("tenseal.sealapi")
    levels = {
        128: seal.SEC_LEVEL_TYPE.TC128,
        192: seal.SEC_LEVEL_TYPE.TC192,
        256: seal.SEC_LEVEL_TYPE.TC256,
    }
    for bits, table in HE_STANDARD_MAX_BITS.items():
        for degree, max_bits in table.items():
            assert seal.CoeffModulus.MaxBitCount(degree, levels[bits]) == max_bits


@pytest.mark.parametrize(
    ("n", "precision"), [(1, 1e-6), (8, 1e-6), (100, 1e-6), (1000, 1e-6), (100, 1e-9), (100, 1e-11)]
)
def test_chosen_parameters_are_secure_and_are_what_seal_builds(n, precision):
    p = choose_parameters(n, BOUND, precision)
    assert p.total_bits <= HE_STANDARD_MAX_BITS[128][p.poly_modulus_degree]
    assert p.error_bound(n) <= precision
    context = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=p.poly_modulus_degree,
        coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes),
    )
    data = context.seal_context().data.first_context_data()
    # prime by prime: total_coeff_modulus()'s binding returns only the low 64-bit word
    built = tuple(m.value() for m in data.parms().coeff_modulus())
    assert built == coefficient_primes(p.poly_modulus_degree, p.coeff_mod_bit_sizes)[:-1]


@pytest.mark.parametrize(
    ("degree", "sizes"),
    [(2048, (39, 14)), (4096, (32, 32, 16)), (4096, (30, 40, 30, 16)), (8192, (60, 40, 40, 60))],
)
def test_coefficient_primes_are_seals_in_seals_order(degree, sizes):
    seal = pytest.importorskip("tenseal.sealapi")
    created = tuple(m.value() for m in seal.CoeffModulus.Create(degree, list(sizes)))
    assert coefficient_primes(degree, sizes) == created


def test_chooser_picks_the_smallest_ring():
    p = choose_parameters(100, BOUND, 1e-6)
    # 47 bits: a slot holds two values, so its magnitude reaches sqrt(2) x the bound
    assert (p.poly_modulus_degree, p.coeff_mod_bit_sizes) == (4096, (47, 16))
    # no scale and data prime make N=2048 work: it is precision- and security-bound
    for scale_bits in range(1, 52):
        for data_bits in range(scale_bits + 2, 41):
            with pytest.raises(HEParameterError):
                CKKSParameters(2048, (data_bits, 14), scale_bits, 100, BOUND, 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (dict(num_clients=100, value_bound=1.0, precision=1e-13), "double-precision"),
        (dict(num_clients=1, value_bound=1e150, precision=1e140, security_bits=256), "bound"),
        (dict(num_clients=10**6, value_bound=1.0, precision=1e-9), "double-precision"),
        (dict(num_clients=0, value_bound=1.0, precision=1e-6), "num_clients"),
        (dict(num_clients=5, value_bound=float("nan"), precision=1e-6), "value_bound"),
        (dict(num_clients=5, value_bound=1.0, precision=-1.0), "precision"),
        (dict(num_clients=5, value_bound=1.0, precision=1e-6, security_bits=100), "security"),
        # a precision so fine that the scale overflows a float (2^1024 and beyond), and a
        # sum so large that its magnitude does: both raised OverflowError before
        (dict(num_clients=1, value_bound=1e-300, precision=1e-310), "no CKKS ring"),
        (dict(num_clients=2, value_bound=5e-324, precision=5e-324), "no CKKS ring"),
        (dict(num_clients=1, value_bound=1e-300, precision=3e-305), "no CKKS ring"),
        (dict(num_clients=1, value_bound=1e308, precision=1e308), "no CKKS ring"),
    ],
)
def test_chooser_refuses_impossible_configurations(kwargs, reason):
    with pytest.raises(HEParameterError, match=reason):
        choose_parameters(**kwargs)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((4096, (60, 60), 40, 10, 1.0, 1e-6), "exceed"),  # 120 > 109 bits
        ((4096, (40, 16), 38, 100, 1.0, 1e-6), "overflow"),
        ((4096, (60, 16), 20, 100, 1.0, 1e-6), "precision"),
        ((4096, (30, 16), 40, 1, 1.0, 1e-3), "does not fit"),
        ((3000, (40, 16), 30, 1, 1.0, 1e-3), "N must be"),
        ((4096, (46,), 38, 1, 1.0, 1e-3), "special prime"),
    ],
)
def test_hand_written_parameters_are_validated(args, reason):
    with pytest.raises(HEParameterError, match=reason):
        CKKSParameters(*args)


# --- roles ----------------------------------------------------------------------


def test_server_context_holds_no_secret_key_and_cannot_decrypt():
    server = public()
    assert server.is_private() is False
    assert not server._ts.has_secret_key()
    with pytest.raises(ValueError, match="public"):
        server._ts.secret_key()
    # asking TenSEAL to include the secret key changes nothing: there is none
    assert server._ts.serialize(save_secret_key=True, save_galois_keys=False) == (
        server.public_context_bytes
    )
    with pytest.raises(SecretKeyUnavailable):
        server.decrypt()
    agg = EncryptedSum(server, 10)
    agg.add(encrypt_vector(server, np.full(10, 0.5)))
    chunks = agg.to_chunks()
    with pytest.raises(SecretKeyUnavailable):
        decrypt_aggregate(server, chunks, dimension=10)
    loaded = decode_chunk(server, chunks[0], kind=envelope.ChunkKind.AGGREGATE).vector
    with pytest.raises(ValueError, match="secret"):
        loaded.decrypt()  # TenSEAL itself, bypassing our wrapper
    assert holder().decrypt_aggregate(chunks, dimension=10) == pytest.approx(
        np.full(10, 0.5), abs=params().error_bound(1)
    )


def test_server_refuses_a_context_with_a_secret_key():
    shared = KeyHolder(params(), mode=KeyMode.EVERY_CLIENT)
    secret = shared.export_client_secret_context()
    with pytest.raises(SecretKeyPresent):  # pinned to its own hash: the parse refuses it
        PublicAggregationContext.from_bytes(
            secret, params(), expected_fingerprint=context_fingerprint(secret)
        )
    with pytest.raises(ConfigurationError):
        EncryptedSum(holder(), 10)  # the key holder's own context is not a server context


def test_public_context_is_pinned_and_checked():
    data = holder().public_context_bytes
    with pytest.raises(ContextMismatch):
        PublicAggregationContext.from_bytes(data, params(), expected_fingerprint=bytes(32))
    # a peer's bytes: refused as a message (tests/he/test_untrusted_context.py)
    cut = data[:-100]
    with pytest.raises(InvalidContext):
        PublicAggregationContext.from_bytes(
            cut, params(), expected_fingerprint=context_fingerprint(cut)
        )
    other = choose_parameters(100, BOUND, 1e-6)
    with pytest.raises(InvalidContext, match="does not match"):
        PublicAggregationContext.from_bytes(data, other, expected_fingerprint=holder().fingerprint)


@pytest.mark.parametrize(
    "pin", [None, b"", bytes(31), "00" * 32], ids=["none", "empty", "short", "hex"]
)
def test_a_public_context_is_never_parsed_without_a_pinned_fingerprint(
    pin: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer's public context is parsed only against a 32-byte fingerprint the caller
    trusts: None (which skipped the check before), an empty or short one, or a hex
    string is an UnpinnedContext (a ContextMismatch) before TenSEAL sees the bytes.
    Before: None parsed the context unchecked (all four reached TenSEAL or compared a
    wrong-sized pin)."""
    parsed: list[bytes] = []
    real = he_context.ts.context_from

    def spy(data: bytes) -> object:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(he_context.ts, "context_from", spy)
    data = holder().public_context_bytes
    with pytest.raises(UnpinnedContext, match="pinned fingerprint"):
        PublicAggregationContext.from_bytes(data, params(), expected_fingerprint=pin)  # type: ignore[arg-type]
    assert parsed == []
    assert issubclass(UnpinnedContext, ContextMismatch)


def test_the_pinned_fingerprint_cannot_be_left_out():
    """The argument is required (keyword only): leaving it out is the caller's bug, caught
    at the call, never a context parsed unpinned."""
    with pytest.raises(TypeError, match="expected_fingerprint"):
        PublicAggregationContext.from_bytes(holder().public_context_bytes, params())  # type: ignore[call-arg]


def test_key_holder_mode_never_exports_the_secret_key():
    with pytest.raises(ConfigurationError):
        holder().export_client_secret_context()
    assert holder().fingerprint.hex()[:16] in repr(holder())


def test_every_client_mode_shares_the_key_and_is_weaker():
    kh = KeyHolder(params(), mode=KeyMode.EVERY_CLIENT)
    secret = kh.export_client_secret_context()
    alice, bob = (
        SharedKeyClient.from_bytes(secret, params(), expected_fingerprint=kh.fingerprint)
        for _ in range(2)
    )
    assert alice.fingerprint == kh.fingerprint and alice.is_private()
    server = kh.public_context()
    x, y = np.linspace(-1, 1, 50), np.linspace(1, -1, 50) / 2
    agg = EncryptedSum(server, 50)
    alice_upload = encrypt_vector(alice, x)
    agg.add(alice_upload)
    agg.add(encrypt_vector(bob, y))
    assert bob.decrypt_aggregate(agg.to_chunks(), dimension=50) == pytest.approx(
        x + y, abs=params().error_bound(2)
    )
    # the weakness, stated as a fact: Bob can read Alice's individual update
    peek = decode_chunk(bob, alice_upload[0], kind=envelope.ChunkKind.CONTRIBUTION)
    (ciphertext,) = peek.vector.ciphertext()
    assert decrypt_pairs(bob, ciphertext, 50) == pytest.approx(x, abs=params().error_bound(1))
    with pytest.raises(ContextMismatch):
        SharedKeyClient.from_bytes(secret, params(), expected_fingerprint=holder().fingerprint)


def test_key_holder_decrypts_only_aggregates_of_enough_clients():
    kh = KeyHolder(params())  # default: at least two contributions
    ctx = kh.public_context()
    upload = encrypt_vector(ctx, np.zeros(5))
    with pytest.raises(InconsistentUpload, match="aggregate"):
        kh.decrypt_aggregate(upload, dimension=5)  # a client's chunk, not an aggregate
    agg = EncryptedSum(ctx, 5)
    agg.add(upload)
    with pytest.raises(InconsistentUpload, match="at least 2"):
        kh.decrypt_aggregate(agg.to_chunks(), dimension=5)
    agg.add(encrypt_vector(ctx, np.ones(5)))
    assert kh.decrypt_aggregate(agg.to_chunks(), dimension=5) == pytest.approx(
        np.ones(5), abs=params().error_bound(2)
    )


# --- vectors ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decrypted_sum_is_within_the_documented_bound(data):
    slots = params().slots
    n = data.draw(st.integers(1, MAX_CLIENTS), label="n")
    d = data.draw(st.integers(1, 3 * slots), label="d")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    style = data.draw(st.sampled_from(["uniform", "edge", "sparse"]), label="style")
    if style == "uniform":
        xs = [rng.uniform(-BOUND, BOUND, d) for _ in range(n)]
    elif style == "edge":  # every client at the bound: the worst case for overflow
        xs = [np.full(d, BOUND * rng.choice([-1.0, 1.0])) for _ in range(n)]
    else:
        xs = [rng.choice([-BOUND, 0.0, BOUND], d) for _ in range(n)]
    out = _sum_round(xs)
    assert out.shape == (d,)
    assert np.max(np.abs(out - np.sum(xs, axis=0))) <= params().error_bound(n)


@pytest.mark.parametrize("extra", [-1, 1, 0])
def test_chunking_for_lengths_around_the_slot_count(extra):
    per_chunk = params().values_per_ciphertext  # N: two values in each of N/2 slots
    d = 2 * per_chunk + extra
    x = np.arange(d, dtype=np.float64) / d
    upload = encrypt_vector(public(), x)
    assert len(upload) == chunk_count(d, per_chunk) == (3 if extra > 0 else 2)
    headers = [envelope.unpack_chunk(c, **_limits()).header for c in upload]
    assert [h.index for h in headers] == list(range(len(upload)))
    assert {(h.vector_length, h.count) for h in headers} == {(d, len(upload))}
    agg = EncryptedSum(public(), d)
    agg.add(list(reversed(upload)))  # order on the wire does not matter
    assert holder().decrypt_aggregate(agg.to_chunks(), dimension=d) == pytest.approx(
        x, abs=params().error_bound(1)
    )


def test_a_data_modulus_above_64_bits_encrypts_sums_and_decrypts():
    """n = 10^6 at precision 1e-6 chooses two 33-bit data primes (66 bits). TenSEAL's
    ``total_coeff_modulus()`` gives only its low 64-bit word, so the layout check refused
    every such context ("the context's data modulus is not the parameters' primes"):
    `secagg bench ckks --n 1000000` and any round at that design point failed."""
    big = choose_parameters(10**6, BOUND, 1e-6)
    assert sum(big.coeff_mod_bit_sizes[:-1]) > 64
    key = KeyHolder(big, min_contributions=1)
    server = key.public_context()
    agg = EncryptedSum(server, 5)
    for value in (0.25, -0.5):
        agg.add(encrypt_vector(server, np.full(5, value)))
    total = key.decrypt_aggregate(agg.to_chunks(), dimension=5)
    assert total == pytest.approx(np.full(5, -0.25), abs=big.error_bound(2))


@pytest.mark.parametrize("dimension", [0, -3, None, 2.5, True])
def test_decryption_refuses_a_dimension_that_is_no_vector_length(dimension):
    """dimension=0 or -3 with no chunks passed the chunk count (0 == 0) and raised
    IndexError; None raised TypeError. The empty vector is no aggregate to decrypt."""
    agg = EncryptedSum(public(), 3)
    agg.add(encrypt_vector(public(), np.zeros(3)))
    for chunks in ([], agg.to_chunks()):
        with pytest.raises(ConfigurationError, match="dimension"):
            holder().decrypt_aggregate(chunks, dimension=dimension)


def test_wire_size_is_below_32_bytes_per_value_at_the_target():
    p = choose_parameters(100, BOUND, 1e-6 * BOUND)
    kh = KeyHolder(p)
    upload = encrypt_vector(kh.public_context(), np.random.default_rng(0).uniform(-1, 1, p.slots))
    assert len(upload[0]) / p.slots < 32


def test_inputs_outside_the_design_point_are_refused():
    with pytest.raises(BoundExceeded):
        encrypt_vector(public(), np.array([0.0, BOUND * 1.0001]))
    with pytest.raises(BoundExceeded):
        encrypt_vector(public(), np.array([np.nan]))
    with pytest.raises(ValueError):
        encrypt_vector(public(), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        encrypt_vector(public(), [])
    agg = EncryptedSum(public(), 3)
    upload = encrypt_vector(public(), np.zeros(3))
    for _ in range(MAX_CLIENTS):
        agg.add(upload)
    with pytest.raises(TooManyContributions):
        agg.add(upload)


def test_one_upload_past_the_parameters_is_a_refused_message_not_a_config_error():
    """The upload past the design point's clients is a peer's message: it must be refused
    as one (InvalidMessage, which a transport refuses and carries on from), leaving the
    sum as it was. It raised BoundExceeded, a ConfigurationError: the caller's own
    mistake at start-up."""
    agg = EncryptedSum(public(), 3)
    upload = encrypt_vector(public(), np.full(3, 0.5))
    for _ in range(MAX_CLIENTS):
        agg.add(upload)
    caught = refused_call(agg, InvalidMessage, agg.add, upload)
    assert isinstance(caught.value, TooManyContributions)
    assert not isinstance(caught.value, ConfigurationError)


def test_decryption_loads_one_ciphertext_at_a_time(monkeypatch):
    """Every chunk was loaded into TenSEAL before the first was decrypted, so SEAL held
    the whole aggregate's ciphertexts at once (a fresh key holder's resident peak at
    d = 10^6: 42.3 MB above its start; 20.0 MB loading one at a time). Now each chunk
    is loaded, decrypted and dropped in turn, after every chunk and the claimed count
    were checked: a refused aggregate loads nothing."""
    from secagg.he import chunks

    calls: list[str] = []
    load, decrypt = chunks._load_checked, chunks.decrypt_pairs
    monkeypatch.setattr(chunks, "_load_checked", lambda *a: calls.append("load") or load(*a))
    monkeypatch.setattr(chunks, "decrypt_pairs", lambda *a: calls.append("dec") or decrypt(*a))
    d = 3 * params().values_per_ciphertext + 1
    agg = EncryptedSum(public(), d)
    upload = encrypt_vector(public(), np.full(d, 0.25))
    agg.add(upload)
    agg.add(upload)
    out = holder().decrypt_aggregate(agg.to_chunks(), dimension=d)
    assert np.max(np.abs(out - 0.5)) < 1e-5
    assert calls == ["load", "dec"] * 4
    calls.clear()
    claims = [c[:22] + (MAX_CLIENTS + 1).to_bytes(4, "big") + c[26:] for c in agg.to_chunks()]
    with pytest.raises(TooManyContributions):
        holder().decrypt_aggregate(claims, dimension=d)
    assert calls == []
    # a residue past its prime in the last chunk: refused before the first decryption
    *first, last = agg.to_chunks()
    broken = [*first, last[:-8] + b"\xff" * 8]
    with pytest.raises(MalformedCiphertext, match="below its prime"):
        holder().decrypt_aggregate(broken, dimension=d)
    assert calls == []


def test_an_aggregate_claiming_more_contributions_than_the_parameters_is_a_bad_message():
    """The contributions field of an aggregate is the server's bytes: a claim past the
    design point is refused as an InvalidMessage (it was a BoundExceeded, a
    ConfigurationError), naming the parameters' limit."""
    agg = EncryptedSum(public(), 3)
    upload = encrypt_vector(public(), np.full(3, 0.5))
    agg.add(upload)
    agg.add(upload)
    claims = [c[:22] + (MAX_CLIENTS + 1).to_bytes(4, "big") + c[26:] for c in agg.to_chunks()]
    with pytest.raises(InvalidMessage, match=f"allow {MAX_CLIENTS}") as caught:
        holder().decrypt_aggregate(claims, dimension=3)
    assert isinstance(caught.value, TooManyContributions)
    assert not isinstance(caught.value, ConfigurationError)


def test_uploads_that_do_not_form_one_vector_are_refused_whole():
    d = 2 * params().values_per_ciphertext + 3
    agg = EncryptedSum(public(), d)
    good = encrypt_vector(public(), np.full(d, 0.25))
    agg.add(good)
    short = encrypt_vector(public(), np.full(d - 1, 0.25))
    for bad in (
        good[:-1],  # missing chunk
        [good[0], good[0], good[2]],  # duplicate chunk
        short,  # wrong dimension
        [good[0], good[1], good[2][:-1]],  # last chunk truncated
        good[0],  # bytes, not a sequence of envelopes
    ):
        with pytest.raises((InconsistentUpload, MalformedCiphertext)):
            agg.add(bad)
    assert agg.contributions == 1
    assert holder().decrypt_aggregate(agg.to_chunks(), dimension=d) == pytest.approx(
        np.full(d, 0.25), abs=params().error_bound(1)
    )


def test_ciphertexts_from_another_context_are_refused():
    foreign = stranger().public_context()
    upload = encrypt_vector(foreign, np.ones(10) * 0.5)
    agg = EncryptedSum(public(), 10)
    with pytest.raises(ContextMismatch):
        agg.add(upload)
    other_agg = EncryptedSum(foreign, 10)
    other_agg.add(upload)
    with pytest.raises(ContextMismatch):
        holder().decrypt_aggregate(other_agg.to_chunks(), dimension=10)
    # a chunk from a context with other parameters, relabelled with our fingerprint:
    # packed (the length differs) and as TenSEAL's own payload (SEAL's parms_id differs)
    big_params = choose_parameters(100, BOUND, 1e-6)
    big = KeyHolder(big_params).public_context()
    chunk = envelope.unpack_chunk(encrypt_vector(big, np.ones(10))[0], **_limits(big_params))
    ours = envelope.ChunkHeader(chunk.header.kind, public().fingerprint, 10, 0, 1, 1)
    tenseal_payload = ts.ckks_vector(big._ts, np.ones(10)).serialize()
    for relabelled in (
        envelope.pack_packed_chunk(ours, chunk.payload),
        envelope.pack_chunk(ours, tenseal_payload),
    ):
        with pytest.raises(MalformedCiphertext):
            agg.add([relabelled])
    assert agg.contributions == 0


def test_ciphertext_at_another_scale_is_refused():
    """A packed envelope has no scale: the sender refuses to pack; a TenSEAL payload is
    refused by default and, when asked for, checked."""
    vector = ts.ckks_vector(public()._ts, [0.5] * 4, scale=2.0**30)
    h = envelope.ChunkHeader(envelope.ChunkKind.CONTRIBUTION, public().fingerprint, 4, 0, 1, 1)
    with pytest.raises(HEParameterError, match="scale"):
        encode_chunk(public(), h, vector)
    v1 = envelope.pack_chunk(h, vector.serialize())
    with pytest.raises(MalformedCiphertext, match="version-1"):
        EncryptedSum(public(), 4).add([v1])
    with pytest.raises(MalformedCiphertext, match="scale"):
        load_any_version(public(), v1, kind=h.kind)


@functools.cache
def _reference_chunk() -> bytes:
    return encrypt_vector(public(), np.linspace(-1, 1, 40))[0]


def _load(data: bytes) -> None:
    """Decode one chunk, version 1 included: these tests exercise its checks too."""
    load_any_version(public(), data, kind=envelope.ChunkKind.CONTRIBUTION)


def test_a_peers_version_1_envelope_is_refused():
    """No byte a peer wrote reaches TenSEAL: TenSEAL's own format is refused, and there
    is no option left to take it (accept_tenseal_payload, which no production path
    passed, is gone; the tests' own loader, tests/_ckks.py, still reads one)."""
    chunk = _reference_v1_chunk()
    kind = envelope.ChunkKind.CONTRIBUTION
    with pytest.raises(MalformedCiphertext, match="version-1"):
        decode_chunk(public(), chunk, kind=kind)
    with pytest.raises(TypeError):
        decode_chunk(public(), chunk, kind=kind, accept_tenseal_payload=True)  # type: ignore[call-arg]
    assert not hasattr(packing, "coefficients_from_tenseal")  # a test helper now
    agg = EncryptedSum(public(), 40)
    with pytest.raises(MalformedCiphertext, match="version-1"):
        agg.add([chunk])
    assert agg.contributions == 0
    loaded = load_any_version(public(), chunk, kind=kind)
    assert loaded.header.vector_length == 40


@pytest.mark.parametrize("version", [envelope.VERSION_PACKED, envelope.VERSION_TENSEAL])
def test_every_truncation_is_refused(version):
    chunk = _reference_chunk() if version == envelope.VERSION_PACKED else _reference_v1_chunk()
    assert chunk[4] == version
    for cut in [*range(0, 200), *range(200, len(chunk), 997), len(chunk) - 1]:
        with pytest.raises(MalformedCiphertext):
            _load(chunk[:cut])


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_garbled_envelopes_raise_typed_errors_and_never_crash(data):
    packed = data.draw(st.booleans(), label="packed")
    chunk = bytearray(_reference_chunk() if packed else _reference_v1_chunk())
    edits = data.draw(st.integers(1, 4), label="edits")
    for _ in range(edits):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        # favour the headers, where structure lives, over the compressed body
        limit = data.draw(st.sampled_from([96, len(chunk)]))
        pos = data.draw(st.integers(0, min(limit, len(chunk)) - 1))
        if op == "flip":
            chunk[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            chunk[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            chunk[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del chunk[pos : pos + data.draw(st.integers(1, 8))]
    try:
        _load(bytes(chunk))
    except (MalformedCiphertext, ContextMismatch, InconsistentUpload) as exc:
        assert isinstance(exc, ProtocolError)
    # else: an in-range change of the compressed body: CKKS is malleable (see envelope.py)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused(blob):
    with pytest.raises(SecAggError):
        _load(blob)
    with pytest.raises(SecAggError):
        _load(_reference_chunk()[: envelope.HEADER_BYTES] + blob)
    with pytest.raises(SecAggError):
        _load(_reference_v1_chunk()[: envelope.TENSEAL_HEADER_BYTES] + blob)


def _proto(sizes: list[int], cts: list[bytes], scale: float) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    packed = b"".join(varint(s) for s in sizes)
    out = b"\x0a" + varint(len(packed)) + packed if sizes else b""
    for ct in cts:
        out += b"\x12" + varint(len(ct)) + ct
    return out + b"\x19" + struct.pack("<d", scale)


@functools.cache
def _reference_v1_chunk() -> bytes:
    """The reference vector as a version-1 envelope (TenSEAL's own payload)."""
    payload = ts.ckks_vector(public()._ts, np.linspace(-1, 1, 40)).serialize()
    h = envelope.ChunkHeader(envelope.ChunkKind.CONTRIBUTION, public().fingerprint, 40, 0, 1, 1)
    return envelope.pack_chunk(h, payload)


@functools.cache
def _seal_ciphertext() -> bytes:
    payload = envelope.unpack_chunk(_reference_v1_chunk(), **_limits()).payload
    size, pos = envelope._varint(payload, 1)
    _, start = envelope._varint(payload, pos + size + 1)
    return payload[start:-9]


# Payloads that TenSEAL 0.3.18 loads and then segfaults on (first two) or mis-sizes.
HOSTILE_PAYLOADS = {
    "no sizes": ([], 1),
    "no ciphertext": ([40], 0),
    "two ciphertexts": ([40], 2),
    "two sizes": ([20, 20], 1),
    "size beyond slots": ([5000], 1),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PAYLOADS))
def test_structurally_hostile_payloads_are_refused_before_tenseal(name):
    sizes, n_ct = HOSTILE_PAYLOADS[name]
    payload = _proto(sizes, [_seal_ciphertext()] * n_ct, params().scale)
    h = envelope.ChunkHeader(envelope.ChunkKind.CONTRIBUTION, public().fingerprint, 40, 0, 1, 1)
    with pytest.raises(MalformedCiphertext):
        _load(envelope.pack_chunk(h, payload))


@pytest.mark.skipif(ts.__version__ != "0.3.18", reason="documents TenSEAL 0.3.18's behaviour")
def test_raw_tenseal_crashes_on_a_payload_without_ciphertexts():
    """Why check_tenseal_payload exists: TenSEAL itself segfaults on this (in a child process)."""
    payload = _proto([40], [], params().scale)
    script = textwrap.dedent(
        f"""
        import tenseal as ts
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=2048,
                         coeff_mod_bit_sizes=[40, 14])
        ctx.global_scale = {params().scale!r}
        v = ts.ckks_vector_from(ctx, {payload!r})
        acc = ts.ckks_vector(ctx, [0.0] * 40)
        acc.add_(v)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode < 0  # killed by a signal (SIGSEGV), not a Python exception


# --- module structure -------------------------------------------------------------------


def _he_import_graph() -> dict[str, set[str]]:
    """Imports between secagg.he modules: module level, in functions and under TYPE_CHECKING."""
    import secagg.he

    package = Path(secagg.he.__file__).parent
    modules = {path.stem for path in package.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name in modules:
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, "secagg.he uses absolute imports"
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                parts = target.split(".")
                if parts[:2] == ["secagg", "he"] and len(parts) > 2 and parts[2] in modules:
                    graph[name].add(parts[2])
    return graph


def test_the_he_modules_import_each_other_without_a_cycle():
    graph = _he_import_graph()
    reach = {name: set(targets) for name, targets in graph.items()}
    changed = True
    while changed:  # transitive closure; the graph has a handful of nodes
        changed = False
        for targets in reach.values():
            extra = set().union(*(reach[t] for t in targets)) - targets
            changed |= bool(extra)
            targets |= extra
    assert [name for name in sorted(reach) if name in reach[name]] == []
    assert "vectors" not in reach["keys"] and "keys" not in reach["vectors"]


def test_the_he_names_keep_their_homes():
    """The context classes moved to he.context and the decoding to he.chunks; old imports work."""
    from secagg.he import chunks, context, keys, vectors

    assert keys.PublicAggregationContext is context.PublicAggregationContext
    assert keys.context_fingerprint is context.context_fingerprint
    for name in ("chunk_count", "decode_chunk", "decrypt_aggregate", "DecodedChunk"):
        assert getattr(vectors, name) is getattr(chunks, name)
    assert issubclass(KeyHolder, context.SecretContext)
    assert issubclass(SharedKeyClient, context.SecretContext)
    assert not hasattr(PublicAggregationContext, "decrypt_aggregate")


def test_key_holder_decrypts_through_the_shared_decryption():
    """``KeyHolder.decrypt_aggregate`` is the module function, not a second implementation."""
    kh = KeyHolder(params(), min_contributions=1)
    agg = EncryptedSum(kh.public_context(), 7)
    agg.add(encrypt_vector(kh.public_context(), [0.25] * 7))
    chunks = agg.to_chunks()
    assert kh.decrypt_aggregate(chunks, dimension=7) == pytest.approx([0.25] * 7, abs=1e-4)
    assert np.array_equal(
        kh.decrypt_aggregate(chunks, dimension=7), decrypt_aggregate(kh, chunks, dimension=7)
    )
