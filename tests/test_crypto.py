"""Crypto primitives: agreement, AEAD binding, PRG addressing, Shamir, signatures."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import aead, kx, prg, shamir
from secagg.crypto.signing import SigningKey, VerifyKey
from secagg.errors import CryptoError, DecryptionError, SecretSharingError, SignatureError

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
    with pytest.raises(TypeError):
        prg.expand_into(b"k" * 16, np.empty(4, dtype=np.float32))
    with pytest.raises(ValueError):
        prg.expand_into(b"k" * 16, np.empty(8, dtype=np.uint32)[::2])


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
