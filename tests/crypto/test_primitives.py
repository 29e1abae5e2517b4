"""Crypto primitives: agreement, AEAD binding, PRG addressing, Shamir, signatures."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import aead, kx, prg, shamir
from secagg.crypto.signing import SigningKey, VerifyKey, write_private_file
from secagg.crypto.stream import KeyedStream, derive
from secagg.errors import (
    ConfigurationError,
    CryptoError,
    DecryptionError,
    SecretSharingError,
    SignatureError,
    WordTypeError,
)

ROUND = b"r" * 16


def test_key_agreement_is_symmetric_and_domain_separated():
    a, b = kx.generate_keypair(), kx.generate_keypair()
    k_ab = kx.derive_key(
        a.private, b.public_bytes, purpose=b"x", round_id=ROUND, party_a=1, party_b=2
    )
    k_ba = kx.derive_key(
        b.private, a.public_bytes, purpose=b"x", round_id=ROUND, party_a=2, party_b=1
    )
    assert k_ab == k_ba
    others = {
        kx.derive_key(
            a.private, b.public_bytes, purpose=b"y", round_id=ROUND, party_a=1, party_b=2
        ),
        kx.derive_key(
            a.private, b.public_bytes, purpose=b"x", round_id=b"s" * 16, party_a=1, party_b=2
        ),
        kx.derive_key(
            a.private, b.public_bytes, purpose=b"x", round_id=ROUND, party_a=1, party_b=3
        ),
    }
    assert k_ab not in others and len(others) == 3


def test_key_agreement_refuses_low_order_point_and_bad_sizes():
    a = kx.generate_keypair()
    with pytest.raises(CryptoError):
        kx.derive_key(a.private, bytes(32), purpose=b"x", round_id=ROUND, party_a=1, party_b=2)
    with pytest.raises(CryptoError):
        kx.load_public_key(b"short")


# Every encoding of a point of order 1, 2, 4 or 8 on Curve25519 or its twist
# (RFC 7748 section 5; the list libsodium refuses), and each with the top bit set.
LOW_ORDER = [
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
]
LOW_ORDER += [p[:31] + bytes([p[31] | 0x80]) for p in LOW_ORDER]


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_check_public_key_refuses_every_low_order_point(point):
    with pytest.raises(CryptoError, match="low-order"):
        kx.check_public_key(point)
    a = kx.generate_keypair()  # and agreement with it fails for any private key
    with pytest.raises(CryptoError):
        kx.derive_key(a.private, point, purpose=b"x", round_id=ROUND, party_a=1, party_b=2)


@settings(max_examples=50)
@given(st.binary(min_size=32, max_size=32))
def test_check_public_key_accepts_honest_keys_and_refuses_only_low_order(raw):
    assert kx.check_public_key(kx.generate_keypair().public_bytes)
    try:
        kx.check_public_key(raw)
    except CryptoError:
        assert raw in LOW_ORDER
    with pytest.raises(CryptoError):
        kx.check_public_key(raw[:31])


def _agreement_is_all_zero(raw: bytes) -> bool:
    """The definition the table stands for: an exchange with a random scalar gives the
    all-zero secret (cryptography refuses it) exactly for a point of small order."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        return True
    return False


P25519 = 2**255 - 19
# every 255-bit encoding within 300 of 0 and of p (the low-order u's 0, 1, p - 1, p and
# p + 1 among them), and each with the top bit set, which X25519 ignores
NEAR_EDGES = [
    (u | top).to_bytes(32, "little")
    for u in [*range(300), *range(P25519 - 300, 2**255)]
    for top in (0, 1 << 255)
]


def test_low_order_table_matches_the_definition():
    """The table lookup that replaced a trial exchange refuses exactly what the
    exchange refuses: every listed encoding, and none of 1 200 others next to 0 and p."""
    for raw in LOW_ORDER:
        assert _agreement_is_all_zero(raw) and kx.is_low_order(raw)
    refused = [raw for raw in NEAR_EDGES if _agreement_is_all_zero(raw)]
    assert refused == [raw for raw in NEAR_EDGES if kx.is_low_order(raw)]
    assert len(refused) == 10  # 0, 1, p - 1, p, p + 1, each with and without the top bit


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_low_order_table_agrees_with_the_exchange_on_random_keys(raw):
    assert kx.is_low_order(raw) == _agreement_is_all_zero(raw)


def test_low_order_check_refuses_a_wrong_size_typed():
    with pytest.raises(CryptoError, match="32 bytes"):
        kx.is_low_order(bytes(31))


def test_check_public_key_makes_no_scalar_multiplication(monkeypatch):
    """The server checks two keys a client at advertisement: a table lookup, not a trial
    exchange (about 27 µs each; 200 of them were a fifth of the server's CPU at n = 100).
    The parsed key is an opaque stand-in here, so any exchange with it would fail."""
    parsed = object()
    monkeypatch.setattr(kx, "load_public_key", lambda raw: parsed)
    assert kx.check_public_key(kx.generate_keypair().public_bytes) is parsed
    with pytest.raises(CryptoError, match="low-order"):
        kx.check_public_key(LOW_ORDER[2])


def test_keypair_repr_hides_private_key():
    pair = kx.generate_keypair()
    assert pair.private_bytes().hex() not in repr(pair)


@pytest.mark.parametrize("field", ["sender", "recipient", "round_id", "label"])
def test_aead_binds_context(field):
    key = os.urandom(32)
    ctx = {"label": b"share", "round_id": ROUND, "sender": 3, "recipient": 4}
    sealed = aead.seal(key, b"secret share", **ctx)
    assert aead.open_sealed(key, sealed, **ctx) == b"secret share"
    wrong = dict(ctx)
    wrong[field] = {"sender": 5, "recipient": 5, "round_id": b"x" * 16, "label": b"other"}[field]
    with pytest.raises(DecryptionError):
        aead.open_sealed(key, sealed, **wrong)


@given(st.data())
@settings(max_examples=50, deadline=None)
def test_aead_detects_any_bit_flip(data):
    key = os.urandom(32)
    ctx = {"label": b"share", "round_id": ROUND, "sender": 1, "recipient": 2}
    sealed = bytearray(aead.seal(key, os.urandom(56), **ctx))
    pos = data.draw(st.integers(0, len(sealed) - 1))
    sealed[pos] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecryptionError):
        aead.open_sealed(key, bytes(sealed), **ctx)


@given(
    offset=st.integers(0, 5000),
    length=st.integers(0, 3000),
    dtype=st.sampled_from([np.uint32, np.uint64]),
)
@settings(max_examples=60, deadline=None)
def test_prg_slice_at_any_offset_matches_full_stream(offset, length, dtype):
    seed = b"k" * 16
    full = prg.expand_into(seed, np.empty(offset + length, dtype=dtype))
    part = prg.expand_into(seed, np.empty(length, dtype=dtype), offset=offset)
    assert np.array_equal(full[offset:], part)


def test_prg_word_widths_share_one_stream():
    seed = os.urandom(16)
    w32 = prg.expand_into(seed, np.empty(1000, dtype=np.uint32))
    w64 = prg.expand_into(seed, np.empty(500, dtype=np.uint64))
    assert np.array_equal(w32.view(np.uint64), w64)


def test_prg_is_aes_ctr_keystream():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    seed = os.urandom(16)
    ref = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update(bytes(4096))
    assert prg.expand_into(seed, np.empty(1024, dtype=np.uint32)).tobytes() == ref


@given(
    length=st.integers(1, 200_000),
    n_add=st.integers(0, 4),
    n_sub=st.integers(0, 4),
    offset=st.integers(0, 100),
    dtype=st.sampled_from([np.uint32, np.uint64]),
)
@settings(max_examples=25, deadline=None)
def test_accumulate_masks_equals_explicit_sum(length, n_add, n_sub, offset, dtype):
    add = [os.urandom(16) for _ in range(n_add)]
    sub = [os.urandom(16) for _ in range(n_sub)]
    acc = np.arange(length, dtype=dtype)
    expected = acc.copy()
    for s in add:
        expected += prg.expand_into(s, np.empty(length, dtype=dtype), offset)
    for s in sub:
        expected -= prg.expand_into(s, np.empty(length, dtype=dtype), offset)
    prg.accumulate_masks(acc, add, sub, offset)
    assert np.array_equal(acc, expected)


def test_prg_refuses_bad_seed_and_buffer():
    with pytest.raises(ValueError):
        prg.expand_into(b"short", np.empty(4, dtype=np.uint32))
    # a wrong dtype is the engine's WordTypeError, still a TypeError for old callers
    with pytest.raises(WordTypeError) as caught:
        prg.expand_into(b"k" * 16, np.empty(4, dtype=np.float32))
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ConfigurationError)
    with pytest.raises(ValueError):
        prg.expand_into(b"k" * 16, np.empty(8, dtype=np.uint32)[::2])


_SEED = b"k" * 16


@pytest.mark.parametrize(
    ("call", "error"),
    [
        # before: a bare TypeError
        (lambda: prg.expand_into(_SEED, np.empty(4, np.float32)), WordTypeError),
        (lambda: prg.accumulate_masks(np.zeros(4, np.int32), [_SEED]), WordTypeError),
        (lambda: prg.mask_slice(4, np.float32, [_SEED]), WordTypeError),
        (lambda: prg.mask_slice(4, "nonsense", [_SEED]), WordTypeError),
        (lambda: prg.expand_into(_SEED, np.empty(4, np.uint32), "3"), ConfigurationError),
        (lambda: prg.expand_into(_SEED, np.empty(4, np.uint32), None), ConfigurationError),
        # before: an AttributeError
        (lambda: prg.expand_into(_SEED, [0, 0, 0]), WordTypeError),
        (lambda: prg.expand_into(_SEED, np.empty(4, np.uint32), 1.5), ConfigurationError),
        (
            lambda: prg.accumulate_masks(np.zeros(4, np.uint32), [_SEED], [], 0.5),
            ConfigurationError,
        ),
        # before: numpy's ValueError, and a str length was taken as a number
        (lambda: prg.mask_slice(-1, np.uint32, [_SEED]), ConfigurationError),
        (lambda: prg.mask_slice("4", np.uint32, [_SEED]), ConfigurationError),
        # before: taken as word 1
        (lambda: prg.expand_into(_SEED, np.empty(4, np.uint32), True), ConfigurationError),
    ],
    ids=[
        "float-out",
        "int32-acc",
        "float-slice",
        "unknown-dtype",
        "str-offset",
        "none-offset",
        "list-out",
        "float-offset",
        "float-acc-offset",
        "negative-length",
        "str-length",
        "bool-offset",
    ],
)
def test_prg_refuses_wrongly_typed_arguments_with_typed_errors(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_prg_takes_a_numpy_integer_offset(dtype):
    """An offset read from an index array (np.int64) overflowed in the counter's modulo
    by 2^128 (OverflowError); it is the same word as the Python int."""
    out = prg.expand_into(_SEED, np.empty(4, dtype), np.int64(3))
    assert np.array_equal(out, prg.expand_into(_SEED, np.empty(4, dtype), 3))
    acc = prg.accumulate_masks(np.zeros(4, dtype), [_SEED], [], np.uint32(3))
    assert np.array_equal(acc, out)


@given(
    secret=st.binary(min_size=1, max_size=48),
    n=st.integers(1, 40),
    data=st.data(),
)
@settings(max_examples=80, deadline=None)
def test_shamir_any_threshold_subset_reconstructs(secret, n, data):
    t = data.draw(st.integers(1, n))
    xs = data.draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    shares = shamir.split(secret, t, xs)
    subset = data.draw(
        st.lists(st.sampled_from(shares), min_size=t, max_size=n, unique_by=lambda s: s.x)
    )
    assert shamir.reconstruct(subset, t, len(secret)) == secret
    with pytest.raises(SecretSharingError):
        shamir.reconstruct(subset[: t - 1], t, len(secret))


def test_shamir_fewer_than_threshold_shares_are_uniform():
    """t-1 shares of two different secrets have the same (uniform) distribution."""
    xs, t = [1, 2, 3, 4, 5], 3
    zeros = [shamir.split(bytes(4), t, xs)[0].values[0] for _ in range(4000)]
    ones = [shamir.split(b"\xff" * 4, t, xs)[0].values[0] for _ in range(4000)]
    for sample in (zeros, ones):  # each share value uniform over the field: mean p/2
        mean = np.mean(sample) / shamir.PRIME
        assert abs(mean - 0.5) < 0.03


def test_shamir_share_serialisation_round_trip_and_range_check():
    share = shamir.split(os.urandom(32), 3, [1, 2, 3])[0]
    assert shamir.Share.from_bytes(share.x, share.to_bytes()) == share
    with pytest.raises(SecretSharingError):
        shamir.Share.from_bytes(1, b"\xff\xff\xff\xff")
    with pytest.raises(SecretSharingError):
        shamir.split(b"x", 0, [1, 2])
    with pytest.raises(SecretSharingError):
        shamir.split(b"x", 2, [1, 1])


def test_shamir_thousand_holders_is_fast_enough():
    import time

    xs = list(range(1, 1001))
    start = time.perf_counter()
    shares = shamir.split_many([os.urandom(16), os.urandom(32)], 667, xs)
    secret = shamir.reconstruct(shares[1][200:], 667, 32)
    assert secret == shamir.reconstruct(shares[1][:667], 667, 32)
    assert time.perf_counter() - start < 5  # generous: the point is "not quadratic Python"


def test_signatures():
    key = SigningKey.generate()
    sig = key.sign(b"message")
    key.verify_key.verify(sig, b"message")
    with pytest.raises(SignatureError):
        key.verify_key.verify(sig, b"other")
    with pytest.raises(SignatureError):
        SigningKey.generate().verify_key.verify(sig, b"message")
    with pytest.raises(SignatureError):
        VerifyKey(b"short")


def test_aead_binds_the_context():
    key = os.urandom(32)
    sealed = aead.seal(
        key, b"share", label=b"l", round_id=ROUND, sender=1, recipient=2, context=b"A" * 128
    )
    assert (
        aead.open_sealed(
            key, sealed, label=b"l", round_id=ROUND, sender=1, recipient=2, context=b"A" * 128
        )
        == b"share"
    )
    with pytest.raises(DecryptionError):
        aead.open_sealed(
            key, sealed, label=b"l", round_id=ROUND, sender=1, recipient=2, context=b"B" * 128
        )
    with pytest.raises(CryptoError):
        aead.seal(b"short", b"x", label=b"l", round_id=ROUND, sender=1, recipient=2)


# --- PEM keys ---------------------------------------------------------------------------

# An Ed25519 key with private bytes 00 01 .. 1f, as PKCS#8 and SubjectPublicKeyInfo PEM
# (the bytes the ledger has always written; RFC 8410 fixes the encoding).
FIXED_PRIVATE_PEM = (
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
    b"-----END PRIVATE KEY-----\n"
)
FIXED_PUBLIC_PEM = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n"
    b"-----END PUBLIC KEY-----\n"
)
FIXED_PUBLIC = bytes.fromhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")


def test_signing_keys_round_trip_through_pem():
    key = SigningKey.from_pem(FIXED_PRIVATE_PEM)
    assert key.verify_key.raw == FIXED_PUBLIC
    assert key.to_pem() == FIXED_PRIVATE_PEM  # byte-identical, so files written stay the same
    assert key.verify_key.to_pem() == FIXED_PUBLIC_PEM
    assert VerifyKey.from_pem(FIXED_PUBLIC_PEM) == key.verify_key
    fresh = SigningKey.generate()
    again = SigningKey.from_pem(fresh.to_pem())
    again.verify_key.verify(fresh.sign(b"message"), b"message")
    assert again.sign(b"m") == fresh.sign(b"m")  # Ed25519 is deterministic: the same key
    assert fresh.to_pem() not in repr(fresh).encode() and "PRIVATE" not in repr(fresh)


def test_pem_loaders_refuse_other_keys_and_garbage():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    other_private = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    other_public = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    locked = SigningKey.from_pem(FIXED_PRIVATE_PEM)._private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )
    for data in (other_private, FIXED_PUBLIC_PEM, locked, b"garbage", b""):
        with pytest.raises(ConfigurationError):
            SigningKey.from_pem(data)
    for data in (other_public, FIXED_PRIVATE_PEM, b"garbage", b""):
        with pytest.raises(ConfigurationError):
            VerifyKey.from_pem(data)
    assert issubclass(ConfigurationError, ValueError)  # what key-file readers catch


def test_private_files_are_created_owner_only(tmp_path):
    path = write_private_file(tmp_path / "key.pem", FIXED_PRIVATE_PEM + b"trailer\n")
    assert path.read_bytes() == FIXED_PRIVATE_PEM + b"trailer\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_private_file(path, b"shorter")  # rewriting truncates
    assert path.read_bytes() == b"shorter"


# --- derived seeds ------------------------------------------------------------------------


def _sha(data: bytes, size: int = 16) -> bytes:
    return hashlib.sha256(data).digest()[:size]


def test_derive_is_the_hand_rolled_derivations_bit_for_bit():
    """Every form the engine used before ``derive`` existed gives the same bytes through it."""
    seed = os.urandom(16)
    # server runtime: b"secagg/v1/test-seed/" + label + str(seed)
    assert derive(b"secagg/v1/test-seed/noise", 1234) == _sha(b"secagg/v1/test-seed/noise1234")
    # client runtime: f"secagg/v1/rounding-replay/{name}/{round}/" + replay seed
    label = "secagg/v1/rounding-replay/branch-a/3/"
    assert derive(label, seed) == _sha(label.encode() + seed)
    # DP-SGD: b"secagg/v1/dpsgd-replay/" + label + b"/" + replay seed, 8 bytes
    dpsgd = derive(b"secagg/v1/dpsgd-replay/noise/", seed, size=8)
    assert dpsgd == _sha(b"secagg/v1/dpsgd-replay/noise/" + seed, 8)
    # in-memory simulation: the whole digest
    assert derive(b"secagg/v1/simulation", 7, size=32) == _sha(b"secagg/v1/simulation7", 32)
    assert derive(b"secagg/v1/simulation", b"x") == _sha(b"secagg/v1/simulation" + b"x")
    # audit: f"audit/{seed}"
    assert derive("audit/", 5) == _sha(b"audit/5")
    assert derive("audit/", "5") == derive(b"audit/", b"5") == derive("audit/", np.int64(5))
    # recorded values, so that a change to derive itself is caught too
    assert derive(b"secagg/v1/simulation", 7).hex() == "e72747bff552c0bc783b745b72ba0acf"
    assert len(derive("label/", seed)) == prg.SEED_BYTES
    KeyedStream(derive("label/", seed))  # the default size is a stream key


def test_derive_refuses_what_it_cannot_encode_unambiguously():
    for seed in (True, 1.5, None, [1]):
        with pytest.raises(ConfigurationError):
            derive("label/", seed)  # type: ignore[arg-type]
    for size in (0, 33, True, 16.0):
        with pytest.raises(ConfigurationError):
            derive("label/", b"seed", size=size)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        derive(5, b"seed")  # type: ignore[arg-type]


def test_seeded_simulations_derive_the_same_keys_as_the_recorded_runs(monkeypatch):
    """Recorded before ``derive`` replaced the hand-rolled hashing; must never change."""
    from secagg.protocol import simulation

    seen = []

    class Spy(simulation.Server):
        def __init__(self, *args, **kwargs):
            seen.append((kwargs["round_id"].hex(), kwargs["graph_seed"].hex()))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(simulation, "Server", Spy)
    inputs = np.arange(12, dtype=np.uint32).reshape(4, 3)
    for seed in (7, b"seed-bytes"):
        outcome = simulation.run_round(inputs, seed=seed, k=3)
        assert outcome.report.round_id.hex() == seen[-1][0]
    assert seen == [
        (
            "e72747bff552c0bc783b745b72ba0acf",
            "c3f345e8a8997f94eb36426d6c303fb2c35aa837f39ec984a93abfc3c9170c72",
        ),
        (
            "c10919c9bc502a1463ece89a0bbd79b8",
            "946ef077e4e64682fef4ed3f26aeaac1e756f186b82506e98aa0ae3a3ff374f9",
        ),
    ]


def test_dp_sgd_replay_generators_are_seeded_as_in_the_recorded_runs():
    """Also recorded before ``derive``: the Poisson sampler's and the noise's torch seeds."""
    pytest.importorskip("opacus")
    torch = pytest.importorskip("torch")
    from secagg.dp.dpsgd import _csprng_seeded_generator

    cpu = torch.device("cpu")
    assert _csprng_seeded_generator(cpu, b"replay-seed", b"noise").initial_seed() == (
        1381621325062461132
    )
    assert _csprng_seeded_generator(cpu, b"replay-seed", b"sampler").initial_seed() == (
        14114861350939575703
    )
    assert _csprng_seeded_generator(cpu, b"replay-seed", b"").initial_seed() == 8756951970117286627


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_shamir_batched_reconstruction_equals_one_secret_at_a_time(data) -> None:
    """Secrets held at different point sets (SecAgg+ neighbourhoods) and at the same
    ones, recovered together, are each what its own reconstruction gives."""
    t = data.draw(st.integers(1, 6))
    secrets, share_sets = [], []
    for _ in range(data.draw(st.integers(1, 8))):
        n = data.draw(st.integers(t, t + 4))
        xs = data.draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n, unique=True))
        secret = data.draw(st.binary(min_size=16, max_size=16))
        shares = shamir.split(secret, t, xs)
        subset = data.draw(st.permutations(shares))[: data.draw(st.integers(t, n))]
        secrets.append(secret)
        share_sets.append(subset)
    assert shamir.reconstruct_many(share_sets, t, 16) == secrets
    assert [shamir.reconstruct(s, t, 16) for s in share_sets] == secrets


def test_shamir_field_inverse_matches_python() -> None:
    values = np.array([1, 2, 3, shamir.PRIME - 1, 123456789, 2**31], dtype=np.uint64)
    got = shamir._inverse_mod(values)
    assert got.tolist() == [pow(int(v), -1, shamir.PRIME) for v in values]


def test_shamir_points_outside_the_field_are_refused() -> None:
    """Refused when the share is built (a share at p cannot exist), so never reaches
    reconstruction."""
    with pytest.raises(SecretSharingError, match="points"):
        shamir.reconstruct_many([[shamir.Share(shamir.PRIME, (1,))]], 1, 4)


@given(
    st.lists(st.lists(st.integers(0, shamir.PRIME - 1), min_size=1, max_size=9), max_size=40),
    st.integers(1, 1000),
)
def test_shares_decoded_together_equal_shares_decoded_one_by_one(
    limbs: list[list[int]], x: int
) -> None:
    encodings = [shamir.Share(x, tuple(v)).to_bytes() for v in limbs]
    assert shamir.shares_from_bytes(x, encodings) == [
        shamir.Share.from_bytes(x, e) for e in encodings
    ]


@given(st.integers(0, 20), st.integers(1, 9), st.integers(shamir.PRIME, 2**32 - 1))
def test_shares_decoded_together_name_the_bad_one(count: int, limbs: int, bad: int) -> None:
    encodings = [shamir.Share(3, tuple(range(1, limbs + 1))).to_bytes() for _ in range(count + 1)]
    corrupt = bytearray(encodings[count])
    corrupt[-4:] = bad.to_bytes(4, "little")
    encodings[count] = bytes(corrupt)
    with pytest.raises(SecretSharingError, match=f"share {count}: value outside the field"):
        shamir.shares_from_bytes(3, encodings)
    with pytest.raises(SecretSharingError, match="not a whole number"):
        shamir.shares_from_bytes(3, [*encodings[:count], b"\x00\x00\x00"])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 5 * prg._CHUNK_BYTES // 4 + 7),
    st.integers(1, 6),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 1 << 40),
    st.sampled_from([np.uint32, np.uint64]),
)
def test_masks_removed_in_parallel_slices_equal_the_serial_pass(
    length: int, workers: int, adds: int, subtracts: int, offset: int, dtype: type
) -> None:
    """The PRG starts at any counter: slices on threads give the serial sum word for word."""
    add = [os.urandom(16) for _ in range(adds)]
    subtract = [os.urandom(16) for _ in range(subtracts)]
    start = prg.expand_into(os.urandom(16), np.empty(length, dtype=dtype))
    serial = prg.accumulate_masks(start.copy(), add, subtract, offset)
    sliced = prg.accumulate_masks(start.copy(), add, subtract, offset, workers=workers)
    assert np.array_equal(serial, sliced)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_mask_workers_must_be_a_positive_integer(workers: object) -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        prg.accumulate_masks(np.zeros(4, np.uint32), [os.urandom(16)], workers=workers)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40 * prg._CHUNK_BYTES // 4), st.integers(1, 9), st.sampled_from([4, 8]))
def test_slice_bounds_cover_the_vector_in_whole_chunks(
    length: int, workers: int, itemsize: int
) -> None:
    """The ranges tile 0..length in order, at most ``workers`` of them, every one but
    the last a whole number of chunks (so no chunk is cut between two workers)."""
    bounds = prg.slice_bounds(length, itemsize, workers)
    assert len(bounds) <= workers
    if length == 0:
        assert bounds == []
        return
    assert [a for a, _ in bounds] == [0, *(b for _, b in bounds[:-1])]
    assert bounds[-1][1] == length
    chunk = prg._CHUNK_BYTES // itemsize
    assert all(b > a for a, b in bounds)
    assert all((b - a) % chunk == 0 for a, b in bounds[:-1])


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3 * prg._CHUNK_BYTES // 4 + 5),
    st.integers(1, 5),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from([np.uint32, np.uint64]),
)
def test_mask_slices_added_into_an_accumulator_equal_the_whole_pass(
    length: int, workers: int, adds: int, subtracts: int, dtype: type
) -> None:
    """What slice workers return, added into the masked sum range by range, is the
    single pass word for word: each worker needs only the seeds and its range."""
    add = [os.urandom(16) for _ in range(adds)]
    subtract = [os.urandom(16) for _ in range(subtracts)]
    start = prg.expand_into(os.urandom(16), np.empty(length, dtype=dtype))
    whole = prg.accumulate_masks(start.copy(), add, subtract)
    pieced = start.copy()
    for a, b in prg.slice_bounds(length, np.dtype(dtype).itemsize, workers):
        part = prg.mask_slice(b - a, dtype, add, subtract, offset=a)
        assert part.dtype == np.dtype(dtype) and len(part) == b - a
        np.add(pieced[a:b], part, out=pieced[a:b])
    assert np.array_equal(whole, pieced)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_slice_bounds_refuses_a_bad_worker_count(workers: object) -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        prg.slice_bounds(10, 4, workers)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    t=st.integers(1, 8),
    extra=st.integers(0, 8),
    wrong=st.data(),
)
def test_on_polynomial_flags_exactly_the_shares_off_the_dealt_polynomial(
    t: int, extra: int, wrong: st.DataObject
) -> None:
    """Through t genuine shares, the dealt polynomial: every genuine share agrees, and a
    share changed in any limb by any non-zero amount does not."""
    m = t + extra
    xs = list(range(1, m + 1))
    dealt = shamir.split(os.urandom(32), t, xs)
    points = np.array([s.x for s in dealt])
    values = np.array([s.values for s in dealt], dtype=np.uint32)
    bad = wrong.draw(st.sets(st.integers(0, m - 1), max_size=extra), label="bad")
    for j in bad:
        limb = wrong.draw(st.integers(0, values.shape[1] - 1), label="limb")
        delta = wrong.draw(st.integers(1, shamir.PRIME - 1), label="delta")
        values[j, limb] = (int(values[j, limb]) + delta) % shamir.PRIME
    genuine = [j for j in range(m) if j not in bad][:t]
    agree = shamir.on_polynomial(points, values, genuine)
    assert agree.tolist() == [j not in bad for j in range(m)]


def test_a_private_file_rewritten_over_a_loose_one_is_owner_only_and_whole(tmp_path):
    """Rewriting a key over an existing 0644 file kept 0644 (the key readable by others),
    and a write that failed half-way left a torn key: it now replaces the file whole."""
    path = tmp_path / "key.pem"
    path.write_bytes(b"old key")
    path.chmod(0o644)
    write_private_file(path, FIXED_PRIVATE_PEM)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == FIXED_PRIVATE_PEM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]  # no temporary left
    with pytest.raises(OSError):  # the folder of a typed key path must exist
        write_private_file(tmp_path / "no-such-folder" / "key.pem", FIXED_PRIVATE_PEM)
    assert not (tmp_path / "no-such-folder").exists()
